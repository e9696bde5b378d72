package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The client role runs in its own process because the open-files limit
// (20,000 here) is per process and the server under test needs its own share.
// It talks to the driver in lines: it prints "ready N", "verified N" and
// "done msgs=M seconds=S"; it reads "verify", "go" and "quit" (or EOF) on stdin.
// Errors are printed as "error: ..." by main.

// clientConfig is what the driver passes on the command line.
type clientConfig struct {
	addr    string        // server host:port
	path    string        // WebSocket path, e.g. /echo
	conns   int           // connections to open
	conc    int           // connections being set up at once
	msgs    int           // load: messages in total over all connections
	size    int           // load: payload bytes per message
	window  int           // load: messages in flight per connection
	timeout time.Duration // per connection setup or verification; whole load run
	deflate string        // permessage-deflate offer: "", "on" or "takeover" (see wsconn.go)
}

func runClient(ctx context.Context, cfg clientConfig, stdin io.Reader, stdout io.Writer) error {
	start := time.Now()
	conns, lat, err := openConns(ctx, cfg)
	defer closeAll(conns)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ready %d in %v, per connection %s\n", len(conns), time.Since(start).Round(time.Millisecond), lat)
	cmds := bufio.NewScanner(stdin)
	for cmds.Scan() {
		switch cmd := cmds.Text(); cmd {
		case "verify":
			if err := verifyConns(ctx, cfg, conns); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "verified %d\n", len(conns))
		case "go":
			start := time.Now()
			if err := load(ctx, cfg, conns); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "done msgs=%d seconds=%.6f\n", cfg.msgs, time.Since(start).Seconds())
		case "quit":
			return nil
		default:
			return fmt.Errorf("engineidle: unknown command %q", cmd)
		}
	}
	return cmds.Err()
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			_ = c.Close() // the process is about to exit; the server sees the FIN
		}
	}
}

// forEach calls fn for 0..n-1 from at most conc goroutines and stops at the
// first error.
func forEach(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(fmt.Errorf("connection %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// probe is the small message each idle connection sends once; the index makes
// every echo distinguishable. With compression it is 256 bytes of JSON-like
// text instead, above the servers' 128-byte threshold, so that both
// directions compress it.
func probe(i int, deflate bool) []byte {
	if deflate {
		var b []byte
		for j := 0; len(b) < 256; j++ {
			b = fmt.Appendf(b, `{"conn":%d,"seq":%d,"topic":"prices.eur"},`, i, j)
		}
		return b[:256]
	}
	return binary.BigEndian.AppendUint64([]byte("engineidle"), uint64(i))
}

// openConns dials cfg.conns connections, each proving itself with one echo,
// and leaves them idle with no deadline. It also returns the distribution of
// setup times (dial, handshake, first echo). On error the slice holds the
// connections opened so far (others nil).
func openConns(ctx context.Context, cfg clientConfig) ([]net.Conn, latencies, error) {
	conns := make([]net.Conn, cfg.conns)
	lat := make(latencies, cfg.conns)
	err := forEach(ctx, cfg.conns, cfg.conc, func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
		start := time.Now()
		defer func() { lat[i] = time.Since(start) }()
		conn, br, err := dialWS(ctx, cfg.addr, cfg.path, cfg.deflate)
		if err != nil {
			return err
		}
		conns[i] = conn
		if err := echoOnce(conn, br, probe(i, cfg.deflate != ""), cfg.deflate != "", nil); err != nil {
			return err
		}
		if br.Buffered() != 0 {
			return fmt.Errorf("engineidle: %d unexpected bytes after the echo", br.Buffered())
		}
		return conn.SetDeadline(time.Time{})
	})
	return conns, lat, err
}

// latencies are per-connection setup times; String summarises them.
type latencies []time.Duration

func (l latencies) String() string {
	s := slices.Clone(l)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))].Round(10 * time.Microsecond) }
	return fmt.Sprintf("p50 %v p99 %v max %v", q(0.5), q(0.99), q(1))
}

// echoOnce sends msg as a binary message, compressed with deflate, and
// checks the next data frame, inflated with dict if compressed.
func echoOnce(conn net.Conn, br *bufio.Reader, msg []byte, deflate bool, dict []byte) error {
	frame := clientFrame(opBinary, msg)
	if deflate {
		frame = compressedFrame(opBinary, msg)
	}
	if _, err := conn.Write(frame); err != nil {
		return fmt.Errorf("engineidle: write: %w", err)
	}
	op, got, err := readDataDict(br, nil, dict)
	if err != nil {
		return fmt.Errorf("engineidle: read echo: %w", err)
	}
	if op != opBinary || !bytes.Equal(got, msg) {
		return errEchoMismatch
	}
	return nil
}

// verifyConns checks that every idle connection still echoes, so a server
// that silently dropped connections cannot look cheap.
func verifyConns(ctx context.Context, cfg clientConfig, conns []net.Conn) error {
	return forEach(ctx, len(conns), cfg.conc, func(ctx context.Context, i int) error {
		conn := conns[i]
		if err := conn.SetDeadline(time.Now().Add(cfg.timeout)); err != nil {
			return err
		}
		msg := probe(i, cfg.deflate != "")
		var dict []byte // the server's compression context: the first echo
		if cfg.deflate == "takeover" {
			dict = msg
		}
		if err := echoOnce(conn, bufio.NewReaderSize(conn, 64), msg, cfg.deflate != "", dict); err != nil {
			return err
		}
		return conn.SetDeadline(time.Time{})
	})
}

// load sends cfg.msgs messages spread over the connections, each connection
// keeping at most cfg.window in flight.
func load(ctx context.Context, cfg clientConfig, conns []net.Conn) error {
	frame := clientFrame(opBinary, bytes.Repeat([]byte{0xa5}, cfg.size))
	per, extra := cfg.msgs/len(conns), cfg.msgs%len(conns)
	deadline := time.Now().Add(cfg.timeout)
	return forEach(ctx, len(conns), len(conns), func(ctx context.Context, i int) error {
		quota := per
		if i < extra {
			quota++
		}
		if err := conns[i].SetDeadline(deadline); err != nil {
			return err
		}
		return pipeline(conns[i], frame, quota, cfg.window, cfg.size)
	})
}

// pipeline writes up to window frames ahead of the echoes it has read. After
// each read it drains every echo already buffered and refills the window with
// one write, so client syscalls stay few.
func pipeline(conn net.Conn, frame []byte, quota, window, size int) error {
	batch := bytes.Repeat(frame, window)
	br := bufio.NewReaderSize(conn, 32<<10)
	buf := make([]byte, 0, size)
	sent, recv := 0, 0
	for recv < quota {
		if more := min(window-(sent-recv), quota-sent); more > 0 {
			if _, err := conn.Write(batch[:more*len(frame)]); err != nil {
				return fmt.Errorf("engineidle: write: %w", err)
			}
			sent += more
		}
		for {
			_, p, err := readData(br, buf)
			if err != nil {
				return fmt.Errorf("engineidle: read echo %d of %d: %w", recv, quota, err)
			}
			if len(p) != size {
				return errors.Join(errEchoMismatch, fmt.Errorf("got %d bytes, want %d", len(p), size))
			}
			recv++
			if recv == quota || br.Buffered() == 0 {
				break
			}
		}
	}
	return nil
}
