package memory_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/broker/brokertest"
	"github.com/wsgate/wsgate/broker/memory"
)

func TestConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Harness{
		New: func(t *testing.T, o brokertest.Options) broker.Broker {
			return memory.New(memory.Options{Size: o.Size, Bytes: o.Bytes, TTL: o.TTL, Total: 1 << 30, Now: o.Now})
		},
	})
}

// TestStateIsBounded: what the broker keeps for users nobody is connected
// as (history, and tombstones of users whose pushes were not kept or have
// expired) stays within Total, and goes after TTL even when nobody
// publishes.
func TestStateIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		bytes int // payload of each push
	}{
		{"history off", 0, 10},
		{"push too large to keep", 10, 8 << 10},
		{"history kept", 10, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var now atomic.Int64
			now.Store(time.Now().UnixNano())
			const total = 64 << 10
			b := memory.New(memory.Options{Size: tc.size, Bytes: 4 << 10, TTL: time.Hour, Total: total,
				SweepInterval: time.Millisecond, Now: func() time.Time { return time.Unix(0, now.Load()) }})
			for i := range 10000 {
				m := broker.Message{Target: broker.Target{User: strconv.Itoa(i)}, Action: 120, Payload: make([]byte, tc.bytes)}
				if _, err := b.Publish(context.Background(), &m); err != nil {
					t.Fatal(err)
				}
			}
			bytes, users, evicted := b.Usage()
			if bytes > total || b.States() != users || b.States() > total/192 || evicted == 0 && tc.size > 0 && tc.bytes < 4<<10 {
				t.Errorf("after 10000 users: %d bytes accounted, %d listed, %d states, %d evicted; want <= %d bytes, every state listed",
					bytes, users, b.States(), evicted, total)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- b.Run(ctx) }()
			// Messages expire after one TTL and leave tombstones, which
			// go one TTL later.
			deadline := time.Now().Add(10 * time.Second)
			for step := 0; b.States() > 0 && time.Now().Before(deadline); step++ {
				if step%100 == 0 {
					now.Add(int64(time.Hour))
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := b.States(); n != 0 {
				t.Errorf("hours later: %d states left, want 0", n)
			}
		})
	}
}

// TestPublishKeepsACopy: the history and the delivery hold their own copy
// of a push's payload, whatever its size (small ones share the message's
// allocation), so the publisher may reuse its buffer; a nil payload stays
// nil and an empty one empty.
func TestPublishKeepsACopy(t *testing.T) {
	b := memory.New(memory.Options{Size: 100, Bytes: 1 << 20, TTL: time.Hour, Total: 1 << 30})
	var delivered []*broker.Message
	if err := b.Bind(func(_ context.Context, m *broker.Message) (int, error) {
		delivered = append(delivered, m) // Publish delivers on its own goroutine
		return 1, nil
	}); err != nil {
		t.Fatal(err)
	}
	sizes := []int{-1, 0, 1, 71, 72, 73, 151, 152, 153, 4000} // -1: nil
	var want [][]byte
	for i, n := range sizes {
		var p []byte
		if n >= 0 {
			p = make([]byte, n)
			for j := range p {
				p[j] = byte(i + j)
			}
		}
		want = append(want, append([]byte(nil), p...))
		m := broker.Message{Target: broker.Target{User: "u"}, Action: 120, Payload: p}
		if _, err := b.Publish(context.Background(), &m); err != nil {
			t.Fatal(err)
		}
		for j := range p {
			p[j] = 0xff // the publisher reuses its buffer
		}
	}
	h, err := b.History(context.Background(), "u", broker.Position{})
	if err != nil || len(h.Messages) != len(sizes) || len(delivered) != len(sizes) {
		t.Fatalf("History: %d messages, %v; %d delivered; want %d of each", len(h.Messages), err, len(delivered), len(sizes))
	}
	for i := range sizes {
		for _, got := range []*broker.Message{&h.Messages[i], delivered[i]} {
			if string(got.Payload) != string(want[i]) || (got.Payload == nil) != (sizes[i] < 0) || got.Seq != uint64(i+1) || got.Target.User != "u" {
				t.Errorf("push %d (%d bytes): got seq %d user %q payload %x (nil %t), want seq %d payload %x",
					i, sizes[i], got.Seq, got.Target.User, got.Payload, got.Payload == nil, i+1, want[i])
			}
		}
	}
}
