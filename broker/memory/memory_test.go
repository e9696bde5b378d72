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
