// Package brokertest is the conformance suite every broker.Broker runs: the
// guarantees of package broker, checked from outside, with faults injected
// through the broker's real store where it has one. A broker's test calls
// Run with a Harness that makes brokers on a fresh store.
package brokertest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/broker"
)

// Options are the history bounds a Harness gives the brokers it makes.
type Options struct {
	Size  int           // messages kept per user
	Bytes int64         // payload bytes kept per user
	TTL   time.Duration // age of a kept message
	Now   func() time.Time
}

// Harness makes brokers for the suite.
type Harness struct {
	// New returns a broker on the test's store with opts. Brokers made
	// for one test share that store (several nodes of one cluster) when
	// Shared is set. The suite binds and runs them.
	New    func(t *testing.T, opts Options) broker.Broker
	Shared bool
	// Crash, for a shared broker, makes b stop as a killed node would:
	// no more writes and no goodbye. Its Run is still ended by the suite.
	Crash func(b broker.Broker)
	// Faults of the store; nil when the broker has no such store. Each
	// acts on the store of the calling test.
	GracefulRestart func(t *testing.T)                  // comes back with all its data
	Snapshot        func(t *testing.T) (restore func()) // restore: comes back as it was at the snapshot
	Wipe            func(t *testing.T)                  // comes back empty
}

// timeout bounds every wait of the suite.
const timeout = 10 * time.Second

// node is one running broker and what it delivered.
type node struct {
	b    broker.Broker
	mu   sync.Mutex
	got  map[string][]broker.Message // per user, in delivery order
	rest int                         // unsequenced deliveries
}

func (n *node) deliver(_ context.Context, m *broker.Message) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m.Target.User == "" {
		n.rest++
		return 1, nil
	}
	n.got[m.Target.User] = append(n.got[m.Target.User], *m)
	return 1, nil
}

func (n *node) delivered(user string) []broker.Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got[user])
}

// start makes, binds and runs a broker until the test ends.
func start(t *testing.T, h Harness, opts Options) *node {
	t.Helper()
	n := &node{b: h.New(t, opts), got: make(map[string][]broker.Message)}
	if err := n.b.Bind(n.deliver); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if err := n.b.Bind(n.deliver); err == nil {
		t.Error("a second Bind: got nil, want an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(timeout):
			t.Error("Run did not return after its ctx ended")
		}
	})
	return n
}

// clock is a settable time for age expiry.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func roomy(c *clock) Options {
	return Options{Size: 1000, Bytes: 1 << 20, TTL: 24 * time.Hour, Now: c.now}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return c
}

// publish pushes payload to user and returns the message as numbered.
func publish(t *testing.T, b broker.Broker, user, payload string) broker.Message {
	t.Helper()
	m := broker.Message{Target: broker.Target{User: user}, Action: 120, Payload: []byte(payload)}
	if _, err := b.Publish(ctx(t), &m); err != nil {
		t.Fatalf("Publish to %s: %v", user, err)
	}
	if m.Epoch == 0 || m.Epoch > broker.MaxSeq || m.Seq == 0 {
		t.Fatalf("Publish to %s: got epoch %d seq %d, want both set", user, m.Epoch, m.Seq)
	}
	return m
}

func history(t *testing.T, b broker.Broker, user string, from broker.Position) broker.History {
	t.Helper()
	h, err := b.History(ctx(t), user, from)
	if err != nil {
		t.Fatalf("History(%s, %+v): %v", user, from, err)
	}
	return h
}

