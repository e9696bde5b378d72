package redis_test

import (
	"context"
	"testing"

	"github.com/wsgate/wsgate/broker"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/internal/redistest"
)

// TestHistoryClientAheadStartsEpoch: a client that holds more of its epoch
// than the store proves the store came back older (every node restarted
// with a stale snapshot, so none knew its write mark), and the store may
// have numbered again, in that epoch, pushes some client never got. The
// user gets a new epoch, so that the second client at the same position is
// told too; raising the sequence told only the first (internal/faulttest,
// cluster-crash-stale-pushes-first, found it).
func TestHistoryClientAheadStartsEpoch(t *testing.T) {
	r := redistest.Start(t)
	b, err := redisbroker.New(redisbroker.Options{URL: r.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() }) // nothing to check at exit
	ctx := context.Background()
	publish := func() broker.Position {
		t.Helper()
		m := &broker.Message{Target: broker.Target{User: "ann"}, Action: 120, Payload: []byte("x")}
		if _, err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		return broker.Position{Epoch: m.Epoch, Seq: m.Seq}
	}
	publish()
	old := publish() // the store is at old.Seq; two clients hold 5 of its epoch
	ahead := broker.Position{Epoch: old.Epoch, Seq: 5}

	first, err := b.History(ctx, "ann", ahead)
	if err != nil {
		t.Fatal(err)
	}
	if first.Epoch == old.Epoch || !first.Lost || first.Last != 0 || len(first.Messages) != 0 {
		t.Fatalf("first client ahead: got epoch %d (old %d), last %d, lost %v, %d messages; want a new epoch, last 0, lost, none",
			first.Epoch, old.Epoch, first.Last, first.Lost, len(first.Messages))
	}
	second, err := b.History(ctx, "ann", ahead)
	if err != nil {
		t.Fatal(err)
	}
	if second.Epoch != first.Epoch || !second.Lost {
		t.Errorf("second client at the same position: got epoch %d, lost %v; want epoch %d, lost", second.Epoch, second.Lost, first.Epoch)
	}
	if p := publish(); p.Epoch != first.Epoch || p.Seq != 1 {
		t.Errorf("next push: got %d.%d, want %d.1", p.Epoch, p.Seq, first.Epoch)
	}
	// A client of the new epoch resumes as usual.
	h, err := b.History(ctx, "ann", broker.Position{Epoch: first.Epoch, Seq: 0})
	if err != nil {
		t.Fatal(err)
	}
	if h.Epoch != first.Epoch || h.Lost || len(h.Messages) != 1 {
		t.Errorf("resume in the new epoch: got epoch %d, lost %v, %d messages; want %d, not lost, 1", h.Epoch, h.Lost, len(h.Messages), first.Epoch)
	}
}
