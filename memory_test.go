package wsgate

import (
	"runtime"
	"strconv"
	"testing"
)

// TestSessionMemory measures what the gateway adds to each idle connection
// on top of the engine's Conn: the session, its id, its identity and its
// registry entries (by id and by user). The engine keeps an idle Conn near
// 1 KiB; the budget for both together is 1.5 KiB.
func TestSessionMemory(t *testing.T) {
	const n = 20000
	users := make([]string, n) // identities arrive from Authenticate; their strings count
	r := newRegistry()
	g, err := newIDGenerator()
	if err != nil {
		t.Fatal(err)
	}
	sessions := make([]*session, 0, n)
	before := heapBytes()
	for i := range n {
		users[i] = "user-" + strconv.Itoa(1000000+i)
		s := &session{id: g.newID(), identity: Identity{UserID: users[i]}}
		r.add(s)
		sessions = append(sessions, s)
	}
	per := float64(heapBytes()-before) / n
	runtime.KeepAlive(sessions)
	runtime.KeepAlive(users)
	t.Logf("gateway memory per idle connection: %.0f bytes", per)
	if per > 300 {
		t.Errorf("memory per session: got %.0f bytes, want at most 300", per)
	}
}

func heapBytes() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
