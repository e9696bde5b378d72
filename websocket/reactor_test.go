//go:build linux

package websocket

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const reactorTestLimit = 10 * time.Second

// reactorServer runs a reactor-mode Server behind httptest.
func reactorServer(t testing.TB, cfg Config, h Handler) (*Server, *httptest.Server) {
	t.Helper()
	cfg.Mode = ModeReactor
	srv := NewServer(cfg, h)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = srv.Accept(w, r, nil) // a failed handshake has been answered already
	}))
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), reactorTestLimit)
		defer cancel()
		if err := srv.Shutdown(ctx, StatusGoingAway, ""); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv, hs
}

// sysClient opens a WebSocket client made of a bare socket: no Go heap
// object and no goroutine, so that measurements see only the server.
// Cleanup closes it.
func sysClient(t testing.TB, hs *httptest.Server) int {
	t.Helper()
	fd := sysClientNoCleanup(t, hs)
	t.Cleanup(func() { _ = unix.Close(fd) }) // the test may have closed it already
	return fd
}

// sysClientNoCleanup is sysClient for callers that close fd themselves.
func sysClientNoCleanup(t testing.TB, hs *httptest.Server) int {
	t.Helper()
	ap := netip.MustParseAddrPort(hs.Listener.Addr().String())
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	tv := unix.NsecToTimeval(int64(reactorTestLimit))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatalf("SO_RCVTIMEO: %v", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	req := "GET / HTTP/1.1\r\nHost: " + ap.String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := unix.Write(fd, []byte(req)); err != nil {
		t.Fatalf("write handshake: %v", err)
	}
	var resp []byte
	buf := make([]byte, 512)
	for !bytes.Contains(resp, []byte("\r\n\r\n")) {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue // the runtime's preemption signal interrupted the blocking read
		}
		if err != nil || n == 0 {
			t.Fatalf("read handshake: n=%d err=%v", n, err)
		}
		resp = append(resp, buf[:n]...)
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101 ")) {
		t.Fatalf("handshake: got %q, want a 101", resp)
	}
	return fd
}

// TestReactorIdleConnections: idle reactor connections cost no goroutine
// and under 256 bytes of live heap each (measured with raw-socket clients,
// which hold nothing on the Go heap).
func TestReactorIdleConnections(t *testing.T) {
	const n = 500
	srv, hs := reactorServer(t, Config{Pollers: 2}, Handler{})
	sysClient(t, hs) // starts the reactor and warms up net/http
	waitUntil(t, "first connection", func() bool { return srv.Len() == 1 })

	fds := make([]int, 0, n)
	t.Cleanup(func() {
		for _, fd := range fds {
			_ = unix.Close(fd) // test teardown
		}
	})
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	for range n {
		fds = append(fds, sysClientNoCleanup(t, hs))
	}
	waitUntil(t, "all connections registered", func() bool { return srv.Len() == n+1 })
	// net/http's per-connection goroutines exit once the handler returns.
	waitUntil(t, "handshake goroutines gone", func() bool { return runtime.NumGoroutine() <= g0+2 })
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	live := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	inuse := (int64(after.HeapInuse) - int64(before.HeapInuse)) / n
	t.Logf("%d idle reactor connections: %d goroutines → %d; per connection: %+d bytes live heap, %+d bytes heap in use",
		n, g0, runtime.NumGoroutine(), live, inuse)
	if !raceDetectorOn() && live > 256 {
		t.Errorf("got %d bytes of live heap per idle connection, want ≤ 256 (the 192-byte Conn and its table slot)", live)
	}
	if g := runtime.NumGoroutine(); g > g0+2 {
		t.Errorf("got %d goroutines with %d idle connections, want at most %d (none per connection)", g, n, g0+2)
	}
}

