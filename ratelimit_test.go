package wsgate

import (
	"net/netip"
	"testing"
	"time"
)

func TestTokenBucket(t *testing.T) {
	const rate, burst = 10.0, 20.0
	var b tokenBucket
	now := int64(1)
	for i := range 20 {
		if ok, _ := b.take(now, rate, burst); !ok {
			t.Fatalf("take %d of the burst: got refused, want allowed", i)
		}
	}
	ok, wait := b.take(now, rate, burst)
	if ok {
		t.Fatal("take beyond the burst: got allowed, want refused")
	}
	if wait <= 0 || wait > 100*time.Millisecond {
		t.Errorf("wait after an empty bucket: got %v, want (0, 100ms]", wait)
	}
	now += int64(100 * time.Millisecond) // refills exactly one token
	if ok, _ := b.take(now, rate, burst); !ok {
		t.Error("take after 100ms at 10/s: got refused, want allowed")
	}
	if ok, _ := b.take(now, rate, burst); ok {
		t.Error("second take after 100ms at 10/s: got allowed, want refused")
	}
	now += int64(time.Hour)
	if !b.full(now, rate, burst) {
		t.Error("full after an hour: got false, want true")
	}
}

func TestIPLimiterPerIP(t *testing.T) {
	l := newIPLimiter(1) // burst 2
	now := int64(1)
	ip1, ip2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for i := range 2 {
		if ok, _ := l.allow(ip1, now); !ok {
			t.Fatalf("handshake %d within burst: got refused, want allowed", i)
		}
	}
	if ok, _ := l.allow(ip1, now); ok {
		t.Error("third handshake: got allowed, want refused")
	}
	if ok, _ := l.allow(ip2, now); !ok {
		t.Error("another IP: got refused, want allowed")
	}
	if newIPLimiter(-1) != nil {
		t.Error("negative rate: got a limiter, want nil (unlimited)")
	}
	var unlimited *ipLimiter
	if ok, _ := unlimited.allow(ip1, now); !ok {
		t.Error("nil limiter: got refused, want allowed")
	}
}

// TestIPLimiterBounded floods the limiter with distinct addresses and checks
// that no shard grows past its capacity.
func TestIPLimiterBounded(t *testing.T) {
	l := newIPLimiter(1)
	now := int64(1)
	for i := range ipShards * ipShardCapacity * 2 {
		l.allow(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), now)
	}
	for i := range l.shards {
		if n := len(l.shards[i].buckets); n > ipShardCapacity {
			t.Errorf("shard %d: got %d buckets, want at most %d", i, n, ipShardCapacity)
		}
	}
}
