package redis

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/broker"
)

// TestAckDuringFlush: acks recorded while a flush takes the pending ones
// never touch the map the flush is writing (run under -race). The store
// is unreachable, so every flush fails fast and puts its acks back.
func TestAckDuringFlush(t *testing.T) {
	b, err := New(Options{URL: "redis://127.0.0.1:1/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }() // nothing was connected
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := uint64(0); ctx.Err() == nil; i++ {
			b.Ack("u", broker.Position{Epoch: 1, Seq: i})
			if i%16 == 0 {
				time.Sleep(50 * time.Microsecond) // let flushes find the map empty too
			}
		}
	})
	for ctx.Err() == nil {
		_ = b.flush(ctx) // fails: nothing listens there
	}
	wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.acks[ackKey{"u", 1}] == 0 {
		t.Error("acks lost by failed flushes: want them kept for the next")
	}
}