func seqs(ms []broker.Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func span(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// waitFor polls cond until it holds or the suite's timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	t.Run("Numbering", func(t *testing.T) { testNumbering(t, h) })
	t.Run("DeliveryOrder", func(t *testing.T) { testDeliveryOrder(t, h) })
	t.Run("Cursor", func(t *testing.T) { testCursor(t, h) })
	t.Run("Replay", func(t *testing.T) { testReplay(t, h) })
	t.Run("ExpiryByCount", func(t *testing.T) { testExpiryByCount(t, h) })
	t.Run("ExpiryByBytes", func(t *testing.T) { testExpiryByBytes(t, h) })
	t.Run("ExpiryByAge", func(t *testing.T) { testExpiryByAge(t, h) })
	t.Run("StoreBehindClient", func(t *testing.T) { testStoreBehind(t, h) })
	t.Run("Acks", func(t *testing.T) { testAcks(t, h) })
	t.Run("Unsequenced", func(t *testing.T) { testUnsequenced(t, h) })
	if h.Shared {
		t.Run("PresenceAcrossNodes", func(t *testing.T) { testPresence(t, h) })
	}
	if h.GracefulRestart != nil {
		t.Run("GracefulRestart", func(t *testing.T) { testGracefulRestart(t, h) })
	}
	if h.Snapshot != nil {
		t.Run("StaleStore", func(t *testing.T) { testStaleStore(t, h) })
	}
	if h.Wipe != nil {
		t.Run("EmptyStore", func(t *testing.T) { testEmptyStore(t, h) })
	}
}

// testNumbering: concurrent publishers to one user get every number of
// one epoch exactly once.
func testNumbering(t *testing.T, h Harness) {
	n := start(t, h, roomy(newClock()))
	const publishers, each = 8, 50
	var mu sync.Mutex
	var got []uint64
	epochs := map[uint64]bool{}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				m := publish(t, n.b, "num", fmt.Sprint(p, "-", i))
				mu.Lock()
				got = append(got, m.Seq)
				epochs[m.Epoch] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	if !slices.Equal(got, span(1, publishers*each)) || len(epochs) != 1 {
		t.Fatalf("got sequences %v in %d epochs, want 1..%d in one", got, len(epochs), publishers*each)
	}
	all := history(t, n.b, "num", broker.Position{})
	if !slices.Equal(seqs(all.Messages), span(1, publishers*each)) || all.Lost {
		t.Errorf("History from nothing: got %v lost %v, want 1..%d in order", seqs(all.Messages), all.Lost, publishers*each)
	}
}

// testDeliveryOrder: every node gets a user's messages once each, in
// sequence order, and each is in the history before it is delivered.
func testDeliveryOrder(t *testing.T, h Harness) {
	c := newClock()
	nodes := []*node{start(t, h, roomy(c))}
	if h.Shared {
		nodes = append(nodes, start(t, h, roomy(c)))
	}
	waitForRunning(t, nodes)
	const total = 200
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range total / 4 {
				publish(t, nodes[0].b, "ord", strconv.Itoa(p*1000+i))
			}
		})
	}
	wg.Wait()
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d to deliver %d messages", i, total), func() bool { return len(n.delivered("ord")) >= total })
		if got := seqs(n.delivered("ord")); !slices.Equal(got, span(1, total)) {
			t.Errorf("node %d delivered %v, want 1..%d in order", i, got, total)
		}
	}
}

