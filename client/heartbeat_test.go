package client

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/wire"
)

// freezer is a TCP proxy whose existing connections can be frozen: they
// stay open but carry nothing, like a server that hangs or a network path
// that went dead without a FIN. Connections made after a freeze flow.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen chan struct{}     // closed by freeze
	conns  map[net.Conn]bool // to close on stop
	wg     sync.WaitGroup
}

func startFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, frozen: make(chan struct{}), conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.stop)
	return f
}

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			_ = c.Close() // the test sees the failed dial
			continue
		}
		f.mu.Lock()
		f.conns[c], f.conns[up] = true, true
		frozen := f.frozen
		f.mu.Unlock()
		f.wg.Add(2)
		go f.pipe(up, c, frozen)
		go f.pipe(c, up, frozen)
	}
}

// pipe copies src to dst until either ends or frozen is closed; after that
// it holds the connection open without forwarding.
func (f *freezer) pipe(dst, src net.Conn, frozen <-chan struct{}) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-frozen:
			_, _ = io.Copy(io.Discard, src) // swallow until the proxy stops
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close() // pass the end on
			return
		}
	}
}

// freeze stops every existing connection from carrying data.
func (f *freezer) freeze() {
	f.mu.Lock()
	close(f.frozen)
	f.frozen = make(chan struct{})
	f.mu.Unlock()
}

func (f *freezer) stop() {
	_ = f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// TestHeartbeatDetectsDeadConnection: with the server's heartbeat at 1 s,
// a connection that goes silent is probed, declared dead after a second
// heartbeat, closed with 4001 and replaced.
func TestHeartbeatDetectsDeadConnection(t *testing.T) {
	leakcheck.Check(t)
	ts := startServerConfig(t, "127.0.0.1:0", wsgate.Config{PingInterval: time.Second})
	proxy := startFreezer(t, ts.addr)
	states := newStateLog()
	c := dial(t, "ws://"+proxy.ln.Addr().String()+"/ws", Options{
		Backoff: fastBackoff, CloseTimeout: 200 * time.Millisecond, OnStateChange: states.record,
	})
	if got := c.Hello().Heartbeat; got != time.Second {
		t.Fatalf("hello heartbeat: got %v, want 1s", got)
	}
	// A quiet but healthy connection survives several heartbeats: the
	// server's pings are invisible to the reader, the probes keep it alive.
	time.Sleep(2500 * time.Millisecond)
	if got := c.State(); got != StateConnected {
		t.Fatalf("state of a healthy idle connection: got %v, want connected (states %v)", got, states.snapshot())
	}
	first := c.Hello().ConnID
	proxy.freeze()
	err := states.waitFor(t, StateReconnecting, 1)
	t.Logf("dead connection ended with: %v", err)
	if code := closeCode(err); code != wire.CloseIdleTimeout && code != wire.CloseAbnormal {
		t.Errorf("cause: got %v (%v), want close 4001 or a dropped connection", code, err)
	}
	states.waitFor(t, StateConnected, 2)
	if c.Hello().ConnID == first {
		t.Error("still on the frozen connection")
	}
}
