package client

import (
	"math/rand/v2"
	"time"
)

// Backoff is the reconnect delay policy: exponential with full jitter. The
// n-th consecutive failed attempt (n from 0) waits a uniformly random time in
// [0, min(Max, Base·2ⁿ)). Full jitter spreads the clients of a restarted
// server over the whole window instead of bringing them back in waves.
type Backoff struct {
	Base time.Duration // first window; default 250 ms
	Max  time.Duration // cap on the window; default 30 s
	// Stable is how long a connection must stay up for the next disconnect to
	// start again from Base; default 10 s. A server that accepts and then
	// drops at once still sees growing delays.
	Stable time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = 250 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	if b.Stable <= 0 {
		b.Stable = 10 * time.Second
	}
	return b
}

// window is the upper bound of the delay before attempt n.
func (b Backoff) window(n int) time.Duration {
	w := b.Base
	for i := 0; i < n && w < b.Max; i++ {
		w *= 2
	}
	return min(w, b.Max)
}

// delay picks the wait before attempt n; rnd returns a float in [0, 1).
func (b Backoff) delay(n int, rnd func() float64) time.Duration {
	return time.Duration(rnd() * float64(b.window(n)))
}

// clock is the time source of the reconnect loop, replaced in tests.
type clock struct {
	now   func() time.Time
	timer func(d time.Duration) (<-chan time.Time, func() bool)
	rand  func() float64
}

func realClock() clock {
	return clock{
		now: time.Now,
		timer: func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		},
		rand: rand.Float64,
	}
}
