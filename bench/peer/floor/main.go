// Command floor measures the floor under a fanout's server cost on this
// machine: one write(2) of a 79-byte WebSocket frame (a wsgate push of 64
// bytes: 2 bytes of frame header, 13 of push header, the payload) to each
// of N loopback TCP peers, in a minimal loop on locked OS threads, with no
// registry, no queue and no framing.
//
// It reports, per write: the writing threads' CPU time (getrusage
// RUSAGE_THREAD: the kernel's loopback transmit, the receiver's TCP
// processing it runs inline and the wake-up of the reader), the whole
// writing process's CPU time (getrusage RUSAGE_SELF: the threads plus
// whatever the Go runtime and, with -procs 0, the readers do), and with
// -procs > 0 the reader processes' CPU time (/proc, whole run). The readers
// read and discard: with -procs 0 they are goroutines in this process (the
// minimal loop); with -procs P they run in P processes of their own, like
// the load generator's workers in bench/peer/run.sh, so that the writing
// process's CPU compares with a server's. -writers W splits every round
// over W threads, as wsgate splits a big topic over GOMAXPROCS goroutines.
// -ws makes the reader processes WebSocket clients on wsgate's engine in
// reactor mode, as the load generator's workers are (the handshake is
// answered here by hand, and the frames written are valid server frames):
// the receivers' epoll then wakes like the load generator's, and the
// kernel charges that wake-up to the writer's write(2).
//
//	go run ./bench/peer/floor -n 9000 -rounds 30                     # minimal loop
//	go run ./bench/peer/floor -n 10000 -rounds 30 -procs 2 -writers 2 # the fanout scenario's shape
//	go run ./bench/peer/floor -n 10000 -rounds 30 -procs 2 -writers 2 -ws # … and its receivers
//
// Compare with wsgate's server CPU per publish / N from bench/peer/run.sh
// (which counts every thread of the server).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/procstat"
	"github.com/wsgate/wsgate/websocket"
)

