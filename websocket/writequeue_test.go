package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

// TestWriteQueueMessages: to a peer that stopped reading, small messages
// are refused once Config.WriteQueueMessages frames wait, long before
// their bytes reach WriteQueueLimit.
func TestWriteQueueMessages(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		const maxMsgs, size = 8, 1 << 10
		const frameSize = size + 4 // 4-byte header: 126 + 16-bit length
		start := make(chan *websocket.Conn, 1)
		_, url := rtServer(t, websocket.Config{Mode: mode, WriteQueueMessages: maxMsgs}, websocket.Handler{
			OnOpen: func(c *websocket.Conn) { start <- c },
		})
		_ = rtDial(t, url, nil) // reads ahead a few messages, then TCP pushes back
		sc := <-start
		msg := make([]byte, size)
		// Fill the loopback socket buffers (a few MiB), then the queue:
		// Write(ctx) gives up once the queue stayed full for its whole ctx.
		// (WriteMessage alone could be refused early in blocking mode, where
		// a burst waits in the queue for the writer goroutine.)
		var err error
		for i := 0; i < 1<<16 && err == nil; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			err = sc.Write(ctx, websocket.BinaryMessage, msg)
			cancel()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write(ctx) to a peer that does not read: got %v, want context.DeadlineExceeded", err)
		}
		if err := sc.WriteMessage(websocket.BinaryMessage, msg); !errors.Is(err, websocket.ErrWriteQueueFull) {
			t.Fatalf("WriteMessage on a full queue: got %v, want ErrWriteQueueFull", err)
		}
		if b := sc.Buffered(); b <= 0 || b > maxMsgs*frameSize {
			t.Errorf("Buffered when refused: got %d bytes, want 1 to %d (%d frames)", b, maxMsgs*frameSize, maxMsgs)
		}
	})
}

// TestCorkedBurstNotRefused: a reactor callback followed by more queued
// callbacks writes while corked (its frames are queued for one batched
// flush); a burst larger than WriteQueueMessages to a peer that reads must
// still go through, because the queue is offered to the kernel before a
// write is refused.
func TestCorkedBurstNotRefused(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the reactor runs on Linux only")
	}
	leakcheck.Check(t)
	const burst = 2000
	var mu sync.Mutex
	var writeErr error
	srv := websocket.NewServer(websocket.Config{Mode: websocket.ModeReactor, WriteQueueMessages: 4}, websocket.Handler{
		OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
			n := 1
			if string(data) == "burst" {
				n = burst
			}
			for i := range n {
				if err := c.WriteMessage(typ, fmt.Appendf(nil, "%s %d", data, i)); err != nil {
					mu.Lock()
					writeErr = errors.Join(writeErr, fmt.Errorf("%s #%d: %w", data, i, err))
					mu.Unlock()
					return
				}
			}
		},
	})
	c := dialRaw(t, rtServe(t, srv))
	// One TCP write: the three callbacks run back to back, corked.
	c.send(text("first"), text("burst"), text("last"))
	c.expectMessage(opText, []byte("first 0"))
	for i := range burst {
		c.expectMessage(opText, fmt.Appendf(nil, "burst %d", i))
	}
	c.expectMessage(opText, []byte("last 0"))
	mu.Lock()
	defer mu.Unlock()
	if writeErr != nil {
		t.Errorf("writes while corked to a reading peer: got %v, want none refused", writeErr)
	}
	_ = c.conn.Close() // so that Shutdown need not wait for our close frame
}
