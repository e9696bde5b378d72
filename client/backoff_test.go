package client

import (
	"testing"
	"time"
)

func TestBackoffWindow(t *testing.T) {
	b := Backoff{}.withDefaults()
	want := []time.Duration{
		250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
		4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second,
	}
	for n, w := range want {
		if got := b.window(n); got != w {
			t.Errorf("window(%d): got %v, want %v", n, got, w)
		}
	}
	if got := b.window(1000); got != 30*time.Second {
		t.Errorf("window(1000): got %v, want the 30s cap (no overflow)", got)
	}
}

func TestBackoffFullJitter(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 8 * time.Second}.withDefaults()
	cases := []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{0, 0, 0}, {0, 0.5, 500 * time.Millisecond}, {2, 0.25, time.Second}, {3, 0.999, 7992 * time.Millisecond}, {10, 0.5, 4 * time.Second},
	}
	for _, tc := range cases {
		if got := b.delay(tc.n, func() float64 { return tc.r }); got != tc.want {
			t.Errorf("delay(%d) with rand %v: got %v, want %v", tc.n, tc.r, got, tc.want)
		}
	}
}

func TestBackoffDefaults(t *testing.T) {
	b := Backoff{Base: time.Minute, Max: time.Second}.withDefaults()
	if b.Max != time.Minute {
		t.Errorf("Max below Base: got %v, want it raised to Base (%v)", b.Max, time.Minute)
	}
	if b.Stable != 10*time.Second {
		t.Errorf("Stable: got %v, want 10s", b.Stable)
	}
}