func main() {
	n := flag.Int("n", 9000, "peers (each takes a descriptor of this process, two with -procs 0)")
	rounds := flag.Int("rounds", 30, "rounds of one write to every peer")
	gap := flag.Duration("gap", 100*time.Millisecond, "pause between rounds, for the readers to drain")
	procs := flag.Int("procs", 0, "reader processes (0: readers are goroutines in this process)")
	writers := flag.Int("writers", 1, "writer threads sharing each round")
	reader := flag.String("reader", "", "internal: run as a reader process dialing this address")
	first := flag.Int("first", 0, "internal: a reader process's first peer index (its source addresses)")
	ws := flag.Bool("ws", false, "reader processes are WebSocket clients on wsgate's engine (needs -procs > 0)")
	flag.Parse()
	var err error
	switch {
	case *reader != "" && *ws:
		err = readWebSocketPeers(*reader, *first, *n)
	case *reader != "":
		err = readPeers(*reader, *first, *n)
	case *ws && *procs <= 0:
		err = errors.New("floor: -ws needs -procs > 0")
	default:
		err = run(*n, *rounds, *gap, *procs, max(*writers, 1), *ws)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(n, rounds int, gap time.Duration, procs, writers int, ws bool) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	defer func() { _ = ln.Close() }() // the accepted connections are what matter
	var servers []net.Conn
	var readers []*exec.Cmd
	if procs <= 0 {
		var clients []net.Conn
		servers, clients, err = connectInProcess(ln, n)
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
	} else {
		servers, readers, err = connectProcesses(ln, n, procs, ws)
		defer waitAll(readers)
		defer closeAll(servers) // the readers see EOF and exit
		if err != nil {
			return err
		}
	}
	fds, err := rawFDs(servers)
	if err != nil {
		return err
	}
	readerCPU0 := cpuOf(readers)
	frame := make([]byte, 79)
	frame[0], frame[1] = 0x82, 77 // FIN + binary, unmasked, 77-byte payload
	m, err := measure(fds, frame, rounds, gap, writers)
	if err != nil {
		return err
	}
	shape := "readers: goroutines in this process"
	if procs > 0 {
		time.Sleep(gap) // the last round's reads
		kind := "plain TCP readers"
		if ws {
			kind = "WebSocket clients on wsgate's engine"
		}
		shape = fmt.Sprintf("readers: %d processes of %s, their CPU per write %.2f µs (whole run)", procs, kind,
			float64((cpuOf(readers)-readerCPU0).Nanoseconds())/1e3/float64(rounds*len(fds)))
	}
	fmt.Printf("floor: %d peers, %d rounds, %d writer thread(s): write(2) of 79 bytes, per write p50 (min–max): thread CPU %.2f µs (%.2f–%.2f), process CPU %.2f µs (%.2f–%.2f); a round takes p50 %.1f ms wall; %s\n",
		n, rounds, writers, p50(m.thread), m.thread[0], m.thread[len(m.thread)-1],
		p50(m.process), m.process[0], m.process[len(m.process)-1], p50(m.wall), shape)
	return nil
}

// connectInProcess opens n loopback connections, each client from its own
// source address (127.2.x.y), and returns both ends.
func connectInProcess(ln net.Listener, n int) (servers, clients []net.Conn, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	accepted := acceptN(ln, n)
	for i := range n {
		c, err := dialFrom(ctx, ln.Addr().String(), i)
		if err != nil {
			return servers, clients, err
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

// connectProcesses starts procs reader processes (this program with
// -reader) that dial n connections between them, and accepts them.
func connectProcesses(ln net.Listener, n, procs int, ws bool) (servers []net.Conn, cmds []*exec.Cmd, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("floor: %w", err)
	}
	accepted := acceptN(ln, n)
	per := (n + procs - 1) / procs
	for p := range procs {
		count := min(per, n-p*per)
		cmd := exec.Command(self, "-reader", ln.Addr().String(), "-first", strconv.Itoa(p*per), "-n", strconv.Itoa(count), "-ws="+strconv.FormatBool(ws))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return servers, cmds, fmt.Errorf("floor: start reader: %w", err)
		}
		cmds = append(cmds, cmd)
	}
	timeout := time.After(2 * time.Minute)
	for range n {
		select {
		case s, ok := <-accepted:
			if !ok {
				return servers, cmds, errors.New("floor: accept failed")
			}
			if ws {
				if err := answerUpgrade(s); err != nil {
					_ = s.Close() // refused; the count will fall short
					return servers, cmds, err
				}
			}
			servers = append(servers, s)
		case <-timeout:
			return servers, cmds, errors.New("floor: reader processes did not connect in 2 minutes")
		}
	}
	return servers, cmds, nil
}

// readPeers is a reader process: it dials n connections, from source
// addresses first, first+1, …, reads and discards until each ends.
func readPeers(addr string, first, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range n {
		c, err := dialFrom(ctx, addr, first+i)
		if err != nil {
			return err
		}
		wg.Go(func() {
			_, _ = io.Copy(io.Discard, c) // ends when the writer closes its end
			_ = c.Close()                 // done with it
		})
	}
	return nil
}

// readWebSocketPeers is a reader process of WebSocket clients: n
// connections on one reactor-mode Dialer, as the load generator's workers
// hold them, discarding messages until the writer closes.
func readWebSocketPeers(addr string, first, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	d := websocket.NewDialer(websocket.Config{Mode: websocket.ModeReactor, ReadLimit: 1 << 20}, websocket.Handler{
		OnMessage: func(*websocket.Conn, websocket.MessageType, []byte) {}, // delivered, like the load generator's, then dropped
		OnClose:   func(*websocket.Conn, error) { wg.Done() },
	})
	defer wg.Wait()
	for i := range n {
		opts := &websocket.DialOptions{NetDial: func(ctx context.Context, _, addr string) (net.Conn, error) { return dialFrom(ctx, addr, first+i) }}
		wg.Add(1)
		if _, _, err := d.Dial(ctx, "ws://"+addr+"/", opts); err != nil {
			wg.Done()
			return fmt.Errorf("floor: websocket dial %d: %w", first+i, err)
		}
	}
	return nil
}

// answerUpgrade completes the WebSocket handshake of a reader on c.
func answerUpgrade(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(time.Minute)) // fails only on a closed conn, and then ReadRequest does
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return fmt.Errorf("floor: upgrade request: %w", err)
	}
	_ = c.SetReadDeadline(time.Time{}) // as above
	resp := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	resp = append(websocket.AppendAcceptKey(resp, req.Header.Get("Sec-WebSocket-Key")), "\r\n\r\n"...)
	if _, err := c.Write(resp); err != nil {
		return fmt.Errorf("floor: upgrade response: %w", err)
	}
	return nil
}

