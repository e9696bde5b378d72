package faulttest

import (
	"testing"

	"github.com/wsgate/wsgate/client"
)

// TestLedger checks the judge itself: each kind of delivery fault is
// counted as what it is, so that a clean table means a clean run.
func TestLedger(t *testing.T) {
	push := func(n int64) event { return event{n: n} }
	lost := event{lost: true, reason: "wsgate: pushes lost"}
	tests := []struct {
		name     string
		unsure   []int64 // pushes without a 200 (the rest of 1..6 were accepted)
		events   []event
		want     counts
		problems int
	}{
		{name: "all in order", events: []event{push(1), push(2), push(3), push(4), push(5), push(6)},
			want: counts{due: 6, received: 6}},
		{name: "gap with a notice", events: []event{push(1), push(2), lost, push(5), push(6)},
			want: counts{due: 6, received: 4, lostSignalled: 2, notices: 1}},
		{name: "gap, notice elsewhere", events: []event{lost, push(1), push(2), push(5), push(6)},
			want: counts{due: 6, received: 4, lostSilent: 2, notices: 1}, problems: 2},
		{name: "tail lost after a notice", events: []event{push(1), push(2), push(3), push(4), lost},
			want: counts{due: 6, received: 4, lostSignalled: 2, notices: 1}},
		{name: "duplicate", events: []event{push(1), push(2), push(2), push(3), push(4), push(5), push(6)},
			want: counts{due: 6, received: 6, duplicates: 1}, problems: 1},
		{name: "reorder", events: []event{push(1), push(3), push(2), push(4), push(5), push(6)},
			want: counts{due: 6, received: 6, reorders: 1}, problems: 1},
		{name: "unsure push arrives out of order", unsure: []int64{3},
			events: []event{push(1), push(2), push(4), push(3), push(5), push(6)},
			want:   counts{due: 5, received: 5, unsureArrived: 1}},
		{name: "foreign payload", events: []event{push(1), push(2), push(3), push(4), push(5), push(6), {foreign: `"x"`}},
			want: counts{due: 6, received: 6, foreign: 1}, problems: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUserLog("u")
			skip := map[int64]bool{}
			for _, n := range tt.unsure {
				skip[n] = true
				u.failed(n, "HTTP 503")
			}
			for n := int64(1); n <= 6; n++ {
				if !skip[n] {
					u.ok(n, uint64(n))
				}
			}
			d := &device{user: u, name: "u/dev0", events: tt.events}
			got, problems := userCounts(u, []*device{d})
			g := got
			g.users, g.devices, g.accepted, g.unsure, g.restarts, g.slowest, g.reasons, g.failures = 0, 0, 0, 0, 0, 0, nil, nil
			if g.due != tt.want.due || g.received != tt.want.received || g.lostSignalled != tt.want.lostSignalled ||
				g.lostSilent != tt.want.lostSilent || g.duplicates != tt.want.duplicates || g.reorders != tt.want.reorders ||
				g.notices != tt.want.notices || g.unsureArrived != tt.want.unsureArrived || g.foreign != tt.want.foreign {
				t.Errorf("got %+v, want %+v", g, tt.want)
			}
			if len(problems) != tt.problems {
				t.Errorf("got %d problems %q, want %d", len(problems), problems, tt.problems)
			}
			if got.accepted != 6-len(tt.unsure) || got.unsure != len(tt.unsure) {
				t.Errorf("accepted %d, unsure %d; want %d, %d", got.accepted, got.unsure, 6-len(tt.unsure), len(tt.unsure))
			}
		})
	}
}

// TestPayloadParse: a device reads its user's push numbers back from the
// payload, and anything else is foreign.
func TestPayloadParse(t *testing.T) {
	u := newUserLog("s1-u02")
	d := &device{user: u}
	for _, p := range []string{u.payload(7), "s1-u02-x", "s1-u03-7", "s1-u02-0", ""} {
		d.onPush(client.Push{Action: pushAction, Seq: 1, Payload: []byte(p)})
	}
	if len(d.events) != 5 || d.events[0].n != 7 || d.events[0].foreign != "" || d.maxN != 7 {
		t.Fatalf("events %+v, maxN %d; want push 7 first", d.events, d.maxN)
	}
	for i, ev := range d.events[1:] {
		if ev.foreign == "" || ev.n != 0 {
			t.Errorf("event %d: %+v, want foreign", i+1, ev)
		}
	}
}
