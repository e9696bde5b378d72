package memory_test

import (
	"context"
	"testing"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/broker/brokertest"
	"github.com/wsgate/wsgate/broker/memory"
)

func TestConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Harness{
		New: func(t *testing.T, o brokertest.Options) broker.Broker {
			return memory.New(memory.Options{Size: o.Size, Bytes: o.Bytes, TTL: o.TTL, Total: 1 << 30, Now: o.Now})
		},
		ForgetsIdleUsers: true,
	})
}

// TestStateIsBounded: pushes to users nobody is connected as leave no state
// behind when they are not kept (history off, or a push too large to
// keep), and the history of many users stays within Total.
func TestStateIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  memory.Options
		bytes int
	}{
		{"history off", memory.Options{Size: 0, Bytes: 1 << 20, TTL: 1 << 40, Total: 1 << 30}, 10},
		{"push too large", memory.Options{Size: 10, Bytes: 4, TTL: 1 << 40, Total: 1 << 30}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := memory.New(tc.opts)
			for i := range 10000 {
				m := broker.Message{Target: broker.Target{User: "u" + string(rune('a'+i%26)) + string(rune(i))}, Action: 120, Payload: make([]byte, tc.bytes)}
				if _, err := b.Publish(context.Background(), &m); err != nil {
					t.Fatal(err)
				}
			}
			if n := b.States(); n != 0 {
				t.Errorf("got state for %d users, want 0", n)
			}
		})
	}
	b := memory.New(memory.Options{Size: 10, Bytes: 1 << 20, TTL: 1 << 40, Total: 64 << 10})
	for i := range 10000 {
		m := broker.Message{Target: broker.Target{User: string(rune(i + 1000))}, Action: 120, Payload: make([]byte, 100)}
		if _, err := b.Publish(context.Background(), &m); err != nil {
			t.Fatal(err)
		}
	}
	bytes, users, evicted := b.Usage()
	if bytes > 64<<10 || b.States() != users || evicted == 0 {
		t.Errorf("usage %d bytes, %d users with history, %d states, %d evicted; want <= 64 KiB, states = users, some evicted", bytes, users, b.States(), evicted)
	}
}