// acceptN accepts n connections onto the returned channel, closed after
// the last or on error.
func acceptN(ln net.Listener, n int) <-chan net.Conn {
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
	return accepted
}

// dialFrom dials addr from source address 127.2.0.0 + i.
func dialFrom(ctx context.Context, addr string, i int) (net.Conn, error) {
	v := uint32(i) + 2<<16
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, byte(v>>16), byte(v>>8), byte(v))}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("floor: dial %d: %w", i, err)
	}
	return c, nil
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

// measurement is per round: CPU µs per write of the writing threads and of
// the whole process, and the round's wall time in ms.
type measurement struct {
	thread, process, wall []float64
}

// measure writes frame to every fd once per round, split over writers
// locked threads, and returns the per-round figures, sorted.
func measure(fds []int, frame []byte, rounds int, gap time.Duration, writers int) (measurement, error) {
	var m measurement
	size := (len(fds) + writers - 1) / writers
	for range rounds {
		var p0, p1 unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_SELF, &p0); err != nil {
			return m, fmt.Errorf("floor: %w", err)
		}
		threadCPU := make([]time.Duration, writers)
		errs := make([]error, writers)
		t0 := time.Now()
		var wg sync.WaitGroup
		for w := range writers {
			part := fds[min(w*size, len(fds)):min((w+1)*size, len(fds))]
			wg.Go(func() { threadCPU[w], errs[w] = writeAll(part, frame) })
		}
		wg.Wait()
		elapsed := time.Since(t0)
		if err := unix.Getrusage(unix.RUSAGE_SELF, &p1); err != nil {
			return m, fmt.Errorf("floor: %w", err)
		}
		if err := errors.Join(errs...); err != nil {
			return m, err
		}
		var thread time.Duration
		for _, d := range threadCPU {
			thread += d
		}
		process := tv(p1.Utime) + tv(p1.Stime) - tv(p0.Utime) - tv(p0.Stime)
		m.thread = append(m.thread, float64(thread.Nanoseconds())/1e3/float64(len(fds)))
		m.process = append(m.process, float64(process.Nanoseconds())/1e3/float64(len(fds)))
		m.wall = append(m.wall, float64(elapsed.Nanoseconds())/1e6)
		time.Sleep(gap)
	}
	slices.Sort(m.thread)
	slices.Sort(m.process)
	slices.Sort(m.wall)
	return m, nil
}

// writeAll writes frame to every fd on one locked thread and returns the
// thread's CPU time for it.
func writeAll(fds []int, frame []byte) (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r0, r1 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &r0); err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	for _, fd := range fds {
		if w, err := unix.Write(fd, frame); err != nil || w != len(frame) {
			return 0, fmt.Errorf("floor: write: %d, %v", w, err)
		}
	}
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &r1); err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	return tv(r1.Utime) + tv(r1.Stime) - tv(r0.Utime) - tv(r0.Stime), nil
}

// cpuOf sums the CPU time of the reader processes so far (0 when unknown).
func cpuOf(cmds []*exec.Cmd) time.Duration {
	var sum time.Duration
	for _, c := range cmds {
		if d, err := procstat.CPU(c.Process.Pid); err == nil {
			sum += d
		}
	}
	return sum
}

func p50(sorted []float64) float64 { return sorted[len(sorted)/2] }

func tv(t unix.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close() // closing for the end of the measurement; nothing to report
	}
}

// waitAll waits for the reader processes, which exit once their
// connections are closed.
func waitAll(cmds []*exec.Cmd) {
	for _, c := range cmds {
		_ = c.Wait() // a reader's exit status changes nothing measured
	}
}
