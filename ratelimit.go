package wsgate

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

// tokenBucket is a token bucket small enough to live in every session: one
// word, no lock (its owner serialises access), no timer. It keeps the time
// at which the bucket is full again rather than a count of tokens and the
// time it was counted (the generic cell rate algorithm): taking a token
// moves that time one interval (1/rate) later, and a take is allowed while
// it stays within burst intervals of now. That is the same bucket as a
// count of tokens, in 8 bytes instead of 16, in whole nanoseconds, with no
// coarse clock that could wrap during a long idle. Times are monotonic
// nanoseconds from the server's clock (Server.now); rate and burst are
// positive.
type tokenBucket struct {
	fullAt int64 // when the bucket is full again; 0 (or any time <= now) = full
}

// Bounds of the bucket's intervals, so that extreme rates cannot overflow
// its arithmetic: a rate above 1e9/s allows one take per nanosecond, one
// below one take in 2^52 ns (52 days) is treated as one in 52 days.
const (
	minInterval = 1
	maxInterval = 1 << 52
)

// take refills the bucket for the time elapsed since the last call and takes
// one token. It returns false, and how long until a token is available, when
// the bucket is empty.
func (b *tokenBucket) take(now int64, rate, burst float64) (bool, time.Duration) {
	iv := int64(min(max(math.Round(1e9/rate), minInterval), maxInterval))
	span := int64(min(burst*float64(iv), maxInterval*(1<<8))) // burst tokens' worth of time
	next := max(b.fullAt, now) + iv
	if next-now <= span {
		b.fullAt = next
		return true, 0
	}
	return false, time.Duration(next - span - now)
}

// full reports whether the bucket has refilled completely by now, so that
// forgetting it changes nothing.
func (b *tokenBucket) full(now int64) bool {
	return b.fullAt <= now
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
		if b.full(now) {
			delete(sh.buckets, ip)
		}
	}
	if len(sh.buckets) >= ipShardCapacity {
		clear(sh.buckets)
	}
}
