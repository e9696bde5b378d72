package wsgate

import (
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"testing"
)

// checkSet verifies t against the model: the same sessions, the
// count, find of every session of pool (by its id when ids are unique),
// and every session reachable from its home slot without crossing
// a free one (what lookups and backward-shift deletion rely on).
func checkSet(tb testing.TB, t *sessionSet, model map[*session]bool, pool []*session, unique bool) {
	tb.Helper()
	for _, s := range pool {
		f := t.find(s.id)
		switch {
		case model[s] && (f == nil || f.id != s.id):
			tb.Fatalf("find %d: got %v, want a session with that id", s.id, f)
		case unique && model[s] && f != s:
			tb.Fatalf("find %d: got another session", s.id)
		case unique && !model[s] && f != nil:
			tb.Fatalf("find %d: got a session, want none", s.id)
		}
	}
	if t.n != len(model) {
		tb.Fatalf("count: got %d, want %d", t.n, len(model))
	}
	got := t.appendTo(nil)
	if len(got) != len(model) {
		tb.Fatalf("appendTo: got %d sessions, want %d", len(got), len(model))
	}
	for _, s := range got {
		if !model[s] {
			tb.Fatalf("appendTo: session %d is not subscribed", s.id)
		}
	}
	if t.n*4 > len(t.slots)*3 {
		tb.Fatalf("%d sessions in %d slots: fuller than 3/4", t.n, len(t.slots))
	}
	mask := len(t.slots) - 1
	for i, s := range t.slots {
		if s == nil {
			continue
		}
		for j := home(s.id, mask); j != i; j = (j + 1) & mask {
			if t.slots[j] == nil {
				tb.Fatalf("session %d in slot %d: a free slot %d lies between it and its home", s.id, i, j)
			}
		}
	}
}

// TestSessionSetRandom adds and removes sessions at random (twice added,
// never added and removed twice included) and checks the set against a map
// after every step, for ids that are consecutive, random, or all equal
// (the longest probe runs).
func TestSessionSetRandom(t *testing.T) {
	for _, ids := range []struct {
		name string
		id   func(rng *rand.Rand, i int) uint64
	}{
		{"consecutive", func(_ *rand.Rand, i int) uint64 { return uint64(i + 1) }},
		{"random", func(rng *rand.Rand, _ int) uint64 { return rng.Uint64() }},
		{"equal", func(*rand.Rand, int) uint64 { return 7 }},
	} {
		t.Run(ids.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			pool := make([]*session, 300)
			for i := range pool {
				pool[i] = &session{id: ids.id(rng, i)}
			}
			var set sessionSet
			model := map[*session]bool{}
			for step := range 20000 {
				s := pool[rng.IntN(len(pool))]
				// Phases: mostly adding, then mostly removing, so that the
				// table grows and shrinks.
				adding := rng.IntN(10) < 7
				if step/2000%2 == 1 {
					adding = !adding
				}
				if adding {
					if got := set.add(s); got == model[s] {
						t.Fatalf("step %d: add of a session subscribed=%v reported %v", step, model[s], got)
					}
					model[s] = true
				} else {
					if got := set.remove(s); got != model[s] {
						t.Fatalf("step %d: remove of a session subscribed=%v reported %v", step, model[s], got)
					}
					delete(model, s)
				}
				checkSet(t, &set, model, pool, ids.name != "equal")
			}
		})
	}
}

// TestSessionSetShrink: a topic that grew big and emptied again gives
// its table back.
func TestSessionSetShrink(t *testing.T) {
	var set sessionSet
	list := make([]*session, 10000)
	for i := range list {
		list[i] = &session{id: uint64(i + 1)}
		set.add(list[i])
	}
	big := len(set.slots)
	for _, s := range list[1:] {
		set.remove(s)
	}
	checkSet(t, &set, map[*session]bool{list[0]: true}, list, true)
	if len(set.slots) > shrinkFloor {
		t.Errorf("one session left of 10000: got %d slots (of %d at most), want at most %d", len(set.slots), big, shrinkFloor)
	}
}

// BenchmarkRegistryAppendTopic measures a fanout's snapshot of a topic
// with 10,000 subscribers.
func BenchmarkRegistryAppendTopic(b *testing.B) {
	r := newRegistry(testIDs)
	for range 10000 {
		s := newTestSession("s", "")
		r.add(s)
		r.subscribe(s, "big")
	}
	dst := make([]*session, 0, 10000)
	b.ResetTimer()
	for range b.N {
		dst = r.appendTopic(dst[:0], "big")
	}
	if len(dst) != 10000 {
		b.Fatalf("snapshot: got %d sessions, want 10000", len(dst))
	}
}

// BenchmarkRegistryChurn measures a connection coming and going (the
// registry's part of a handshake and a close, its user included) while 100
// others are open, as in bench/peer's connect scenario (100 dialers).
func BenchmarkRegistryChurn(b *testing.B) {
	r := newRegistry(testIDs)
	open := make([]*session, 100)
	for i := range open {
		open[i] = newTestSession("s", "u"+strconv.Itoa(i))
		r.add(open[i])
	}
	b.ResetTimer()
	for i := range b.N {
		k := i % len(open)
		r.remove(open[k])
		open[k] = &session{id: testIDs.newID(), identity: open[k].identity}
		r.add(open[k])
	}
}

// TestUserIndexRandom sets and forgets users' first sessions at random
// and checks the index against a map after every step: every user's head,
// the count, and every head reachable from its home slot without crossing
// a free one.
func TestUserIndexRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	seed := maphash.MakeSeed()
	users := make([]string, 300)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
	}
	var x userIndex
	model := map[string]*session{}
	for step := range 20000 {
		user := users[rng.IntN(len(users))]
		h := maphash.String(seed, user)
		adding := rng.IntN(10) < 7
		if step/2000%2 == 1 { // phases: the table grows and shrinks
			adding = !adding
		}
		var head *session
		if adding {
			head = &session{identity: connIdentity{UserID: user}}
			model[user] = head
		} else {
			delete(model, user)
		}
		x.set(h, user, head, seed)
		if x.n != len(model) {
			t.Fatalf("step %d: count got %d, want %d", step, x.n, len(model))
		}
		for _, u := range users {
			if got := x.head(maphash.String(seed, u), u); got != model[u] {
				t.Fatalf("step %d: head of %s: got %p, want %p", step, u, got, model[u])
			}
		}
		if x.n*4 > len(x.slots)*3 {
			t.Fatalf("step %d: %d users in %d slots: fuller than 3/4", step, x.n, len(x.slots))
		}
		mask := len(x.slots) - 1
		for i, p := range x.slots {
			if p == nil {
				continue
			}
			for j := slotOf(maphash.String(seed, p.identity.UserID), mask); j != i; j = (j + 1) & mask {
				if x.slots[j] == nil {
					t.Fatalf("step %d: %s in slot %d: a free slot %d lies between it and its home", step, p.identity.UserID, i, j)
				}
			}
		}
	}
	if len(model) == 0 && len(x.slots) > shrinkFloor {
		t.Errorf("all users gone: %d slots kept, want at most %d", len(x.slots), shrinkFloor)
	}
}
