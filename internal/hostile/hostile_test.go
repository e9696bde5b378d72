//go:build linux

package hostile

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/internal/procstat"
)

// hcase is one attack.
type hcase struct {
	name   string
	args   []string // flags beyond the suite's (secret, key, JSON logs)
	nofile int      // > 0: run under this open-files limit
	bound  int64    // peak RSS must stay below it
	// parallel cases mostly wait (for timeouts); they run together.
	parallel bool
	// exits: the case ends the gateway (SIGTERM); healthy then means it
	// exited with status 0.
	exits bool
	run   func(t *testing.T, g *gateway) string // returns the answer seen
}

// row is one line of the table.
type row struct {
	name, args, answer  string
	bound               int64
	before, peak, after int64
	healthy             string
	worst               time.Duration
	failures, probes    int
	cpu                 time.Duration // the gateway's CPU time during the case
}

func TestHostile(t *testing.T) {
	leakcheck.Check(t)
	if testing.Short() {
		t.Skip("the hostile-input suite takes a few minutes")
	}
	bin := buildGateway(t)
	var (
		mu   sync.Mutex
		rows = map[string]row{}
	)
	runCase := func(t *testing.T, c hcase) {
		if c.parallel {
			t.Parallel()
		}
		g := start(t, bin, c.nofile, c.args...)
		if err := g.healthy(t); err != nil {
			t.Fatalf("not healthy before the attack: %v\n%s", err, tail(g.logs.String()))
		}
		r := row{name: c.name, args: strings.Join(c.args, " "), bound: c.bound, before: g.rss(t)}
		if c.nofile > 0 {
			r.args = strings.TrimSpace(fmt.Sprintf("(open files %d) %s", c.nofile, r.args))
		}
		cpu0, _ := procstat.CPU(g.pid) // 0 on error: the column is then only an upper bound
		m := watch(g)
		r.answer = c.run(t, g)
		r.peak, r.worst, r.failures, r.probes = m.stop()
		r.cpu = -1 // not measurable: the gateway has exited
		if cpu1, err := procstat.CPU(g.pid); err == nil {
			r.cpu = cpu1 - cpu0
		}
		if c.exits {
			r.healthy = "exited: " + fmt.Sprint(g.err)
			if g.err != nil {
				t.Errorf("gateway exit: %v, want status 0", g.err)
			}
		} else {
			r.after = g.rss(t)
			r.healthy = "yes"
			if err := g.healthy(t); err != nil {
				r.healthy = "NO: " + err.Error()
				t.Errorf("not healthy after the attack: %v\n%s", err, tail(g.logs.String()))
			}
		}
		if r.peak >= c.bound {
			t.Errorf("peak RSS %.1f MB, want under %.0f MB", mb(r.peak), mb(c.bound))
		}
		t.Logf("%s: %s; RSS %.1f/%.1f/%.1f MB; /healthz worst %v, %d of %d failed; gateway CPU %v",
			c.name, r.answer, mb(r.before), mb(r.peak), mb(r.after), r.worst.Round(time.Millisecond), r.failures, r.probes, r.cpu.Round(10*time.Millisecond))
		mu.Lock()
		rows[c.name] = r
		mu.Unlock()
	}
	all := cases()
	t.Run("serial", func(t *testing.T) {
		for _, c := range all {
			if !c.parallel {
				t.Run(c.name, func(t *testing.T) { runCase(t, c) })
			}
		}
	})
	t.Run("waiting", func(t *testing.T) {
		for _, c := range all {
			if c.parallel {
				t.Run(c.name, func(t *testing.T) { runCase(t, c) })
			}
		}
	})
	table := renderTable(all, rows)
	t.Log("\n" + table)
	if p := reportPath(); p != "" {
		if err := os.WriteFile(p, []byte(table), 0o644); err != nil {
			t.Errorf("write %s: %v", p, err)
		}
	}
}

func renderTable(all []hcase, rows map[string]row) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tflags\tanswer\tRSS before/peak/after MB (bound)\thealthy after\t/healthz worst (failed/probes)\tgateway CPU")
	for _, c := range all {
		r, ok := rows[c.name]
		if !ok {
			fmt.Fprintf(tw, "%s\t\tnot run\t\t\t\n", c.name)
			continue
		}
		after := fmt.Sprintf("%.1f", mb(r.after))
		if r.after == 0 {
			after = "-"
		}
		cpu := "-"
		if r.cpu >= 0 {
			cpu = r.cpu.Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f / %.1f / %s (<%.0f)\t%s\t%v (%d/%d)\t%s\n",
			r.name, r.args, r.answer, mb(r.before), mb(r.peak), after, mb(r.bound), r.healthy,
			r.worst.Round(time.Millisecond), r.failures, r.probes, cpu)
	}
	_ = tw.Flush() // writing to a strings.Builder cannot fail
	return b.String()
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// tail returns the end of a log, for failure messages.
func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// tally counts answers by their description, safe for concurrent use.
type tally struct {
	mu sync.Mutex
	m  map[string]int
}

func (t *tally) add(what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]int{}
	}
	t.m[what]++
}

func (t *tally) get(what string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[what]
}

// String lists the answers, most frequent first.
func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	type kv struct {
		k string
		n int
	}
	var l []kv
	for k, n := range t.m {
		l = append(l, kv{k, n})
	}
	for i := range l {
		for j := i + 1; j < len(l); j++ {
			if l[j].n > l[i].n || (l[j].n == l[i].n && l[j].k < l[i].k) {
				l[i], l[j] = l[j], l[i]
			}
		}
	}
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = fmt.Sprintf("%s ×%d", e.k, e.n)
	}
	return strings.Join(parts, ", ")
}

// fanOut runs f(i) for i in [0, n) on n goroutines and waits for them.
func fanOut(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}