// waitForRunning publishes a probe to a topic until every node delivered
// one: a shared broker's subscription is up.
func waitForRunning(t *testing.T, nodes []*node) {
	t.Helper()
	waitFor(t, "every node's subscription", func() bool {
		m := broker.Message{Target: broker.Target{Topic: "probe"}, Action: 120}
		if _, err := nodes[0].b.Publish(ctx(t), &m); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		for _, n := range nodes {
			n.mu.Lock()
			ok := n.rest > 0
			n.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
}

// testCursor: Cursor starts an epoch for a user without one, and pushes
// continue it.
func testCursor(t *testing.T, h Harness) {
	n := start(t, h, roomy(newClock()))
	n.b.Present("cur", 1) // a connection holds the epoch it was greeted with
	p, err := n.b.Cursor(ctx(t), "cur")
	if err != nil || p.Epoch == 0 || p.Seq != 0 {
		t.Fatalf("Cursor of a new user: got %+v, %v; want a new epoch at 0", p, err)
	}
	again, _ := n.b.Cursor(ctx(t), "cur")
	m := publish(t, n.b, "cur", "a")
	if again != p || m.Epoch != p.Epoch || m.Seq != 1 {
		t.Errorf("Cursor again %+v, then push %d.%d; want %+v, then %d.1", again, m.Epoch, m.Seq, p, p.Epoch)
	}
}

// testReplay: History from a position returns exactly what follows it.
func testReplay(t *testing.T, h Harness) {
	n := start(t, h, roomy(newClock()))
	var e uint64
	for i := range 10 {
		e = publish(t, n.b, "rep", strconv.Itoa(i)).Epoch
	}
	for _, tc := range []struct {
		from broker.Position
		want []uint64
		lost bool
	}{
		{broker.Position{Epoch: e, Seq: 4}, span(5, 10), false},
		{broker.Position{Epoch: e, Seq: 10}, span(11, 10), false},
		{broker.Position{}, span(1, 10), false},
		{broker.Position{Epoch: e + 1, Seq: 3}, span(1, 10), true}, // an epoch the broker does not have
	} {
		got := history(t, n.b, "rep", tc.from)
		if !slices.Equal(seqs(got.Messages), tc.want) || got.Lost != tc.lost || got.Epoch != e || got.Last != 10 {
			t.Errorf("History(%+v): got %v lost %v epoch %d last %d; want %v lost %v epoch %d last 10",
				tc.from, seqs(got.Messages), got.Lost, got.Epoch, got.Last, tc.want, tc.lost, e)
		}
		if len(got.Messages) > 0 && string(got.Messages[0].Payload) != strconv.Itoa(int(got.Messages[0].Seq-1)) {
			t.Errorf("History(%+v): first payload %q, want %q", tc.from, got.Messages[0].Payload, strconv.Itoa(int(got.Messages[0].Seq-1)))
		}
	}
}

// expectLost checks that a client at from, and a client that holds
// nothing, are told of the loss and get wantSeqs.
func expectLost(t *testing.T, b broker.Broker, user string, from broker.Position, wantSeqs []uint64) {
	t.Helper()
	for _, f := range []broker.Position{from, {}} {
		got := history(t, b, user, f)
		if !got.Lost || !slices.Equal(seqs(got.Messages), wantSeqs) {
			t.Errorf("History(%+v): got %v lost %v, want %v and lost", f, seqs(got.Messages), got.Lost, wantSeqs)
		}
	}
}

func testExpiryByCount(t *testing.T, h Harness) {
	opts := roomy(newClock())
	opts.Size = 3
	n := start(t, h, opts)
	var e uint64
	for i := range 5 {
		e = publish(t, n.b, "cnt", strconv.Itoa(i)).Epoch
	}
	expectLost(t, n.b, "cnt", broker.Position{Epoch: e, Seq: 1}, span(3, 5))
	if got := history(t, n.b, "cnt", broker.Position{Epoch: e, Seq: 2}); got.Lost || !slices.Equal(seqs(got.Messages), span(3, 5)) {
		t.Errorf("History right after the gap: got %v lost %v, want 3..5 and nothing lost", seqs(got.Messages), got.Lost)
	}
}

func testExpiryByBytes(t *testing.T, h Harness) {
	opts := roomy(newClock())
	opts.Bytes = 10
	n := start(t, h, opts)
	var e uint64
	for range 5 {
		e = publish(t, n.b, "byt", "four").Epoch // 4 bytes: two fit
	}
	big := publish(t, n.b, "byt", "eleven bytes") // larger than the bound: not kept
	expectLost(t, n.b, "byt", broker.Position{Epoch: e, Seq: 2}, span(4, 5))
	if got := history(t, n.b, "byt", broker.Position{Epoch: e, Seq: big.Seq - 1}); !got.Lost {
		t.Errorf("History before an unkept push: got lost %v, want lost", got.Lost)
	}
}

func testExpiryByAge(t *testing.T, h Harness) {
	c := newClock()
	opts := roomy(c)
	opts.TTL = time.Hour
	n := start(t, h, opts)
	var e uint64
	for i := range 3 {
		e = publish(t, n.b, "age", strconv.Itoa(i)).Epoch
	}
	c.advance(59 * time.Minute)
	publish(t, n.b, "age", "3")
	if got := history(t, n.b, "age", broker.Position{Epoch: e}); got.Lost || len(got.Messages) != 4 {
		t.Fatalf("History within the age: got %v lost %v, want 1..4", seqs(got.Messages), got.Lost)
	}
	c.advance(2 * time.Minute)
	expectLost(t, n.b, "age", broker.Position{Epoch: e}, []uint64{4})
	c.advance(time.Hour)
	expectLost(t, n.b, "age", broker.Position{Epoch: e, Seq: 1}, nil)
}

// testStoreBehind: a client that holds more of an epoch than the store
// (it came back older, and may have numbered again what the client holds)
// is told, and so is every other client at that position: the user gets a
// new epoch.
func testStoreBehind(t *testing.T, h Harness) {
	n := start(t, h, roomy(newClock()))
	m := publish(t, n.b, "ahead", "x")
	ahead := broker.Position{Epoch: m.Epoch, Seq: 50}
	first := history(t, n.b, "ahead", ahead)
	if !first.Lost || first.Epoch == m.Epoch || first.Last != 0 || len(first.Messages) != 0 {
		t.Errorf("History ahead of the store: got %+v, want lost, a new epoch, nothing", first)
	}
	if second := history(t, n.b, "ahead", ahead); !second.Lost || second.Epoch != first.Epoch {
		t.Errorf("a second client at the same position: got %+v, want lost in epoch %d", second, first.Epoch)
	}
	if next := publish(t, n.b, "ahead", "y"); next.Epoch != first.Epoch || next.Seq != 1 {
		t.Errorf("next push: got %d.%d, want %d.1", next.Epoch, next.Seq, first.Epoch)
	}
}

func testAcks(t *testing.T, h Harness) {
	n := start(t, h, roomy(newClock()))
	var e uint64
	for range 3 {
		e = publish(t, n.b, "ack", "m").Epoch
	}
	n.b.Ack("ack", broker.Position{Epoch: e, Seq: 2})
	n.b.Ack("ack", broker.Position{Epoch: e, Seq: 1})     // lower: ignored
	n.b.Ack("ack", broker.Position{Epoch: e + 1, Seq: 3}) // another epoch: ignored
	e2 := publish(t, n.b, "ack2", "m").Epoch
	n.b.Ack("ack2", broker.Position{Epoch: e2, Seq: 99}) // above the last: ignored
	waitFor(t, "ack 2", func() bool {
		st, err := n.b.Status(ctx(t), "ack")
		return err == nil && st.Acked == 2 && st.Seq == 3 && st.Epoch == e
	})
	if st, err := n.b.Status(ctx(t), "ack2"); err != nil || st.Acked != 0 {
		t.Errorf("an ack above the last sequence: got acked %d, %v; want 0", st.Acked, err)
	}
	// Concurrent acks while the broker flushes (a race detector test).
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				n.b.Ack(fmt.Sprint("racer", g, i%7), broker.Position{Epoch: e, Seq: uint64(i)})
			}
		})
	}
	wg.Wait()
	if st, err := n.b.Status(ctx(t), "nobody"); err != nil || st != (broker.UserStatus{}) {
		t.Errorf("Status of an unknown user: got %+v, %v; want zero", st, err)
	}
}