// TestReactorConnectionChurn opens, uses and closes many connections from
// many goroutines: descriptor reuse must never deliver one connection's
// bytes to another.
func TestReactorConnectionChurn(t *testing.T) {
	_, hs := reactorServer(t, Config{Pollers: 2}, Handler{
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _ = c.WriteMessage(typ, data) },
	})
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	const clients, rounds = 16, 15
	var wg sync.WaitGroup
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if err := churnOnce(url, fmt.Sprintf("client %d round %d", g, r), r%3 == 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func churnOnce(url, msg string, abrupt bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), reactorTestLimit)
	defer cancel()
	c, _, err := Dial(ctx, url, nil, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer func() { _ = c.CloseNow(); <-c.Done() }()
	for i := range 3 {
		want := fmt.Sprintf("%s #%d", msg, i)
		if err := c.WriteMessage(TextMessage, []byte(want)); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if string(got) != want {
			return fmt.Errorf("got %q, want %q", got, want)
		}
	}
	if abrupt {
		return nil
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if CloseStatus(err) != StatusNormalClosure {
				return fmt.Errorf("after close: got %v, want close 1000", err)
			}
			return nil
		}
	}
}

// TestReactorWriteZeroAlloc: WriteMessage of a small message to a reactor
// connection whose socket has room allocates nothing.
func TestReactorWriteZeroAlloc(t *testing.T) {
	if raceDetectorOn() {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	start := make(chan *Conn, 1)
	_, hs := reactorServer(t, Config{}, Handler{OnOpen: func(c *Conn) { start <- c }})
	fd := sysClient(t, hs)
	sc := <-start
	done := make(chan struct{})
	go func() { // drain the client socket without allocating
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if err == unix.EINTR {
				continue // preemption signal
			}
			if n <= 0 || err != nil {
				return
			}
		}
	}()
	msg := []byte("a small push message of about fifty bytes........")
	allocs := testing.AllocsPerRun(1000, func() {
		if err := sc.WriteMessage(BinaryMessage, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per WriteMessage, want 0", allocs)
	}
	_ = unix.Shutdown(fd, unix.SHUT_RDWR) // ends the drain goroutine
	<-done
}

// TestStaleEventIgnored: an epoll event whose generation does not match the
// slot's connection (a freed and reused slot) is ignored.
func TestStaleEventIgnored(t *testing.T) {
	p := &poller{slots: []*Conn{{gen: 7, io: ioOpen}}}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: 0, Pad: 6}
	p.handle(&ev) // would read fd 0 of a zero Conn if not ignored
	ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: 5, Pad: 7}
	p.handle(&ev) // out of range
	if p.slots[0].io != ioOpen {
		t.Errorf("stale event changed the connection: io = %d", p.slots[0].io)
	}
}

// BenchmarkReactorEcho measures a small message's round trip through a
// reactor-mode echo server over loopback (client: pull-mode Dial).
func BenchmarkReactorEcho(b *testing.B) {
	_, hs := reactorServer(b, Config{}, Handler{
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _ = c.WriteMessage(typ, data) },
	})
	ctx := context.Background()
	c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil, nil)
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	defer func() { _ = c.CloseNow(); <-c.Done() }()
	msg := []byte("a small push message of about fifty bytes........")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := c.WriteMessage(BinaryMessage, msg); err != nil {
			b.Fatalf("write: %v", err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatalf("read: %v", err)
		}
	}
}

// BenchmarkReactorEchoParallel runs several clients at once, each with one
// message in flight.
func BenchmarkReactorEchoParallel(b *testing.B) {
	_, hs := reactorServer(b, Config{}, Handler{
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _ = c.WriteMessage(typ, data) },
	})
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	msg := []byte("a small push message of about fifty bytes........")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		c, _, err := Dial(ctx, url, nil, nil)
		if err != nil {
			b.Errorf("dial: %v", err)
			return
		}
		defer func() { _ = c.CloseNow(); <-c.Done() }()
		for pb.Next() {
			if err := c.WriteMessage(BinaryMessage, msg); err != nil {
				b.Errorf("write: %v", err)
				return
			}
			if _, _, err := c.Read(ctx); err != nil {
				b.Errorf("read: %v", err)
				return
			}
		}
	})
}
