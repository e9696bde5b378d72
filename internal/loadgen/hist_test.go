package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 123456789, 1 << 40, math.MaxInt64} {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, histBuckets)
		}
		mid := bucketMid(i)
		if err := math.Abs(float64(mid)-float64(v)) / math.Max(float64(v), 1); err > 0.01 {
			t.Errorf("bucket of %d has middle %d: relative error %.4f, want ≤ 0.01", v, mid, err)
		}
	}
	for v := uint64(0); v < 1<<12; v++ {
		if bucketOf(v+1) < bucketOf(v) {
			t.Fatalf("bucketOf not monotonic at %d", v)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	if got := h.quantile(0.5); got != 0 {
		t.Errorf("empty quantile: got %v, want 0", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var samples []time.Duration
	for range 100000 {
		d := time.Duration(r.ExpFloat64() * float64(200*time.Microsecond))
		samples = append(samples, d)
		h.record(d)
	}
	slices.Sort(samples)
	if got := h.count(); got != uint64(len(samples)) {
		t.Fatalf("count: got %d, want %d", got, len(samples))
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := h.quantile(q)
		if err := math.Abs(float64(got-want)) / float64(want); err > 0.01 {
			t.Errorf("quantile %v: got %v, want %v (±1%%)", q, got, want)
		}
	}
	if got, want := h.quantile(1), samples[len(samples)-1]; got != want {
		t.Errorf("max: got %v, want %v", got, want)
	}
}

func TestQuantileOf(t *testing.T) {
	s := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]time.Duration{0.5: 5, 0.99: 10, 1: 10, 0.1: 1, 0: 1} {
		if got := quantileOf(s, q); got != want {
			t.Errorf("quantileOf(1..10, %v): got %v, want %v", q, got, want)
		}
	}
	if got := quantileOf(nil, 0.5); got != 0 {
		t.Errorf("quantileOf(nil): got %v, want 0", got)
	}
}
