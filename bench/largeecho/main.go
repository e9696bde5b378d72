// Command largeecho measures the Autobahn 9.1.6 and 9.2.6 shapes (a 16 MiB
// text or binary message, echoed) against wsgate's echo example in blocking
// and reactor mode and the gorilla baseline (bench/baseline), side by side:
// each round starts every server afresh in turn, echoes one message to warm
// it up, then -reps messages, and records the median round trip and the
// server's CPU time per echo (/proc). It prints the medians over -rounds.
//
//	go run ./bench/largeecho -rounds 15
//
// The client is wsgate's pull-mode Dial for every server, so its cost is
// the same on every row. The gorilla baseline does not validate UTF-8 in
// text messages; wsgate does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/procstat"
	"github.com/wsgate/wsgate/websocket"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type server struct {
	name string
	pkg  string
	args []string
}

var servers = []server{
	{"wsgate echo, blocking", "./examples/echo", []string{"-mode", "blocking", "-compress=false"}},
	{"gorilla (baseline)", "./bench/baseline", nil},
	{"wsgate echo, reactor", "./examples/echo", []string{"-mode", "reactor", "-compress=false"}},
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("largeecho", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rounds := fs.Int("rounds", 9, "interleaved rounds")
	reps := fs.Int("reps", 5, "echoes per message type per round")
	size := fs.Int("size", 16<<20, "message size in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "largeecho")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins := map[string]string{}
	for _, s := range servers {
		bin := filepath.Join(dir, filepath.Base(s.pkg))
		if out, err := exec.Command("go", "build", "-o", bin, s.pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("largeecho: build %s: %v\n%s", s.pkg, err, out)
		}
		bins[s.pkg] = bin
	}
	text := []byte(strings.Repeat("*", *size))
	bin := make([]byte, *size)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	type key struct{ server, what string }
	res := map[key][]float64{}
	for r := range *rounds {
		for _, s := range servers {
			for _, m := range []struct {
				what string
				typ  websocket.MessageType
				data []byte
			}{{"text (9.1.6)", websocket.TextMessage, text}, {"binary (9.2.6)", websocket.BinaryMessage, bin}} {
				rtt, cpu, err := measure(bins[s.pkg], s.args, m.typ, m.data, *reps)
				if err != nil {
					return fmt.Errorf("largeecho: %s: %w", s.name, err)
				}
				res[key{s.name, m.what + " ms"}] = append(res[key{s.name, m.what + " ms"}], rtt)
				res[key{s.name, m.what + " cpu ms"}] = append(res[key{s.name, m.what + " cpu ms"}], cpu)
				fmt.Fprintf(stderr, "round %d %s %s: %.1f ms, server CPU %.1f ms per echo\n", r, s.name, m.what, rtt, cpu)
			}
		}
	}
	fmt.Fprintf(stdout, "| server | message | round trip, median ms | server CPU per echo, median ms |\n|---|---|---:|---:|\n")
	for _, s := range servers {
		for _, what := range []string{"text (9.1.6)", "binary (9.2.6)"} {
			fmt.Fprintf(stdout, "| %s | %s | %.1f | %.1f |\n", s.name, what,
				median(res[key{s.name, what + " ms"}]), median(res[key{s.name, what + " cpu ms"}]))
		}
	}
	return nil
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// measure starts a fresh server, echoes data once to warm it up and then
// reps times, and returns the median round trip and the server's CPU time
// per measured echo, in milliseconds.
func measure(bin string, args []string, typ websocket.MessageType, data []byte, reps int) (float64, float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	addr := ln.Addr().String()
	_ = ln.Close() // the server takes the port
	cmd := exec.Command(bin, append(slices.Clone(args), "-addr", addr)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }() // the measurement is over
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := dialRetry(ctx, "ws://"+addr+"/echo")
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = c.CloseNow() }()
	echo := func() (time.Duration, error) {
		t0 := time.Now()
		if err := c.Write(ctx, typ, data); err != nil {
			return 0, err
		}
		_, got, err := c.Read(ctx)
		if err == nil && len(got) != len(data) {
			err = errors.New("echo of the wrong size")
		}
		return time.Since(t0), err
	}
	if _, err := echo(); err != nil {
		return 0, 0, err
	}
	cpu0, err := procstat.CPU(cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	var rtts []float64
	for range reps {
		d, err := echo()
		if err != nil {
			return 0, 0, err
		}
		rtts = append(rtts, float64(d.Microseconds())/1000)
	}
	cpu1, err := procstat.CPU(cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	return median(rtts), float64((cpu1 - cpu0).Microseconds()) / 1000 / float64(reps), nil
}

// dialRetry dials until the server listens.
func dialRetry(ctx context.Context, url string) (*websocket.Conn, error) {
	for {
		c, _, err := websocket.Dial(ctx, url, &websocket.Config{ReadLimit: 64 << 20}, nil)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
