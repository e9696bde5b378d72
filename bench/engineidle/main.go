// Command engineidle measures what a WebSocket server engine costs per idle
// connection (RSS, heap, goroutines) and per echoed message (server CPU time),
// for wsgate's echo example in reactor and blocking mode and for the gorilla
// hub baseline (bench/baseline).
//
//	go run ./bench/engineidle -n 18000 -rounds 3
//
// The driver builds each server, runs it as a subprocess and re-executes
// itself with -role client as a separate load process, because the open-files
// limit is per process. Each round measures every server in turn (idle phase
// on a fresh server, then a CPU phase on another fresh server) and the driver
// prints medians and raw rounds as markdown on stdout; progress goes to stderr.
// See bench/README.md for how to read the numbers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("engineidle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "driver", "driver, or client (started by the driver)")
	n := fs.Int("n", 18000, "idle connections per server (client: connections to open)")
	rounds := fs.Int("rounds", 3, "interleaved rounds; the table shows medians")
	conc := fs.Int("conc", 200, "connections being opened at once")
	k := fs.Int("k", 100, "connections in the CPU run")
	m := fs.Int("m", 200000, "echo messages in the CPU run, over all connections")
	size := fs.Int("size", 64, "payload bytes per CPU-run message")
	window := fs.Int("window", 16, "messages in flight per connection in the CPU run")
	settle := fs.Duration("settle", 3*time.Second, "wait after the last connection before sampling")
	servers := fs.String("servers", "reactor,blocking,gorilla", "servers to measure, comma-separated: reactor, blocking, gorilla, reactor-deflate, reactor-takeover, blocking-deflate, blocking-takeover")
	path := fs.String("path", "/echo", "WebSocket path")
	keep := fs.Bool("keep", false, "keep the temporary directory with binaries and server logs")
	addr := fs.String("addr", "", "client: server host:port")
	timeout := fs.Duration("timeout", connTimeout, "client: limit per connection step and for the whole CPU run")
	deflate := fs.String("deflate", "", `client: offer permessage-deflate: "" (no), "on" (no context takeover) or "takeover"`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *rounds < 1 || *conc < 1 || *k < 1 || *m < *k || *size < 0 || *window < 1 {
		return errors.New("engineidle: need -n, -rounds, -conc, -k, -window >= 1, -m >= -k, -size >= 0")
	}
	switch *role {
	case "client":
		cfg := clientConfig{addr: *addr, path: *path, conns: *n, conc: *conc, msgs: *m, size: *size, window: *window, timeout: *timeout, deflate: *deflate}
		if err := runClient(ctx, cfg, stdin, stdout); err != nil {
			// The driver reads stdout; an error line ends its wait at once.
			fmt.Fprintf(stdout, "error: %v\n", err)
			return err
		}
		return nil
	case "driver":
		cfg := driverConfig{
			conns: *n, rounds: *rounds, conc: *conc, loadConn: *k, msgs: *m, size: *size, window: *window,
			settle: *settle, servers: strings.Split(*servers, ","), path: *path, keep: *keep,
		}
		return runDriver(ctx, cfg, stdout, stderr)
	}
	return fmt.Errorf("engineidle: unknown -role %q", *role)
}
