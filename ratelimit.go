package wsgate

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

// tokenBucket is a token bucket small enough to live in every session: 16
// bytes, no lock (its owner serialises access), no timer. Times are
// monotonic nanoseconds from the server's clock.
type tokenBucket struct {
	tokens float64 // tokens left after the last take, at time last
	last   int64   // when tokens was computed; 0 = never used (bucket full)
}

// take refills the bucket for the time elapsed since the last call and takes
// one token. It returns false, and how long until a token is available, when
// the bucket is empty.
func (b *tokenBucket) take(now int64, rate, burst float64) (bool, time.Duration) {
	if b.last == 0 {
		b.tokens = burst
	} else if elapsed := now - b.last; elapsed > 0 {
		b.tokens = math.Min(burst, b.tokens+float64(elapsed)*rate/1e9)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * 1e9)
}

// full reports whether the bucket has refilled completely by now, so that
// forgetting it changes nothing.
func (b *tokenBucket) full(now int64, rate, burst float64) bool {
	return b.tokens+float64(now-b.last)*rate/1e9 >= burst
}

const (
	ipShards        = 16
	ipShardCapacity = 4096 // buckets per shard before a sweep; bounds memory at ~64k tracked IPs
)

// ipLimiter limits handshakes per client IP. Its memory is bounded: a shard
// that reaches ipShardCapacity drops the buckets that have refilled, and if
// that is not enough (a flood from many addresses) it starts over, which
// errs on the side of letting clients in rather than growing.
type ipLimiter struct {
	rate, burst float64
	seed        maphash.Seed
	shards      [ipShards]ipShard
}

type ipShard struct {
	mu      sync.Mutex
	buckets map[netip.Addr]tokenBucket
}

// newIPLimiter returns nil when rate is negative (unlimited).
func newIPLimiter(rate float64) *ipLimiter {
	if rate < 0 {
		return nil
	}
	l := &ipLimiter{rate: rate, burst: 2 * rate, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].buckets = make(map[netip.Addr]tokenBucket)
	}
	return l
}

// allow takes one handshake token for key (perIPKey of the client's
// address) at time now.
func (l *ipLimiter) allow(key netip.Addr, now int64) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	a := key.As16()
	sh := &l.shards[maphash.Bytes(l.seed, a[:])%ipShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, ok := sh.buckets[key]
	if !ok && len(sh.buckets) >= ipShardCapacity {
		l.sweep(sh, now)
	}
	allowed, wait := b.take(now, l.rate, l.burst)
	sh.buckets[key] = b
	return allowed, wait
}

// sweep forgets refilled buckets; sh.mu is held.
func (l *ipLimiter) sweep(sh *ipShard, now int64) {
	for ip, b := range sh.buckets {
		if b.full(now, l.rate, l.burst) {
			delete(sh.buckets, ip)
		}
	}
	if len(sh.buckets) >= ipShardCapacity {
		clear(sh.buckets)
	}
}
