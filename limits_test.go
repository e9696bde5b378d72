package wsgate_test

import (
	"context"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// TestIdleConnectionClosedWith4001: a client that sends nothing, not even pongs,
// is closed with the documented code once IdleTimeout passes.
func TestIdleConnectionClosedWith4001(t *testing.T) {
	leakcheck.Check(t)
	gw := gatewaytest.Start(t, wsgate.Config{IdleTimeout: 300 * time.Millisecond, PingInterval: time.Hour}, nil)
	c := gw.DialSimple(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
	defer cancel()
	_, _, err := c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusCode(wire.CloseIdleTimeout) {
		t.Fatalf("got close %v (%v), want %d", got, err, wire.CloseIdleTimeout)
	}
}

// TestSendQueueMessagesBound: a client that does not read is closed with 4000 once
// SendQueueMessages pushes wait for it, long before SendQueueBytes would be reached.
func TestSendQueueMessagesBound(t *testing.T) {
	leakcheck.Check(t)
	gw := gatewaytest.Start(t, wsgate.Config{SendQueueMessages: 8, SendQueueBytes: 256 << 20}, nil)
	stalled := gw.DialSimple(t, "bob")
	gatewaytest.WaitFor(t, "bob registered", func() bool { return gw.Presence("bob") == 1 })
	// The kernel's loopback buffers (at most ~10 MiB, 40 of these pushes) take the
	// first pushes; after that every push waits in the gateway's queue. 300 pushes
	// of 256 KiB are past the kernel's share but short of the byte bound (1024 of
	// them) and of the engine's default message bound (1024), so only
	// SendQueueMessages can close the connection in time.
	payload := make([]byte, 256<<10)
	for i := 0; gw.Stats().SlowConsumers == 0; i++ {
		if i == 300 {
			t.Fatalf("300 pushes to a client that does not read: not closed, want 4000 after 8 queued")
		}
		_, _ = gw.Push(context.Background(), wsgate.Target{User: "bob"}, 120, payload)
	}
	ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
	defer cancel()
	for {
		_, _, err := stalled.Read(ctx)
		if err == nil {
			continue // pushes the kernel took before the queue overflowed
		}
		if got := websocket.CloseStatus(err); got != websocket.StatusCode(wire.CloseSlowConsumer) {
			t.Fatalf("got close %v (%v), want %d", got, err, wire.CloseSlowConsumer)
		}
		return
	}
}
