package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// driverConfig is the driver's command line.
type driverConfig struct {
	conns    int           // idle connections per server (N)
	rounds   int           // interleaved rounds; medians are taken over them
	conc     int           // connections being set up at once
	loadConn int           // connections in the CPU run (K)
	msgs     int           // messages in the CPU run (M)
	size     int           // payload bytes per CPU-run message
	window   int           // messages in flight per connection in the CPU run
	settle   time.Duration // wait after the last connection before sampling
	servers  []string      // target keys, in run order
	path     string        // WebSocket path on every server
	keep     bool          // keep the temporary directory (binaries, logs)
}

// target is one server under test.
type target struct {
	key     string   // what -servers selects
	name    string   // what the table shows
	pkg     string   // built with go build, relative to the module root
	args    []string // before -addr
	deflate string   // the client's permessage-deflate offer: "", "on" (no context takeover) or "takeover"
}

func allTargets() []target {
	echo := func(key, name, deflate string, args ...string) target {
		return target{key: key, name: name, pkg: "./examples/echo", args: args, deflate: deflate}
	}
	return []target{
		echo("reactor", "wsgate echo, reactor", "", "-mode", "reactor"),
		echo("blocking", "wsgate echo, blocking", "", "-mode", "blocking"),
		{key: "gorilla", name: "gorilla hub (baseline)", pkg: "./bench/baseline"},
		// Compression negotiated and used once per connection (the idle
		// probe is then a 256-byte text message, sent compressed, whose echo
		// comes back compressed).
		echo("reactor-deflate", "wsgate echo, reactor, deflate", "on", "-mode", "reactor", "-compress"),
		echo("reactor-takeover", "wsgate echo, reactor, deflate + context takeover", "takeover", "-mode", "reactor", "-compress", "-compress-takeover"),
		echo("blocking-deflate", "wsgate echo, blocking, deflate", "on", "-mode", "blocking", "-compress"),
		echo("blocking-takeover", "wsgate echo, blocking, deflate + context takeover", "takeover", "-mode", "blocking", "-compress", "-compress-takeover"),
	}
}

func selectTargets(keys []string) ([]target, error) {
	var out []target
	for _, k := range keys {
		i := -1
		for j, t := range allTargets() {
			if t.key == k {
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("engineidle: unknown server %q (have reactor, blocking, gorilla and the -deflate/-takeover variants of reactor and blocking)", k)
		}
		out = append(out, allTargets()[i])
	}
	if len(out) == 0 {
		return nil, errors.New("engineidle: -servers selects nothing")
	}
	return out, nil
}

// driver builds the servers and runs the rounds.
type driver struct {
	cfg      driverConfig
	targets  []target
	bins     map[string]string // package → built binary
	self     string            // this program, re-executed as the client
	dir      string            // binaries and logs
	progress io.Writer
}

func runDriver(ctx context.Context, cfg driverConfig, stdout, stderr io.Writer) (err error) {
	targets, err := selectTargets(cfg.servers)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("engineidle: %w", err)
	}
	dir, err := os.MkdirTemp("", "engineidle-")
	if err != nil {
		return fmt.Errorf("engineidle: %w", err)
	}
	if cfg.keep {
		fmt.Fprintf(stderr, "binaries and logs in %s\n", dir)
	} else {
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	}
	d := &driver{cfg: cfg, targets: targets, self: self, dir: dir, progress: stderr}
	if err := d.build(ctx); err != nil {
		return err
	}
	res, err := d.runRounds(ctx)
	if err != nil {
		return err
	}
	report(stdout, cfg, targets, res)
	return nil
}

// build compiles every selected server package once.
func (d *driver) build(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if err != nil || root == "." || strings.TrimSpace(string(out)) == os.DevNull {
		return fmt.Errorf("engineidle: run inside the wsgate module (go env GOMOD: %q, %v)", out, err)
	}
	d.bins = make(map[string]string)
	for _, t := range d.targets {
		if _, ok := d.bins[t.pkg]; ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, t.pkg)); err != nil {
			return fmt.Errorf("engineidle: %s: %w (select other servers with -servers)", t.pkg, err)
		}
		bin := filepath.Join(d.dir, filepath.Base(t.pkg))
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, t.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("engineidle: go build %s: %w\n%s", t.pkg, err, out)
		}
		d.bins[t.pkg] = bin
	}
	return nil
}

// runRounds measures every target once per round, interleaved, so slow drift
// of the machine spreads over all of them.
func (d *driver) runRounds(ctx context.Context) (map[string][]sample, error) {
	res := make(map[string][]sample)
	for r := 1; r <= d.cfg.rounds; r++ {
		for _, t := range d.targets {
			s, err := d.measure(ctx, t, r)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", r, t.name, err)
			}
			fmt.Fprintf(d.progress, "round %d %-24s %s\n", r, t.name, s.summary())
			res[t.key] = append(res[t.key], s)
		}
	}
	return res, nil
}

func (d *driver) measure(ctx context.Context, t target, round int) (sample, error) {
	s := sample{round: round}
	if err := d.idle(ctx, t, &s); err != nil {
		return s, fmt.Errorf("idle: %w", err)
	}
	if err := d.cpu(ctx, t, &s); err != nil {
		return s, fmt.Errorf("cpu: %w", err)
	}
	return s, nil
}

// server is a started server under test.
type server struct {
	*proc
	addr string
	// http opens a fresh connection per request so that no idle keep-alive
	// connection (and its server goroutine) lingers between samples.
	http *http.Client
}

// startServer starts t on a free loopback port and waits until it answers HTTP.
func (d *driver) startServer(ctx context.Context, t target, logName string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append(append([]string(nil), t.args...), "-addr", addr)
	p, err := startProc(t.name, d.bins[t.pkg], args, filepath.Join(d.dir, logName+".log"), false)
	if err != nil {
		return nil, err
	}
	s := &server{
		proc: p,
		addr: addr,
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	if err := s.waitReady(ctx, 15*time.Second); err != nil {
		return nil, errors.Join(err, p.stop())
	}
	return s, nil
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("engineidle: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// startClient re-executes this program as a client holding conns connections.
func (d *driver) startClient(s *server, t target, logName string, conns int, timeout time.Duration) (*proc, error) {
	args := []string{
		"-role", "client", "-addr", s.addr, "-path", d.cfg.path, "-deflate", t.deflate,
		"-n", fmt.Sprint(conns), "-conc", fmt.Sprint(d.cfg.conc),
		"-m", fmt.Sprint(d.cfg.msgs), "-size", fmt.Sprint(d.cfg.size), "-window", fmt.Sprint(d.cfg.window),
		"-timeout", timeout.String(),
	}
	return startProc("client", d.self, args, filepath.Join(d.dir, logName+".log"), true)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
