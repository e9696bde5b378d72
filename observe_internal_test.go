package wsgate

import (
	"testing"
	"time"

	"github.com/wsgate/wsgate/wire"
)

func TestHistogramBuckets(t *testing.T) {
	var h histogram
	bounds := LatencyBounds()
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{bounds[0], 0},
		{bounds[0] + 1, 1},
		{bounds[len(bounds)-1], len(bounds) - 1},
		{bounds[len(bounds)-1] + 1, len(bounds)},
		{time.Hour, len(bounds)},
	} {
		before := h.snapshot()
		h.observe(tc.d)
		after := h.snapshot()
		for i := range after.Counts {
			want := before.Counts[i]
			if i == tc.want {
				want++
			}
			if after.Counts[i] != want {
				t.Errorf("observe(%v): bucket %d holds %d, want %d", tc.d, i, after.Counts[i], want)
			}
		}
		if got, want := after.Sum-before.Sum, tc.d; got != want {
			t.Errorf("observe(%v): sum grew by %v, want %v", tc.d, got, want)
		}
	}
	snap := h.snapshot()
	if got, want := snap.Count(), uint64(6); got != want {
		t.Errorf("Count: got %d, want %d", got, want)
	}
}

func TestCloseCountersOther(t *testing.T) {
	var c closeCounters
	c.add(1000)
	c.add(4000)
	c.add(4999) // not listed: "other"
	got := map[int]uint64{}
	for _, cc := range c.snapshot() {
		got[cc.Code] = cc.Count
	}
	if got[1000] != 1 || got[4000] != 1 || got[0] != 1 || got[1001] != 0 {
		t.Errorf("got %v, want 1000, 4000 and other (0) once each", got)
	}
}

func TestActionTable(t *testing.T) {
	o := newObserver([]wire.Action{160})
	o.actions.add(150)
	o.requested(150)
	o.requested(160)
	o.requested(wire.ActionSubscribe)
	o.requested(151) // not registered: "other"
	o.requested(151)
	got := map[wire.Action]uint64{}
	for _, a := range o.actions.snapshot() {
		got[a.Action] = a.Requests
	}
	if got[150] != 1 || got[160] != 1 || got[wire.ActionSubscribe] != 1 || got[0] != 2 {
		t.Errorf("got %v, want 150, 160 (CountActions) and subscribe once, other (0) twice", got)
	}
	if _, ok := got[151]; ok {
		t.Errorf("unregistered action 151 has its own entry: %v", got)
	}
}

// TestObserverAllocs checks that the hot-path updates allocate nothing.
func TestObserverAllocs(t *testing.T) {
	o := newObserver(nil)
	o.actions.add(150)
	start := time.Now()
	allocs := testing.AllocsPerRun(100, func() {
		o.requested(150).latency.observe(time.Millisecond)
		o.requested(999)
		o.pushed(kindTopic, 3, start)
		o.closes.add(1000)
		o.forms[formBinary].Add(1)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per update, want 0", allocs)
	}
}

// BenchmarkObserveRequest measures what the breakdowns add to one handled
// request besides the one clock read runHandler adds: the action's
// counter (twice looked up) and the histogram.
func BenchmarkObserveRequest(b *testing.B) {
	o := newObserver(nil)
	o.actions.add(150)
	d := time.Duration(0)
	for b.Loop() {
		o.requested(150)
		o.actions.get(150).latency.observe(d)
		d = (d + 37*time.Microsecond) % (20 * time.Millisecond)
	}
}

func TestCountActionsBound(t *testing.T) {
	many := make([]wire.Action, maxCountActions+1)
	for i := range many {
		many[i] = wire.MinAppAction + wire.Action(i)
	}
	if _, err := New(Config{InsecureNoAuth: true, CountActions: many}); err == nil {
		t.Errorf("New with %d CountActions: got no error, want one", len(many))
	}
	srv, err := New(Config{InsecureNoAuth: true, CountActions: many[:2]})
	if err != nil {
		t.Fatal(err)
	}
	got := map[wire.Action]bool{}
	for _, a := range srv.Stats().Actions {
		got[a.Action] = true
	}
	if !got[many[0]] || !got[many[1]] || !got[0] {
		t.Errorf("Stats.Actions: got %v, want entries for %d, %d and other (0)", got, many[0], many[1])
	}
}
