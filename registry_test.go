package wsgate

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testIDs is the id generator of the registries under test.
var testIDs = &idGenerator{prefix: "test0000-"}

// newTestSession returns a session named name (its UserID is user): the
// name is kept in its allow-list, which the registry never reads, so that
// tests can list sessions by name.
func newTestSession(name, user string) *session {
	return &session{id: testIDs.newID(), identity: connIdentity{UserID: user, Topics: &[]string{name}}}
}

// ids returns the names of list's sessions (newTestSession), sorted.
func ids(list []*session) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, (*s.identity.Topics)[0])
	}
	slices.Sort(out)
	return out
}

func TestRegistryIndexes(t *testing.T) {
	r := newRegistry(testIDs)
	a1, a2, b, anon := newTestSession("a1", "alice"), newTestSession("a2", "alice"), newTestSession("b", "bob"), newTestSession("x", "")
	for _, s := range []*session{a1, a2, b, anon} {
		r.add(s)
	}
	for _, topic := range []string{"news", "sport"} {
		a1.topics.add(topic)
		r.subscribe(a1, topic)
	}
	b.topics.add("news")
	r.subscribe(b, "news")

	if got := ids(r.appendUser(nil, "alice")); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("alice's sessions: got %v, want [a1 a2]", got)
	}
	if got := ids(r.appendTopic(nil, "news")); !slices.Equal(got, []string{"a1", "b"}) {
		t.Errorf("news subscribers: got %v, want [a1 b]", got)
	}
	if got := r.conn(testIDs.format(anon.id)); got != anon {
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
	r := newRegistry(testIDs)
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
			r := newRegistry(testIDs)
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
					t.Errorf("removed %s still links to %v", id, ids([]*session{byID[id].next}))
				}
			}
			if _, users, _ := r.counts(); users != 0 {
				t.Errorf("users after all left: got %d, want 0", users)
			}
		})
	}
}

// TestRegistryConnLookup: a connection is found by exactly the id it was
// issued, and by nothing else: not another server's prefix, not the same
// counter written differently, not a prefix or extension of its id.
func TestRegistryConnLookup(t *testing.T) {
	r := newRegistry(testIDs)
	s := newTestSession("s", "")
	r.add(s)
	id := testIDs.format(s.id)
	if got := r.conn(id); got != s {
		t.Fatalf("conn %q: got %v, want the session", id, got)
	}
	other := &idGenerator{prefix: "othr0000-"}
	digits := strconv.FormatUint(s.id, 32)
	for _, bad := range []string{
		"", testIDs.prefix, testIDs.prefix + "0", testIDs.prefix + "0" + digits,
		strings.ToUpper(id), testIDs.prefix + strings.ToUpper(digits) + "x",
		id + "0", id + " ", " " + id, id[:len(id)-1] + "w",
		strings.TrimSuffix(testIDs.prefix, "-") + digits, other.format(s.id),
		testIDs.prefix + "+" + digits,
		testIDs.prefix + "g000000000000" + digits, // past 64 bits
		testIDs.prefix + "1" + strings.Repeat("0", 13),
	} {
		if got := r.conn(bad); got != nil {
			t.Errorf("conn %q: got a session, want none", bad)
		}
	}
	r.remove(s)
	if got := r.conn(id); got != nil {
		t.Errorf("conn %q after remove: got a session, want none", id)
	}
	if c, _, _ := r.counts(); c != 0 {
		t.Errorf("conns counted after remove: got %d, want 0", c)
	}
}
