package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/leakcheck"
)

// TestBench runs every scenario with a small load against a real "wsgate
// serve" started with the flags bench/run.sh uses, then builds the report
// from their --json lines.
func TestBench(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t, "--insecure-no-auth", "--demo", "--api-key", "bench-key", "--message-rate", "-1", "--handshake-rate", "-1")
	results := filepath.Join(t.TempDir(), "results.jsonl")
	common := []string{"--url", g.ws + "/ws", "--server-pid", "0", "--label", "wsgate", "--json", results, "--progress", "0"}
	runs := []struct {
		args []string
		want string // a row of the summary table, as a regular expression
	}{
		{[]string{"idle", "--n", "20", "--settle", "1ms"}, `\balive\s+20\s`},
		{[]string{"fanout", "--n", "20", "--repeats", "3", "--gap", "1ms", "--api-key", "bench-key"}, `\bmissed\s+0\s+deliveries`},
		{[]string{"rpc", "--conns", "2", "--warmup", "10ms", "--duration", "100ms"}, `\bmsgs_per_s\s+[0-9.]+\s+msgs/s`},
		{[]string{"connect", "--n", "10", "--conc", "2"}, `\bhandshakes\s+10\s`},
	}
	for _, r := range runs {
		var stdout, stderr bytes.Buffer
		args := append(append([]string{}, r.args...), common...)
		if err := runBench(t.Context(), args, &stdout, &stderr); err != nil {
			t.Fatalf("bench %v: %v\nstderr: %s", r.args, err, stderr.String())
		}
		if !regexp.MustCompile(r.want).MatchString(stdout.String()) || !strings.Contains(stdout.String(), " 0 errors") {
			t.Errorf("bench %s: got\n%s\nwant a table with %q and 0 errors", r.args[0], stdout.String(), r.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := runBench(t.Context(), []string{"pushallocs", "--small", "2", "--large", "6", "--pushes", "2", "--json", results, "--progress", "0"}, &stdout, &stderr); err != nil {
		t.Fatalf("bench pushallocs: %v\nstderr: %s", err, stderr.String())
	}
	stdout.Reset()
	if err := runBench(t.Context(), []string{"report", results}, &stdout, &stderr); err != nil {
		t.Fatalf("bench report: %v\nstderr: %s", err, stderr.String())
	}
	for _, want := range []string{"| idle | alive |  | 20 |", "| connect | handshakes |  | 10 |", "| pushallocs | allocs_per_recipient |", "### fanout"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
	b, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 5 {
		t.Errorf("result lines: got %d, want 5", n)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want error
	}{
		{nil, errUsage},
		{[]string{"dance"}, errUsage},
		{[]string{"idle", "extra"}, errUsage},
		{[]string{"rpc", "--no-such-flag"}, errUsage},
		{[]string{"report"}, errUsage},
		{[]string{"connect", "--help"}, flag.ErrHelp},
		{[]string{"help"}, nil},
	} {
		var stdout, stderr bytes.Buffer
		if err := runBench(context.Background(), c.args, &stdout, &stderr); !errors.Is(err, c.want) {
			t.Errorf("bench %q: got %v, want %v", c.args, err, c.want)
		}
	}
}

// TestBenchUnreachable checks that a scenario against a port nobody
// listens on fails with the dial error instead of reporting numbers.
func TestBenchUnreachable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := runBench(t.Context(), []string{"idle", "--url", "ws://127.0.0.1:1/ws", "--n", "3", "--progress", "0"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no connection opened") {
		t.Errorf("got %v, want a 'no connection opened' error", err)
	}
}
