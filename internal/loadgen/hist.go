package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records durations from many goroutines without locks or
// allocation: log-linear buckets, 128 per power of two, so a quantile is off
// by less than 1 % of its value. Values below 256 ns are exact.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
}

const (
	subBits     = 7 // 2^7 sub-buckets per power of two
	histBuckets = (65 - subBits) << subBits
)

func bucketOf(v uint64) int {
	if v < 2<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	return (shift+1)<<subBits + int(v>>shift) - 1<<subBits
}

// bucketMid is the middle of bucket i's value range.
func bucketMid(i int) uint64 {
	if i < 2<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	low := uint64(i&(1<<subBits-1)+1<<subBits) << shift
	return low + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *histogram) count() uint64 { return h.total.Load() }

// quantile returns the value below which a fraction q of the samples lie;
// q ≥ 1 returns the exact maximum, and an empty histogram returns 0.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max.Load())
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(bucketMid(i)), time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}
