package redis_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/broker"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/internal/redistest"
)

// recorder is a DeliverFunc that keeps what it is handed.
type recorder struct {
	mu  sync.Mutex
	got map[string][]broker.Message
}

func (r *recorder) deliver(_ context.Context, m *broker.Message) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[m.Target.User] = append(r.got[m.Target.User], *m)
	return 1, nil
}

// unsubscribedBroker is a broker on a fresh redis-server, bound to
// deliver, whose Run is not running: pushes reach deliver only by Resync.
func unsubscribedBroker(t testing.TB, deliver broker.DeliverFunc) *redisbroker.Broker {
	r := redistest.Start(t)
	b, err := redisbroker.New(redisbroker.Options{URL: r.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() }) // the test is over
	if err := b.Bind(deliver); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestResyncManyUsers: after its subscription was down, a node hands its
// connections every push each of its users missed, in order and once,
// for more users than one pipeline fetches; a second resync hands out
// nothing again.
func TestResyncManyUsers(t *testing.T) {
	rec := &recorder{got: make(map[string][]broker.Message)}
	b := unsubscribedBroker(t, rec.deliver)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// 600 users: more than two pipelines of 256. The node is not
	// subscribed (Run is not running), so the pushes reach it only by
	// the resync. Each user has one push before its connection was
	// greeted, which the resync must not hand out, and two after.
	const users = 600
	for i := range users {
		u := "u" + strconv.Itoa(i)
		for j, phase := range []string{"before", "greet", "after1", "after2"} {
			if phase == "greet" {
				b.Present(u, 1) // as the Server does: present, then greeted
				if _, err := b.Cursor(ctx, u); err != nil {
					t.Fatal(err)
				}
				continue
			}
			m := &broker.Message{Target: broker.Target{User: u}, Action: 120, Payload: []byte(phase)}
			if _, err := b.Publish(ctx, m); err != nil {
				t.Fatalf("push %d to %s: %v", j, u, err)
			}
		}
	}
	if err := b.Resync(ctx); err != nil {
		t.Fatalf("resync: %v", err)
	}
	rec.mu.Lock()
	for i := range users {
		u := "u" + strconv.Itoa(i)
		got := rec.got[u]
		if len(got) != 2 || string(got[0].Payload) != "after1" || string(got[1].Payload) != "after2" || got[0].Seq != 2 || got[1].Seq != 3 {
			t.Errorf("%s: got %d pushes %v, want after1 (2) and after2 (3)", u, len(got), got)
			break
		}
	}
	clear(rec.got)
	rec.mu.Unlock()

	if err := b.Resync(ctx); err != nil {
		t.Fatalf("second resync: %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != 0 {
		t.Errorf("second resync handed out pushes again, to %d users", len(rec.got))
	}
}

// BenchmarkResync: one resync of a node with 2,000 connected users, each
// with one push in its history (what a node does after its subscription
// was down).
func BenchmarkResync(bm *testing.B) {
	b := unsubscribedBroker(bm, func(context.Context, *broker.Message) (int, error) { return 1, nil })
	ctx := context.Background()
	for i := range 2000 {
		u := "u" + strconv.Itoa(i)
		b.Present(u, 1)
		if _, err := b.Cursor(ctx, u); err != nil {
			bm.Fatal(err)
		}
		if _, err := b.Publish(ctx, &broker.Message{Target: broker.Target{User: u}, Action: 120, Payload: []byte("p")}); err != nil {
			bm.Fatal(err)
		}
	}
	for bm.Loop() {
		if err := b.Resync(ctx); err != nil {
			bm.Fatal(err)
		}
	}
}
