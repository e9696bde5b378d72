package wsgate_test

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

// readers counts what an event-mode Dialer's connections receive.
type readers struct {
	mu     sync.Mutex
	counts map[*websocket.Conn]*atomic.Int64
	closed atomic.Int64 // connections whose OnClose ran
}

func (r *readers) handler() websocket.Handler {
	return websocket.Handler{
		OnOpen: func(c *websocket.Conn) {
			r.mu.Lock()
			r.counts[c] = new(atomic.Int64)
			r.mu.Unlock()
		},
		OnMessage: func(c *websocket.Conn, _ websocket.MessageType, _ []byte) {
			r.mu.Lock()
			n := r.counts[c]
			r.mu.Unlock()
			n.Add(1)
		},
		OnClose: func(*websocket.Conn, error) { r.closed.Add(1) },
	}
}

// total returns the sum and the minimum of the counts.
func (r *readers) total() (sum, least int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	least = -1
	for _, n := range r.counts {
		v := n.Load()
		sum += v
		if least < 0 || v < least {
			least = v
		}
	}
	return sum, least
}

// sndbufListener listens on 127.0.0.1:0 and gives every accepted socket a
// fixed send buffer of size bytes. Loopback autotuning would otherwise let
// the kernel absorb megabytes for a client that stopped reading before the
// gateway's own queue (the bound under test) sees any of it.
func sndbufListener(t *testing.T, size int) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return &fixedBufListener{Listener: ln, size: size}
}

type fixedBufListener struct {
	net.Listener
	size int
}

func (l *fixedBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.size) // best effort: the test then only pushes longer
	}
	return c, err
}

// tinyReceiveBuffer dials with a 4 KiB socket receive buffer, so that a
// client that stops reading backs up into the server's send queue after a
// few KiB instead of the megabytes loopback autotuning allows.
func tinyReceiveBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext(ctx, network, addr)
}

// TestSlowConsumerIsolation is the gateway's central promise: one client
// that stops reading is disconnected with 4000 and costs the others
// nothing. 1,000 event-mode readers and one stalled pull-mode client get
// 2,000 broadcasts (500 under -race); every reader must count all of them,
// the stalled one must see close 4000, and the server's heap must stay
// bounded.
func TestSlowConsumerIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections; skipped with -short")
	}
	leakcheck.Check(t)
	nReaders, nPushes := 1000, 2000
	if raceEnabled {
		nPushes = 500 // the race detector slows the 1,000 readers ~10×; the stall shows just the same
	}
	cfg := anon()
	cfg.SendQueueBytes = 8 << 10
	cfg.HandshakeRate = -1
	ts := startServerOn(t, cfg, sndbufListener(t, 32<<10))

	stalled := dial(t, ts.wsURL("/ws"), &websocket.DialOptions{NetDial: tinyReceiveBuffer})
	r := &readers{counts: make(map[*websocket.Conn]*atomic.Int64)}
	d := websocket.NewDialer(websocket.Config{}, r.handler())
	t.Cleanup(func() { shutdownDialer(t, d) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard on a shared 2-core machine, not a speed check
	defer cancel()
	for i := range nReaders {
		if _, _, err := d.Dial(ctx, ts.wsURL("/ws"), nil); err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
	}
	gatewaytest.WaitFor(t, "all connections registered", func() bool { return ts.Stats().Conns == nReaders+1 })
	start := time.Now()

	// The stalled client reads only once the server has given up on it, to
	// see its close code before the server's close timeout drops it.
	stalledCode := make(chan websocket.StatusCode, 1)
	go func() {
		for ts.Stats().SlowConsumers == 0 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		stalledCode <- readCloseQuiet(stalled)
	}()

	// Pushes go out in batches, each after the readers took the last one:
	// a burst faster than the readers could ever read would make slow
	// consumers of them all, which is the queue bound working, not the
	// isolation under test.
	const batch = 100
	var peak uint64
	payload := make([]byte, 256)
	for i := range nPushes {
		binary.BigEndian.PutUint32(payload, uint32(i))
		if _, err := ts.Push(ctx, wsgate.Target{All: true}, 200, payload); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		if (i+1)%batch == 0 {
			peak = max(peak, heapInuse())
			gatewaytest.WaitFor(t, "readers to catch up", func() bool {
				sum, _ := r.total()
				return sum >= int64(nReaders*(i+1))
			})
		}
	}
	gatewaytest.WaitFor(t, "every reader to get every push", func() bool {
		sum, _ := r.total()
		return sum >= int64(nReaders*nPushes)
	})
	if sum, least := r.total(); sum != int64(nReaders*nPushes) || least != int64(nPushes) {
		t.Errorf("reader counts: got total %d, least %d; want %d each", sum, least, nPushes)
	}
	if got := <-stalledCode; got != 4000 {
		t.Errorf("stalled client: got close %d, want 4000", got)
	}
	st := ts.Stats()
	if st.SlowConsumers != 1 || r.closed.Load() != 0 {
		t.Errorf("slow consumers: got %d (and %d readers closed), want exactly the stalled one", st.SlowConsumers, r.closed.Load())
	}
	const bound = 128 << 20
	t.Logf("%d pushes to %d conns in %v; peak heap in use %.1f MiB", nPushes, nReaders+1, time.Since(start).Round(time.Millisecond), float64(peak)/(1<<20))
	if peak > bound {
		t.Errorf("heap in use: got %d MiB, want under %d MiB", peak>>20, bound>>20)
	}
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func shutdownDialer(t *testing.T, d *websocket.Dialer) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := d.Shutdown(ctx, websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("dialer shutdown: %v", err)
	}
}
