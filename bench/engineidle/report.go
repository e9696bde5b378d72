package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
)

// sample is one server's numbers from one round. NaN means not available
// (the server has no /stats).
type sample struct {
	round       int
	rssBefore   int64   // bytes, before any connection
	rssAfter    int64   // bytes, N idle connections open
	rssKiB      float64 // (after-before)/N
	heapKiB     float64 // heap_inuse delta / N
	goroutines  float64 // goroutine delta / N
	statsConns  int64   // connections the server reported; -1 unknown
	connectSecs float64 // opening all N connections, as the driver saw it
	idleCPU     float64 // server CPU while holding N idle connections, % of one core
	cpuSecs     float64 // server utime+stime during the CPU run
	cpuUsPerMsg float64
	msgsPerSec  float64 // as the client measured it
}

func (s sample) summary() string {
	return fmt.Sprintf("%.2f KiB/conn, %s goroutines/conn, %.2f µs CPU/msg, %.0f msgs/s",
		s.rssKiB, num(s.goroutines, 2), s.cpuUsPerMsg, s.msgsPerSec)
}

// num formats v with prec decimals, or "n/a" for NaN.
func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// median of the values pick returns; NaN if any is NaN.
func median(ss []sample, pick func(sample) float64) float64 {
	v := make([]float64, 0, len(ss))
	for _, s := range ss {
		if math.IsNaN(pick(s)) {
			return math.NaN()
		}
		v = append(v, pick(s))
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ratio formats a/b as "0.42×", or "" when there is no gorilla baseline.
func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// report prints the medians with ratios to the gorilla baseline, then every
// round, as markdown.
func report(w io.Writer, cfg driverConfig, targets []target, res map[string][]sample) {
	fmt.Fprintf(w, "### Engine cost per connection and per message\n\n")
	fmt.Fprintf(w, "%s, %s/%s, %d CPUs, kernel %s. Idle: N=%d connections on %s, one %d-byte echo each, sampled %v after the last. "+
		"CPU: K=%d connections, M=%d binary echoes of %d B, %d in flight per connection. Medians of %d interleaved rounds.\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), kernel(), cfg.conns, cfg.path, len(probe(0, false)),
		cfg.settle, cfg.loadConn, cfg.msgs, cfg.size, cfg.window, cfg.rounds)
	base := res["gorilla"]
	baseRSS := median(base, func(s sample) float64 { return s.rssKiB })
	baseCPU := median(base, func(s sample) float64 { return s.cpuUsPerMsg })
	fmt.Fprintln(w, "| server | RSS KiB/conn | vs gorilla | heap KiB/conn | goroutines/conn | idle CPU % | server CPU µs/msg | vs gorilla | msgs/s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range targets {
		ss := res[t.key]
		rss := median(ss, func(s sample) float64 { return s.rssKiB })
		cpu := median(ss, func(s sample) float64 { return s.cpuUsPerMsg })
		fmt.Fprintf(w, "| %s | %.2f | %s | %s | %s | %.1f | %.2f | %s | %.0f |\n", t.name, rss, ratio(rss, baseRSS),
			num(median(ss, func(s sample) float64 { return s.heapKiB }), 2),
			num(median(ss, func(s sample) float64 { return s.goroutines }), 2),
			median(ss, func(s sample) float64 { return s.idleCPU }), cpu, ratio(cpu, baseCPU), median(ss, func(s sample) float64 { return s.msgsPerSec }))
	}
	fmt.Fprintln(w)
	writeRounds(w, targets, res)
}

func writeRounds(w io.Writer, targets []target, res map[string][]sample) {
	fmt.Fprintln(w, "Raw rounds:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| round | server | RSS before MiB | RSS after MiB | KiB/conn | heap KiB/conn | goroutines/conn | conns (/stats) | connect s | idle CPU % | server CPU s | µs/msg | msgs/s |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range targets {
		for _, s := range res[t.key] {
			conns := "n/a"
			if s.statsConns >= 0 {
				conns = fmt.Sprint(s.statsConns)
			}
			fmt.Fprintf(w, "| %d | %s | %.1f | %.1f | %.2f | %s | %s | %s | %.1f | %.1f | %.2f | %.2f | %.0f |\n",
				s.round, t.name, float64(s.rssBefore)/(1<<20), float64(s.rssAfter)/(1<<20), s.rssKiB,
				num(s.heapKiB, 2), num(s.goroutines, 3), conns, s.connectSecs, s.idleCPU, s.cpuSecs, s.cpuUsPerMsg, s.msgsPerSec)
		}
	}
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
