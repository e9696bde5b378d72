package memory

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/broker"
)

// fixture is a broker on a clock the test moves, with one user to follow.
type fixture struct {
	t    *testing.T
	b    *Broker
	now  atomic.Int64
	user string
}

func newFixture(t *testing.T, size int) *fixture {
	f := &fixture{t: t, user: "alice"}
	f.now.Store(time.Unix(1e9, 0).UnixNano())
	f.b = New(Options{Size: size, Bytes: 1 << 10, TTL: time.Minute, Total: 1 << 20,
		Now: func() time.Time { return time.Unix(0, f.now.Load()) }})
	return f
}

// log returns the user's log, nil when the broker holds none.
func (f *fixture) log() *userLog {
	st := f.b.stripe(f.user)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.logs[f.user]
}

// here returns the epoch the broker holds for the user as connected
// without a log.
func (f *fixture) here() (uint64, bool) {
	st := f.b.stripe(f.user)
	st.mu.Lock()
	defer st.mu.Unlock()
	epoch, ok := st.here[f.user]
	return epoch, ok
}

func (f *fixture) cursor() broker.Position {
	f.t.Helper()
	p, err := f.b.Cursor(context.Background(), f.user)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) status() broker.UserStatus {
	f.t.Helper()
	s, err := f.b.Status(context.Background(), f.user)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) publish() broker.Position {
	f.t.Helper()
	m := broker.Message{Target: broker.Target{User: f.user}, Action: 120, Payload: []byte("x")}
	if _, err := f.b.Publish(context.Background(), &m); err != nil {
		f.t.Fatal(err)
	}
	return broker.Position{Epoch: m.Epoch, Seq: m.Seq}
}

// listed reports the users on the list and the accounted bytes.
func (f *fixture) listed() (int, int64) {
	bytes, users, _ := f.b.Usage()
	return users, bytes
}

// TestConnectedNeverPushed: a connected user nothing was pushed to holds
// only its epoch (in stripe.here: no log, nothing listed), answers
// every call like a user with an empty history, and forgets everything
// when its last connection closes.
func TestConnectedNeverPushed(t *testing.T) {
	f := newFixture(t, 10)
	f.b.Present(f.user, 1)
	at := f.cursor()
	if at.Epoch == 0 || at.Seq != 0 {
		t.Fatalf("cursor of a connected user: %+v, want an epoch and seq 0", at)
	}
	f.b.Present(f.user, 2)
	f.b.Ack(f.user, broker.Position{Epoch: at.Epoch, Seq: 1}) // above the last: ignored
	h, err := f.b.History(context.Background(), f.user, at)
	if err != nil {
		t.Fatal(err)
	}
	if h.Epoch != at.Epoch || h.Last != 0 || h.Lost || len(h.Messages) != 0 {
		t.Errorf("history from its own cursor: %+v, want epoch %d, nothing lost", h, at.Epoch)
	}
	h, err = f.b.History(context.Background(), f.user, broker.Position{Epoch: at.Epoch + 1, Seq: 3})
	if err != nil {
		t.Fatal(err)
	}
	if h.Epoch != at.Epoch || h.Last != 0 || !h.Lost || len(h.Messages) != 0 {
		t.Errorf("history from another epoch: %+v, want epoch %d, lost", h, at.Epoch)
	}
	if s := f.status(); s != (broker.UserStatus{Epoch: at.Epoch}) {
		t.Errorf("status: %+v, want epoch %d only", s, at.Epoch)
	}
	if again := f.cursor(); again != at {
		t.Errorf("second cursor %+v, want %+v", again, at)
	}
	epoch, ok := f.here()
	if l := f.log(); l != nil || !ok || epoch != at.Epoch {
		t.Fatalf("a connected user never pushed to: log %+v, here %v with epoch %d; want no log, here with epoch %d", l, ok, epoch, at.Epoch)
	}
	if users, bytes := f.listed(); users != 0 || bytes != 0 {
		t.Errorf("listed: %d users, %d bytes; want none", users, bytes)
	}
	f.b.Present(f.user, 0)
	if n := f.b.States(); n != 0 {
		t.Errorf("after the last connection closed: %d states, want 0", n)
	}
	f.b.Present(f.user, 1)
	if next := f.cursor(); next.Epoch == at.Epoch || next.Seq != 0 {
		t.Errorf("cursor after reconnecting: %+v, want a new epoch (not %d) at seq 0", next, at.Epoch)
	}
}

