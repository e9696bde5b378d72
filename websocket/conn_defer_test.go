package websocket_test

import (
	"context"
	"testing"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

// TestEnqueueWaitsForFlush: in reactor mode, Enqueue and EnqueueMessage
// leave their frames in the write queue (nothing is written on the calling
// goroutine) until Flush, which sends them in order behind what was there;
// in blocking mode the writer goroutine sends them as always.
func TestEnqueueWaitsForFlush(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		start := make(chan *websocket.Conn, 1)
		_, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnOpen: func(c *websocket.Conn) { start <- c },
		})
		cc := rtDial(t, url, nil)
		sc := <-start
		pm, err := websocket.NewPreparedMessage(websocket.BinaryMessage, []byte("one"))
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.Enqueue(pm); err != nil {
			t.Fatal(err)
		}
		if err := sc.EnqueueMessage(websocket.TextMessage, []byte("two")); err != nil {
			t.Fatal(err)
		}
		if mode == websocket.ModeReactor {
			if b := sc.Buffered(); b != 2*(2+3) {
				t.Fatalf("Buffered after two Enqueues: got %d, want %d (both frames waiting)", b, 2*(2+3))
			}
		}
		if err := sc.EnqueueMessage(3, nil); err == nil {
			t.Error("EnqueueMessage of a control type: got nil, want an error")
		}
		sc.Flush()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, want := range []string{"one", "two"} {
			if _, got, err := cc.Read(ctx); err != nil || string(got) != want {
				t.Fatalf("read: got %q, %v; want %q", got, err, want)
			}
		}
	})
}
