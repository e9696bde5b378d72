package redis_test

import (
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/broker/brokertest"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/internal/redistest"
)

// TestConformance runs the broker suite on a real redis-server per test,
// with its faults done to that process: a graceful restart, a kill and
// restore from an older snapshot, a kill and start with no data.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	stores := map[*testing.T]*redistest.Server{}
	store := func(t *testing.T) *redistest.Server {
		mu.Lock()
		defer mu.Unlock()
		if s := stores[t]; s != nil {
			return s
		}
		s := redistest.Start(t)
		stores[t] = s
		t.Cleanup(func() { mu.Lock(); delete(stores, t); mu.Unlock() })
		return s
	}
	brokertest.Run(t, brokertest.Harness{
		New: func(t *testing.T, o brokertest.Options) broker.Broker {
			b, err := redisbroker.New(redisbroker.Options{
				URL: store(t).URL(), HistorySize: o.Size, HistoryBytes: o.Bytes, HistoryTTL: o.TTL, Now: o.Now,
				FlushInterval: 20 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() }) // after Run has returned (registered first, runs last)
			return b
		},
		Shared:          true,
		Crash:           func(b broker.Broker) { _ = b.(*redisbroker.Broker).Close() }, // its connections are gone
		GracefulRestart: func(t *testing.T) { store(t).GracefulRestart() },
		Snapshot:        func(t *testing.T) func() { return store(t).Snapshot() },
		Wipe:            func(t *testing.T) { store(t).Wipe() },
	})
}
