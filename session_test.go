package wsgate

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"
)

func TestMayAccess(t *testing.T) {
	tests := []struct {
		topics []string
		topic  string
		want   bool
	}{
		{nil, "anything", true},
		{[]string{}, "news", false},
		{[]string{"news"}, "news", true},
		{[]string{"news"}, "news.sport", false},
		{[]string{"news.*"}, "news.sport", true},
		{[]string{"news.*"}, "news.", true},
		{[]string{"news.*"}, "news", false},
		{[]string{"*"}, "x", true},
		{[]string{"a", "b*"}, "bee", true},
	}
	for _, tt := range tests {
		id := connIdentity{Topics: allowTopics(tt.topics)}
		if got := id.mayAccess(tt.topic); got != tt.want {
			t.Errorf("Topics %q, topic %q: got %v, want %v", tt.topics, tt.topic, got, tt.want)
		}
	}
}

func TestIDsUnique(t *testing.T) {
	g1, err := newIDGenerator()
	if err != nil {
		t.Fatal(err)
	}
	g2, err := newIDGenerator()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for range 1000 {
		for _, id := range []string{g1.format(g1.newID()), g2.format(g2.newID())} {
			if seen[id] {
				t.Fatalf("id %q generated twice", id)
			}
			seen[id] = true
			if len(id) > 16 {
				t.Fatalf("id %q: got %d bytes, want at most 16", id, len(id))
			}
		}
	}
}

// TestIDsRoundTrip: parse reads back exactly the counter format wrote,
// over the whole uint64 range, and writing never takes more than maxIDLen
// bytes.
func TestIDsRoundTrip(t *testing.T) {
	g, err := newIDGenerator()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	ns := []uint64{1, 31, 32, 1023, 1024, math.MaxUint64 >> 5, math.MaxUint64>>5 + 1, math.MaxUint64 - 1, math.MaxUint64}
	for range 1000 {
		ns = append(ns, rng.Uint64()>>rng.UintN(64))
	}
	for _, n := range ns {
		if n == 0 {
			continue
		}
		id := g.format(n)
		if len(id) > maxIDLen {
			t.Fatalf("id %q: got %d bytes, want at most %d", id, len(id), maxIDLen)
		}
		if got := g.parse(id); got != n {
			t.Fatalf("parse(%q): got %d, want %d", id, got, n)
		}
	}
	for _, bad := range []string{g.prefix + "0", g.prefix + "01", g.prefix + "w", g.prefix + "A", g.prefix + "g000000000000"} {
		if got := g.parse(bad); got != 0 {
			t.Errorf("parse(%q): got %d, want 0", bad, got)
		}
	}
}

// TestTokenExpiryWord: the deadline and the warned flag share one word;
// setting a deadline clears the flag, warning twice reports the first.
func TestTokenExpiryWord(t *testing.T) {
	var e tokenExpiry
	if e.deadline() != 0 || e.warned() {
		t.Fatalf("zero value: deadline %d, warned %v; want none", e.deadline(), e.warned())
	}
	at := time.Unix(1700000000, 123456789)
	e.set(at)
	if got := e.deadline(); got != at.UnixNano()&^1 || at.UnixNano()-got > 1 {
		t.Errorf("deadline %d, want %d (to the even nanosecond)", got, at.UnixNano())
	}
	if e.warn() || !e.warned() || !e.warn() {
		t.Error("first warn must report none given and leave the flag set; the second must see it")
	}
	if got := e.deadline(); got != at.UnixNano()&^1 {
		t.Errorf("deadline after warning %d, want %d", got, at.UnixNano()&^1)
	}
	e.set(at.Add(time.Hour))
	if e.warned() || e.deadline() != at.Add(time.Hour).UnixNano()&^1 {
		t.Errorf("after a refresh: warned %v, deadline %d; want a new deadline, not warned", e.warned(), e.deadline())
	}
	e.warn()
	e.set(time.Time{})
	if e.deadline() != 0 || e.warned() {
		t.Errorf("after setting no deadline: %d, warned %v; want none", e.deadline(), e.warned())
	}
}

// TestSessionSize: the session of every connection stays in the 128-byte
// size class (it was 176 before the allow-list moved behind a pointer and
// the token's warned flag into its deadline word, 144 before its id became
// a counter and its rate bucket one word).
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(session{}); n > 128 {
		t.Errorf("session is %d bytes, want at most 128", n)
	}
}

// TestTopicList adds and drops topics at random and checks the list
// against a set after every step: its length, membership, what all
// yields, and that one topic or none keeps nothing behind the pointer.
func TestTopicList(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	names := []string{"a", "b", "c", "d", "e", "news", "sport", "x"}
	var l topicList
	model := map[string]bool{}
	for step := range 5000 {
		topic := names[rng.IntN(len(names))]
		if rng.IntN(2) == 0 {
			if !l.has(topic) {
				l.add(topic)
			}
			model[topic] = true
		} else {
			l.drop(topic)
			delete(model, topic)
		}
		if l.len() != len(model) {
			t.Fatalf("step %d: len got %d, want %d", step, l.len(), len(model))
		}
		seen := map[string]bool{}
		for x := range l.all() {
			if !model[x] || seen[x] {
				t.Fatalf("step %d: all yields %q (subscribed %v, seen %v)", step, x, model[x], seen[x])
			}
			seen[x] = true
		}
		if len(seen) != len(model) {
			t.Fatalf("step %d: all yields %d topics, want %d", step, len(seen), len(model))
		}
		for _, x := range names {
			if l.has(x) != model[x] {
				t.Fatalf("step %d: has(%q) got %v, want %v", step, x, l.has(x), model[x])
			}
		}
		if len(model) <= 1 && l.rest != nil {
			t.Fatalf("step %d: %d topics but rest is kept", step, len(model))
		}
	}
	if l.has("") {
		t.Error(`has(""): got true, want false`)
	}
}
