package wsgate

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
	"unsafe"
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
	if !b.full(now) {
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

// refBucket is the token bucket as it was counted before tokenBucket kept
// only its refill time: tokens and the time they were counted, here in
// billionths of a token so that integer rates are exact.
type refBucket struct {
	nanoTokens int64 // tokens × 1e9
	last       int64
}

func (b *refBucket) take(now, rate, burst int64) (bool, time.Duration) {
	if b.last == 0 {
		b.nanoTokens = burst * 1e9
	} else if elapsed := now - b.last; elapsed > 0 {
		b.nanoTokens = min(burst*1e9, b.nanoTokens+elapsed*rate)
	}
	b.last = now
	if b.nanoTokens >= 1e9 {
		b.nanoTokens -= 1e9
		return true, 0
	}
	return false, time.Duration((1e9 - b.nanoTokens + rate - 1) / rate) // rounded up to whole ns
}

// TestTokenBucketSameAsCounting: the one-word bucket allows and refuses
// exactly the takes a bucket counting its tokens would, with the same wait,
// over random arrivals (bursts, steady streams, long pauses) at rates whose
// interval is a whole number of nanoseconds.
func TestTokenBucketSameAsCounting(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rate := range []int64{1, 8, 10, 100, 250, 1000, 1_000_000} {
		for _, burst := range []int64{1, 2, 2 * rate} {
			var b tokenBucket
			var ref refBucket
			now := int64(1)
			iv := 1e9 / rate
			for i := range 5000 {
				switch rng.IntN(4) {
				case 0: // same instant
				case 1:
					now += rng.Int64N(iv) // within one interval
				case 2:
					now += rng.Int64N(3 * burst * iv) // up to a few refills
				case 3:
					now += iv // exactly one token later
				}
				got, gotWait := b.take(now, float64(rate), float64(burst))
				want, wantWait := ref.take(now, rate, burst)
				if got != want || gotWait != wantWait {
					t.Fatalf("rate %d burst %d take %d at %d: got %v, %v; want %v, %v",
						rate, burst, i, now, got, gotWait, want, wantWait)
				}
				if full := ref.nanoTokens == burst*1e9; b.full(now) != full {
					t.Fatalf("rate %d burst %d after take %d: full got %v, want %v", rate, burst, i, b.full(now), full)
				}
			}
		}
	}
}

// TestTokenBucketLongIdle: after idling for years (far beyond any 32-bit
// clock) the bucket is full again, holds exactly its burst, and is empty
// after it.
func TestTokenBucketLongIdle(t *testing.T) {
	const rate, burst = 100.0, 200.0
	var b tokenBucket
	now := int64(1)
	for range 200 {
		b.take(now, rate, burst)
	}
	if ok, _ := b.take(now, rate, burst); ok {
		t.Fatal("take 201 at one instant: got allowed, want refused")
	}
	for _, idle := range []time.Duration{50 * 24 * time.Hour, 10 * 365 * 24 * time.Hour, 200 * 365 * 24 * time.Hour} {
		now += int64(idle)
		if !b.full(now) {
			t.Fatalf("after %v idle: not full", idle)
		}
		for i := range 200 {
			if ok, _ := b.take(now, rate, burst); !ok {
				t.Fatalf("after %v idle, take %d: got refused, want allowed", idle, i)
			}
		}
		if ok, wait := b.take(now, rate, burst); ok || wait != 10*time.Millisecond {
			t.Fatalf("after %v idle, take 201: got %v, %v; want refused, 10ms", idle, ok, wait)
		}
	}
}

// TestTokenBucketExtremeRates: rates beyond the bucket's nanosecond
// resolution neither overflow nor refuse forever; a fractional burst below
// one token refuses, as a counted bucket never reaching one token would.
func TestTokenBucketExtremeRates(t *testing.T) {
	now := int64(1)
	var fast tokenBucket
	for i := range 1000 {
		if ok, _ := fast.take(now, 1e12, 2e12); !ok {
			t.Fatalf("rate 1e12, take %d: got refused, want allowed", i)
		}
	}
	var slow tokenBucket
	if ok, _ := slow.take(now, 1e-12, 2e-12); ok {
		t.Error("rate 1e-12 burst 2e-12 (below one token): got allowed, want refused")
	}
	var tiny tokenBucket
	if ok, _ := tiny.take(now, 1e-12, 1); !ok {
		t.Error("rate 1e-12 burst 1, first take: got refused, want allowed")
	}
	if ok, wait := tiny.take(now, 1e-12, 1); ok || wait <= 0 {
		t.Errorf("rate 1e-12 burst 1, second take: got %v, %v; want refused with a positive wait", ok, wait)
	}
}

func TestTokenBucketSize(t *testing.T) {
	if n := unsafe.Sizeof(tokenBucket{}); n != 8 {
		t.Errorf("tokenBucket is %d bytes, want 8", n)
	}
}
