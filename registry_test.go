package wsgate

import (
	"slices"
	"strconv"
	"testing"
)

func newTestSession(id, user string) *session {
	return &session{id: id, identity: connIdentity{UserID: user}}
}

func ids(list []*session) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, s.id)
	}
	slices.Sort(out)
	return out
}

func TestRegistryIndexes(t *testing.T) {
	r := newRegistry()
	a1, a2, b, anon := newTestSession("a1", "alice"), newTestSession("a2", "alice"), newTestSession("b", "bob"), newTestSession("x", "")
	for _, s := range []*session{a1, a2, b, anon} {
		r.add(s)
	}
	for _, topic := range []string{"news", "sport"} {
		a1.topics = append(a1.topics, topic)
		r.subscribe(a1, topic)
	}
	b.topics = append(b.topics, "news")
	r.subscribe(b, "news")

	if got := ids(r.appendUser(nil, "alice")); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("alice's sessions: got %v, want [a1 a2]", got)
	}
	if got := ids(r.appendTopic(nil, "news")); !slices.Equal(got, []string{"a1", "b"}) {
		t.Errorf("news subscribers: got %v, want [a1 b]", got)
	}
	if got := r.conn("x"); got != anon {
		t.Errorf("conn x: got %v, want the anonymous session", got)
	}
	var all []*session
	for i := range registryShards {
		all = r.appendShard(all, i)
	}
	if got := ids(all); !slices.Equal(got, []string{"a1", "a2", "b", "x"}) {
		t.Errorf("all sessions: got %v, want [a1 a2 b x]", got)
	}
	if c, u, tp := r.counts(); c != 4 || u != 2 || tp != 2 {
		t.Errorf("counts: got %d conns, %d users, %d topics; want 4, 2, 2", c, u, tp)
	}

	r.remove(a1)
	if got := ids(r.appendTopic(nil, "news")); !slices.Equal(got, []string{"b"}) {
		t.Errorf("news after a1 left: got %v, want [b]", got)
	}
	if got := r.userCount("alice"); got != 1 {
		t.Errorf("alice's count after a1 left: got %d, want 1", got)
	}
	for _, s := range []*session{a2, b, anon} {
		r.remove(s)
	}
	if c, u, tp := r.counts(); c != 0 || u != 0 || tp != 0 {
		t.Errorf("counts after all left: got %d, %d, %d; want 0, 0, 0 (no leaked keys)", c, u, tp)
	}
}

func TestRegistrySnapshotPoolClears(t *testing.T) {
	r := newRegistry()
	for i := range 100 {
		r.add(newTestSession(strconv.Itoa(i), "u"))
	}
	p := r.getSnapshot()
	*p = r.appendUser(*p, "u")
	if len(*p) != 100 {
		t.Fatalf("snapshot: got %d sessions, want 100", len(*p))
	}
	full := (*p)[:cap(*p)]
	r.putSnapshot(p)
	if len(*p) != 0 {
		t.Errorf("returned snapshot length: got %d, want 0", len(*p))
	}
	for i, s := range full {
		if s != nil {
			t.Fatalf("returned snapshot slot %d: still references a session", i)
		}
	}
}

// TestRegistryUserDevices removes a user's sessions from every place in
// the user's list (they are linked through session.next) and checks the
// count and the list after each removal.
func TestRegistryUserDevices(t *testing.T) {
	tests := []struct {
		name   string
		remove []string // in this order
	}{
		{"newest first", []string{"d3", "d2", "d1"}},
		{"oldest first", []string{"d1", "d2", "d3"}},
		{"middle first", []string{"d2", "d3", "d1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry()
			byID := map[string]*session{}
			left := []string{"d1", "d2", "d3"}
			for i, id := range left {
				s := newTestSession(id, "carol")
				byID[id] = s
				if got := r.add(s); got != i+1 {
					t.Fatalf("add %s: got %d devices, want %d", id, got, i+1)
				}
			}
			for _, id := range tt.remove {
				left = slices.DeleteFunc(left, func(x string) bool { return x == id })
				if got := r.remove(byID[id]); got != len(left) {
					t.Errorf("remove %s: got %d devices left, want %d", id, got, len(left))
				}
				if got := ids(r.appendUser(nil, "carol")); !slices.Equal(got, left) {
					t.Errorf("after removing %s: got %v, want %v", id, got, left)
				}
				if byID[id].next != nil {
					t.Errorf("removed %s still links to %s", id, byID[id].next.id)
				}
			}
			if _, users, _ := r.counts(); users != 0 {
				t.Errorf("users after all left: got %d, want 0", users)
			}
		})
	}
}

// TestRegistryIDClash: a session whose id hashes to a key another
// session holds is indexed by id beside it, found, listed, counted and
// removed like any other.
func TestRegistryIDClash(t *testing.T) {
	r := newRegistry()
	s := newTestSession("c1", "")
	sh, h := r.connShard(s.id)
	decoy := newTestSession("decoy", "") // holds the key of "c1" as if its id hashed there
	sh.conns[h] = decoy
	r.add(s)
	if sh.clash[s.id] != s || sh.conns[h] != decoy {
		t.Fatal("a session whose key is taken must go to clash, leaving the holder")
	}
	if got := r.conn("c1"); got != s {
		t.Errorf("conn c1: got %v, want the clashing session", got)
	}
	var all []*session
	for i := range registryShards {
		all = r.appendShard(all, i)
	}
	if got := ids(all); !slices.Equal(got, []string{"c1", "decoy"}) {
		t.Errorf("all sessions: got %v, want [c1 decoy]", got)
	}
	if c, _, _ := r.counts(); c != 2 {
		t.Errorf("conns counted: got %d, want 2", c)
	}
	r.remove(s)
	if got := r.conn("c1"); got != nil || sh.conns[h] != decoy || len(sh.clash) != 0 {
		t.Errorf("after removing c1: conn %v, holder kept %v, %d clashing; want nil, true, 0", got, sh.conns[h] == decoy, len(sh.clash))
	}
	// The holder leaves first: the clashing session is still found.
	r.add(s)
	delete(sh.conns, h)
	if got := r.conn("c1"); got != s {
		t.Errorf("conn c1 after the holder left: got %v, want it", got)
	}
	r.remove(s)
	if c, _, _ := r.counts(); c != 0 {
		t.Errorf("conns counted after all left: got %d, want 0", c)
	}
}
