package websocket

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
	"unsafe"
)

// TestURingLayout: the structures shared with the kernel have the sizes
// of linux/io_uring.h.
func TestURingLayout(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"io_uring_params", unsafe.Sizeof(uringParams{}), 120},
		{"io_uring_sqe", unsafe.Sizeof(uringSQE{}), 64},
		{"io_uring_cqe", unsafe.Sizeof(uringCQE{}), 16},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, c.got, c.want)
		}
	}
}

// needRing returns a ring from the pool, or skips the test where this
// kernel does not let Batch use io_uring (then every Batch writes with
// write(2), which the DisableIOURing=true cases test).
func needRing(t *testing.T) *uring {
	t.Helper()
	r := getRing()
	if r == nil {
		t.Skip("io_uring is not usable here (kernel, sysctl kernel.io_uring_disabled or seccomp)")
	}
	return r
}

// rawPeers opens n connections to a reactor server whose peers are raw
// sockets, read only by the test, and returns the server's side of each
// and the peers.
func rawPeers(t *testing.T, cfg Config, n int) ([]*Conn, []net.Conn) {
	t.Helper()
	opened := make(chan *Conn, n)
	srv := NewServer(cfg, Handler{OnOpen: func(c *Conn) { opened <- c }})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = srv.Accept(w, r, nil) }))
	t.Cleanup(func() {
		hs.Close()
		_ = srv.Shutdown(t.Context(), StatusGoingAway, "")
	})
	var conns []*Conn
	var peers []net.Conn
	for range n {
		nc, err := net.Dial("tcp", hs.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		peers = append(peers, nc)
		_, err = nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		select {
		case c := <-opened:
			conns = append(conns, c)
		case <-time.After(10 * time.Second):
			t.Fatal("server side not opened")
		}
	}
	return conns, peers
}

// TestBatchAllocations: a batch allocates nothing per recipient, with
// io_uring and without.
func TestBatchAllocations(t *testing.T) {
	if raceDetectorOn() {
		t.Skip("allocation counts are not exact under the race detector")
	}
	for _, off := range []bool{false, true} {
		conns, _ := rawPeers(t, Config{Mode: ModeReactor, DisableIOURing: off}, 150)
		pm, err := NewPreparedMessage(BinaryMessage, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		var b Batch
		allocs := testing.AllocsPerRun(20, func() {
			for _, c := range conns {
				if err := b.WritePrepared(c, pm); err != nil {
					t.Fatal(err)
				}
			}
			if failed := b.Send(); failed != 0 {
				t.Fatalf("%d refused", failed)
			}
		})
		if allocs != 0 {
			t.Errorf("DisableIOURing=%v: %.1f allocations per batch of %d", off, allocs, len(conns))
		}
	}
}

// TestBatchRetiredRing: a ring whose io_uring_enter failed writes the
// rest with write(2), and is closed, not reused, when the batch is done.
func TestBatchRetiredRing(t *testing.T) {
	r := needRing(t)
	r.broken = true
	made := func() int {
		uringPool.mu.Lock()
		defer uringPool.mu.Unlock()
		return uringPool.made
	}
	before := made()
	conns, peers := rawPeers(t, Config{Mode: ModeReactor}, 3)
	pm, err := NewPreparedMessage(BinaryMessage, []byte("retired"))
	if err != nil {
		t.Fatal(err)
	}
	b := Batch{ring: r}
	for _, c := range conns {
		if err := b.WritePrepared(c, pm); err != nil {
			t.Fatal(err)
		}
	}
	if failed := b.Send(); failed != 0 {
		t.Fatalf("%d refused", failed)
	}
	if got := made(); got != before-1 {
		t.Errorf("rings made: %d after retiring one, want %d", got, before-1)
	}
	want := append([]byte{0x82, byte(len("retired"))}, "retired"...)
	for i, p := range peers {
		got := make([]byte, len(want))
		if _, err := io.ReadFull(p, got); err != nil || !bytes.Equal(got, want) {
			t.Errorf("peer %d: got % x, %v; want % x", i, got, err, want)
		}
	}
}

// TestBatchPoolExhausted: with every ring of the pool in use, a Batch
// writes with write(2) instead of waiting for one, and the pool makes no
// more rings than its bound.
func TestBatchPoolExhausted(t *testing.T) {
	putRing(needRing(t))
	var held []*uring
	for r := getRing(); r != nil; r = getRing() {
		held = append(held, r)
	}
	defer func() {
		for _, r := range held {
			putRing(r)
		}
	}()
	if len(held) > uringPool.maxRings {
		t.Fatalf("the pool handed out %d rings, bound %d", len(held), uringPool.maxRings)
	}
	conns, peers := rawPeers(t, Config{Mode: ModeReactor}, 2)
	pm, err := NewPreparedMessage(BinaryMessage, []byte("no ring"))
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	for _, c := range conns {
		if err := b.WritePrepared(c, pm); err != nil {
			t.Fatal(err)
		}
	}
	if b.ring != nil {
		t.Fatal("the batch got a ring from an exhausted pool")
	}
	if failed := b.Send(); failed != 0 {
		t.Fatalf("%d refused", failed)
	}
	want := append([]byte{0x82, byte(len("no ring"))}, "no ring"...)
	for i, p := range peers {
		got := make([]byte, len(want))
		if _, err := io.ReadFull(p, got); err != nil || !bytes.Equal(got, want) {
			t.Errorf("peer %d: got % x, %v; want % x", i, got, err, want)
		}
	}
}
