// Command floor measures the floor under a fanout's server cost on this
// machine: one write(2) of a 79-byte WebSocket frame (a wsgate push of 64
// bytes: 2 bytes of frame header, 13 of push header, the payload) to each
// of N loopback TCP peers, in a minimal loop on one locked OS thread, with
// no registry, no queue and no framing. The figure is that thread's CPU
// time per write (getrusage RUSAGE_THREAD): the kernel's loopback
// transmit, the receiver's TCP processing it runs inline and the wake-up
// of the reader. The readers run in this process on goroutines, reading and
// discarding; their CPU is not counted.
//
//	go run ./bench/peer/floor -n 9000 -rounds 30
//
// Compare with wsgate's server CPU per publish / N from bench/peer/run.sh
// (which counts every thread of the server).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 9000, "peers (each takes two descriptors of this process)")
	rounds := flag.Int("rounds", 30, "rounds of one write to every peer")
	gap := flag.Duration("gap", 100*time.Millisecond, "pause between rounds, for the readers to drain")
	flag.Parse()
	if err := run(*n, *rounds, *gap); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(n, rounds int, gap time.Duration) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	defer func() { _ = ln.Close() }() // the accepted connections are what matter
	servers, clients, err := connect(ln, n)
	defer closeAll(servers)
	if err != nil {
		closeAll(clients)
		return err
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { _, _ = io.Copy(io.Discard, c) }) // ends when c is closed
	}
	defer wg.Wait()
	defer closeAll(clients)
	fds, err := rawFDs(servers)
	if err != nil {
		return err
	}
	frame := make([]byte, 79)
	frame[0], frame[1] = 0x82, 77 // FIN + binary, unmasked, 77-byte payload
	perWrite, wall, err := measure(fds, frame, rounds, gap)
	if err != nil {
		return err
	}
	slices.Sort(perWrite)
	slices.Sort(wall)
	fmt.Printf("floor: %d peers, %d rounds: write(2) of 79 bytes, thread CPU per write p50 %.2f µs (min %.2f, max %.2f); a round of %d writes takes p50 %.1f ms wall\n",
		n, rounds, perWrite[len(perWrite)/2], perWrite[0], perWrite[len(perWrite)-1], n, wall[len(wall)/2])
	return nil
}

// connect opens n loopback connections, each client from its own source
// address (127.2.x.y), and returns both ends.
func connect(ln net.Listener, n int) (servers, clients []net.Conn, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	accepted := make(chan net.Conn, 128)
	go func() {
		defer close(accepted)
		for range n {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for i := range n {
		v := uint32(i) + 2<<16
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, byte(v>>16), byte(v>>8), byte(v))}}
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return servers, clients, fmt.Errorf("floor: dial %d: %w", i, err)
		}
		clients = append(clients, c)
		s, ok := <-accepted
		if !ok {
			return servers, clients, errors.New("floor: accept failed")
		}
		servers = append(servers, s)
	}
	return servers, clients, nil
}

// rawFDs returns the descriptors of conns, for writes without Go's poller.
func rawFDs(conns []net.Conn) ([]int, error) {
	fds := make([]int, len(conns))
	for i, c := range conns {
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
		if err := rc.Control(func(fd uintptr) { fds[i] = int(fd) }); err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
	}
	return fds, nil
}

// measure writes frame to every fd once per round on one locked thread and
// returns, per round, the thread's CPU µs per write and the wall ms.
func measure(fds []int, frame []byte, rounds int, gap time.Duration) (perWrite, wall []float64, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for range rounds {
		var r0, r1 unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_THREAD, &r0); err != nil {
			return nil, nil, fmt.Errorf("floor: %w", err)
		}
		t0 := time.Now()
		for _, fd := range fds {
			if w, err := unix.Write(fd, frame); err != nil || w != len(frame) {
				return nil, nil, fmt.Errorf("floor: write: %d, %v", w, err)
			}
		}
		elapsed := time.Since(t0)
		if err := unix.Getrusage(unix.RUSAGE_THREAD, &r1); err != nil {
			return nil, nil, fmt.Errorf("floor: %w", err)
		}
		cpu := tv(r1.Utime) + tv(r1.Stime) - tv(r0.Utime) - tv(r0.Stime)
		perWrite = append(perWrite, float64(cpu.Nanoseconds())/1e3/float64(len(fds)))
		wall = append(wall, float64(elapsed.Nanoseconds())/1e6)
		time.Sleep(gap)
	}
	return perWrite, wall, nil
}

func tv(t unix.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close() // closing for the end of the measurement; nothing to report
	}
}
