package wire_test

import (
	"math"
	"testing"
	"time"

	"github.com/wsgate/wsgate/wire"
)

func TestBackoffCustomAndOddInputs(t *testing.T) {
	b := wire.Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	tests := []struct {
		attempt int
		random  float64
		want    time.Duration
	}{
		{0, 0, 5 * time.Millisecond},
		{0, 1, 10 * time.Millisecond}, // random clamped to 1: full cap
		{0, 7, 10 * time.Millisecond}, // out of range: clamped
		{0, -3, 5 * time.Millisecond}, // negative: 0
		{0, math.NaN(), 5 * time.Millisecond},
		{3, 0.5, 60 * time.Millisecond}, // cap 80ms
		{4, 0, 50 * time.Millisecond},   // cap 160ms → Max 100ms
		{math.MaxInt, 0, 50 * time.Millisecond},
		{math.MinInt, 0, 5 * time.Millisecond},
	}
	for _, tc := range tests {
		if got := b.Delay(tc.attempt, tc.random); got != tc.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tc.attempt, tc.random, got, tc.want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	var b wire.Backoff
	for attempt := range 70 {
		for _, r := range []float64{0, 0.25, 0.5, 0.999999} {
			d := b.Delay(attempt, r)
			if d < 250*time.Millisecond || d > 30*time.Second {
				t.Fatalf("Delay(%d, %v) = %v, outside [250ms, 30s]", attempt, r, d)
			}
		}
	}
}
