package redis_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/broker"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/internal/redistest"
)

// BenchmarkRetainedPushMemory measures what Redis holds per retained push:
// 64-byte payloads to 1,000 users, each keeping up to 256, with the used
// memory Redis reports before and after. Run with -benchtime=256000x to
// fill every user's history.
func BenchmarkRetainedPushMemory(b *testing.B) {
	r := redistest.Start(b)
	rdb := r.Client()
	br, err := redisbroker.New(redisbroker.Options{URL: r.URL(), HistorySize: 256})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = br.Close() }() // nothing left to write
	ctx := context.Background()
	payload := []byte(strings.Repeat("x", 64))
	before := usedMemory(b, rdb.Info(ctx, "memory").Val())
	b.ResetTimer()
	for i := range b.N {
		m := broker.Message{Target: broker.Target{User: "user" + strconv.Itoa(i%1000)}, Action: 120, Payload: payload}
		if _, err := br.Publish(ctx, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	after := usedMemory(b, rdb.Info(ctx, "memory").Val())
	retained := min(b.N, 1000*256)
	b.ReportMetric(float64(after-before)/float64(retained), "redis-bytes/retained-push")
}

func usedMemory(b *testing.B, info string) int64 {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}