// TestUserLifecycle follows one user through connected-never-pushed,
// first push, disconnect (a tombstone), reconnect, disconnect and the
// tombstone's expiry: the epoch stays the same until the state is gone.
func TestUserLifecycle(t *testing.T) {
	for _, size := range []int{0, 10} {
		t.Run("size "+strconv.Itoa(size), func(t *testing.T) {
			f := newFixture(t, size)
			f.b.Present(f.user, 1)
			epoch := f.cursor().Epoch

			if got := f.publish(); got != (broker.Position{Epoch: epoch, Seq: 1}) {
				t.Fatalf("first push numbered %+v, want epoch %d seq 1", got, epoch)
			}
			if _, ok := f.here(); ok {
				t.Error("still kept as connected without a log after the first push")
			}
			if l := f.log(); l == nil || !l.here || l.epoch != epoch {
				t.Fatalf("log after the first push: %+v, want connected, epoch %d", l, epoch)
			}
			f.b.Ack(f.user, broker.Position{Epoch: epoch, Seq: 1})
			if s := f.status(); s != (broker.UserStatus{Epoch: epoch, Seq: 1, Acked: 1}) {
				t.Errorf("status after push and ack: %+v", s)
			}
			if users, _ := f.listed(); users != min(size, 1) {
				t.Errorf("connected after a push: %d listed, want %d (listed iff it retains)", users, min(size, 1))
			}

			f.b.Present(f.user, 0) // a tombstone, or a retained history
			if users, bytes := f.listed(); users != 1 || bytes < logOverhead {
				t.Errorf("disconnected after a push: %d listed with %d bytes, want 1 with at least %d", users, bytes, logOverhead)
			}
			if p := f.cursor(); p != (broker.Position{Epoch: epoch, Seq: 1}) {
				t.Errorf("cursor of the disconnected user %+v, want epoch %d seq 1", p, epoch)
			}

			f.b.Present(f.user, 1) // back: no longer a tombstone
			if p := f.cursor(); p != (broker.Position{Epoch: epoch, Seq: 1}) {
				t.Errorf("cursor after reconnecting %+v, want epoch %d seq 1", p, epoch)
			}
			if users, _ := f.listed(); users != min(size, 1) {
				t.Errorf("reconnected: %d listed, want %d", users, min(size, 1))
			}
			if got := f.publish(); got != (broker.Position{Epoch: epoch, Seq: 2}) {
				t.Errorf("push after reconnecting numbered %+v, want epoch %d seq 2", got, epoch)
			}

			f.b.Present(f.user, 0)
			// Messages expire after one TTL, the tombstone one TTL later.
			for range 3 {
				f.now.Add(int64(time.Minute))
				f.b.enforceTotal(f.now.Load())
			}
			if n := f.b.States(); n != 0 {
				t.Fatalf("two TTLs after the last connection closed: %d states, want 0", n)
			}
			f.b.Present(f.user, 1)
			if p := f.cursor(); p.Epoch == epoch || p.Seq != 0 {
				t.Errorf("cursor after the tombstone went: %+v, want a new epoch (not %d) at seq 0", p, epoch)
			}
		})
	}
}

// TestRestartNeverPushed: a client ahead of a user that was never pushed
// to restarts the epoch; the user keeps the new epoch as a tombstone when
// it disconnects, like any restarted user.
func TestRestartNeverPushed(t *testing.T) {
	f := newFixture(t, 10)
	f.b.Present(f.user, 1)
	at := f.cursor()
	h, err := f.b.History(context.Background(), f.user, broker.Position{Epoch: at.Epoch, Seq: 5})
	if err != nil {
		t.Fatal(err)
	}
	if h.Epoch == at.Epoch || h.Last != 0 || !h.Lost {
		t.Fatalf("history from ahead of the epoch: %+v, want a new epoch, lost", h)
	}
	if p := f.cursor(); p != (broker.Position{Epoch: h.Epoch}) {
		t.Errorf("cursor after the restart %+v, want epoch %d", p, h.Epoch)
	}
	if l := f.log(); l == nil || !l.here || l.epoch != h.Epoch || h.Epoch > broker.MaxSeq {
		t.Errorf("log after the restart: %+v, want connected, epoch %d (at most MaxSeq)", l, h.Epoch)
	}
	f.b.Present(f.user, 0)
	if users, bytes := f.listed(); users != 1 || bytes != logOverhead {
		t.Errorf("restarted user disconnected: %d listed with %d bytes, want a tombstone", users, bytes)
	}
	f.b.Present(f.user, 1)
	if p := f.cursor(); p != (broker.Position{Epoch: h.Epoch}) {
		t.Errorf("cursor after reconnecting %+v, want the restarted epoch %d", p, h.Epoch)
	}
}

// TestPresentMemory: what a connected user nothing was pushed to costs
// the broker (a map slot holding its epoch). It was about 200 bytes when
// every connected user had a full log.
func TestPresentMemory(t *testing.T) {
	const n = 20000
	users := make([]string, n)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(1000000+i)
	}
	b := New(Options{})
	before := heapBytes()
	for _, u := range users {
		b.Present(u, 1)
	}
	per := float64(heapBytes()-before) / n
	runtime.KeepAlive(b)
	t.Logf("broker memory per connected user: %.0f bytes", per)
	if per > 48 {
		t.Errorf("memory per connected user: got %.0f bytes, want at most 48", per)
	}
}

func heapBytes() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