func testUnsequenced(t *testing.T, h Harness) {
	n := start(t, h, roomy(newClock()))
	waitForRunning(t, []*node{n})
	for _, to := range []broker.Target{{Topic: "t"}, {Conn: "c1"}, {All: true}} {
		m := broker.Message{Target: to, Action: 121, Payload: []byte("p")}
		if _, err := n.b.Publish(ctx(t), &m); err != nil || m.Seq != 0 || m.Epoch != 0 {
			t.Errorf("Publish to %+v: got %d.%d, %v; want unsequenced", to, m.Epoch, m.Seq, err)
		}
	}
	waitFor(t, "three unsequenced deliveries", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.rest >= 4 // the probe and the three
	})
}

// testPresence: a node sees the other nodes' connections, and stops
// counting those of a node that is gone.
func testPresence(t *testing.T, h Harness) {
	clk := newClock()
	a, b := start(t, h, roomy(clk)), start(t, h, roomy(clk))
	a.b.Present("pres", 2)
	waitFor(t, "b to see a's 2 connections", func() bool {
		st, err := b.b.Status(ctx(t), "pres")
		return err == nil && st.Conns == 2
	})
	if st, _ := a.b.Status(ctx(t), "pres"); st.Conns != 0 {
		t.Errorf("a's own Status: got %d other connections, want 0", st.Conns)
	}
	a.b.Present("pres", 0)
	waitFor(t, "b to see none", func() bool {
		st, err := b.b.Status(ctx(t), "pres")
		return err == nil && st.Conns == 0
	})
	if h.Crash == nil {
		return
	}
	c := start(t, h, roomy(clk))
	c.b.Present("pres", 3)
	waitFor(t, "b to see c's 3 connections", func() bool {
		st, err := b.b.Status(ctx(t), "pres")
		return err == nil && st.Conns == 3
	})
	h.Crash(c.b)
	waitFor(t, "the crashed node's connections to stop counting", func() bool {
		st, err := b.b.Status(ctx(t), "pres")
		return err == nil && st.Conns == 0
	})
}

