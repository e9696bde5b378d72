package wsgate

import (
	"slices"
	"strconv"
	"testing"
)

func newTestSession(id, user string) *session {
	return &session{id: id, identity: Identity{UserID: user}}
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
