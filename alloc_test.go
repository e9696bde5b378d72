package wsgate_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

// pushAllocs connects n clients that complete the handshake and then
// never read (so that no client code allocates during the measurement) and
// returns the average allocations of one broadcast to them, counted
// process-wide.
func pushAllocs(t *testing.T, n int) float64 {
	t.Helper()
	cfg := anon()
	cfg.HandshakeRate = -1
	ts := startServer(t, cfg)
	for range n {
		rawUpgrade(t, ts.addr)
	}
	gatewaytest.WaitFor(t, "registered conns", func() bool { return ts.Stats().Conns == n })
	payload := make([]byte, 64)
	ctx := context.Background()
	return testing.AllocsPerRun(50, func() {
		if k, err := ts.Push(ctx, wsgate.Target{All: true}, 200, payload); k != n || err != nil {
			t.Fatalf("Push: got %d, %v; want %d, nil", k, err, n)
		}
	})
}

// rawUpgrade opens /ws with a hand-written handshake and returns the socket,
// closed when the test ends.
func rawUpgrade(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() }) // the server may have closed it
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: got %v, %v; want 101", resp, err)
	}
	return c
}

// TestPushAllocsPerRecipient checks that a broadcast's allocations do not
// grow with its recipients: the frame is built once and shared.
func TestPushAllocsPerRecipient(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	leakcheck.Check(t)
	one := pushAllocs(t, 1)
	hundred := pushAllocs(t, 100)
	t.Logf("allocations per broadcast: %.1f to 1 conn, %.1f to 100 conns", one, hundred)
	if hundred-one >= 2 {
		t.Errorf("allocations: got %.1f for 100 recipients vs %.1f for 1, want (nearly) none per recipient", hundred, one)
	}
}

// BenchmarkPushBroadcast100 measures one broadcast to 100 connections,
// including the work of the 100 event-mode clients reading it in the same
// process (their allocations too: TestPushAllocsPerRecipient isolates the
// server's).
func BenchmarkPushBroadcast100(b *testing.B) {
	cfg := anon()
	cfg.HandshakeRate = -1
	srv, err := wsgate.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()
	var got atomic.Int64
	d := websocket.NewDialer(websocket.Config{}, websocket.Handler{
		OnMessage: func(*websocket.Conn, websocket.MessageType, []byte) { got.Add(1) },
	})
	defer d.Shutdown(context.Background(), websocket.StatusNormalClosure, "")
	for range 100 {
		if _, _, err := d.Dial(ctx, "ws://"+ln.Addr().String()+"/ws", nil); err != nil {
			b.Fatal(err)
		}
	}
	gatewaytest.WaitFor(b, "100 registered connections", func() bool { return srv.Stats().Conns == 100 })
	payload := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := srv.Push(ctx, wsgate.Target{All: true}, 200, payload); err != nil {
			b.Fatal(err)
		}
	}
}