func testGracefulRestart(t *testing.T, h Harness) {
	n := start(t, h, roomy(newClock()))
	m := publish(t, n.b, "grace", "1")
	publish(t, n.b, "grace", "2")
	h.GracefulRestart(t)
	var next broker.Message
	waitFor(t, "the store back", func() bool {
		mm := broker.Message{Target: broker.Target{User: "grace"}, Action: 120, Payload: []byte("3")}
		_, err := n.b.Publish(ctx(t), &mm)
		next = mm
		return err == nil
	})
	if next.Epoch != m.Epoch || next.Seq != 3 {
		t.Errorf("after a graceful restart: got %d.%d, want %d.3 (nothing lost, same epoch)", next.Epoch, next.Seq, m.Epoch)
	}
	if got := history(t, n.b, "grace", broker.Position{Epoch: m.Epoch, Seq: 1}); got.Lost || !slices.Equal(seqs(got.Messages), span(2, 3)) {
		t.Errorf("History: got %v lost %v, want 2..3", seqs(got.Messages), got.Lost)
	}
}

// testStaleStore: a store that comes back older than what was handed out
// never hands out a number of the same epoch again, and a client that
// holds the lost pushes is told.
func testStaleStore(t *testing.T, h Harness) {
	n := start(t, h, roomy(newClock()))
	for i := range 3 {
		publish(t, n.b, "stale", strconv.Itoa(i))
	}
	restore := h.Snapshot(t)
	var last broker.Message
	for i := 3; i < 6; i++ {
		last = publish(t, n.b, "stale", strconv.Itoa(i)) // 4..6: lost with the store
	}
	publish(t, n.b, "other", "x") // another user's state comes back older too
	restore()
	var next broker.Message
	waitFor(t, "the store back", func() bool {
		mm := broker.Message{Target: broker.Target{User: "stale"}, Action: 120, Payload: []byte("new")}
		_, err := n.b.Publish(ctx(t), &mm)
		next = mm
		return err == nil
	})
	if next.Epoch == last.Epoch && next.Seq <= last.Seq {
		t.Fatalf("after a stale restore: handed out %d.%d again (had %d.%d)", next.Epoch, next.Seq, last.Epoch, last.Seq)
	}
	if got := history(t, n.b, "stale", broker.Position{Epoch: last.Epoch, Seq: last.Seq}); !got.Lost {
		t.Errorf("a client at %d.%d: got lost %v, want told", last.Epoch, last.Seq, got.Lost)
	}
}

func testEmptyStore(t *testing.T, h Harness) {
	n := start(t, h, roomy(newClock()))
	m := publish(t, n.b, "wiped", "1")
	h.Wipe(t)
	var next broker.Message
	waitFor(t, "the store back", func() bool {
		mm := broker.Message{Target: broker.Target{User: "wiped"}, Action: 120, Payload: []byte("2")}
		_, err := n.b.Publish(ctx(t), &mm)
		next = mm
		return err == nil
	})
	if next.Epoch == m.Epoch {
		t.Fatalf("after the store came back empty: epoch %d kept, want a new one", next.Epoch)
	}
	if got := history(t, n.b, "wiped", broker.Position{Epoch: m.Epoch, Seq: 1}); !got.Lost || !slices.Equal(seqs(got.Messages), []uint64{next.Seq}) {
		t.Errorf("a client of the old epoch: got %v lost %v, want told and the new epoch's push", seqs(got.Messages), got.Lost)
	}
}
