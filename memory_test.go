package wsgate

import (
	"runtime"
	"strconv"
	"testing"
)

// TestSessionMemory measures what the gateway adds to each idle connection
// on top of the engine's Conn: the session, its id, its identity, one
// subscription and its registry entries (by id, by user and by topic), the
// shape of the idle benchmark (bench/peer, scenario idle). The engine keeps
// an idle Conn near 1 KiB; the budget for both together is 1.5 KiB.
func TestSessionMemory(t *testing.T) {
	const n = 20000
	users := make([]string, n) // identities arrive from Authenticate; their strings count
	g, err := newIDGenerator()
	if err != nil {
		t.Fatal(err)
	}
	r := newRegistry(g)
	sessions := make([]*session, 0, n)
	before := heapBytes()
	for i := range n {
		users[i] = "user-" + strconv.Itoa(1000000+i)
		s := &session{id: g.newID(), identity: connIdentity{UserID: users[i]}}
		r.add(s)
		s.topics.add("news")
		r.subscribe(s, "news")
		sessions = append(sessions, s)
	}
	per := float64(heapBytes()-before) / n
	runtime.KeepAlive(r) // else the registry is collected before it is measured
	runtime.KeepAlive(sessions)
	runtime.KeepAlive(users)
	t.Logf("gateway memory per idle connection: %.0f bytes", per)
	if per > 224 { // about 190 (the session 128, its user id 16, the registry 45)
		t.Errorf("memory per session: got %.0f bytes, want at most 224", per)
	}
}

func heapBytes() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
