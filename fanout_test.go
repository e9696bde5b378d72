package wsgate_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// splittingServer starts a server with GOMAXPROCS at least 4 for the
// test, so that large pushes are split over several goroutines, and no
// handshake rate limit.
func splittingServer(t *testing.T) *testServer {
	t.Helper()
	if runtime.GOMAXPROCS(0) < 4 {
		prev := runtime.GOMAXPROCS(4)
		t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	}
	cfg := anon()
	cfg.HandshakeRate = -1
	return startServer(t, cfg)
}

// TestParallelBroadcast makes the server split broadcasts over several
// goroutines (as it does for thousands of connections) and checks that
// every connection, in both forms, gets each push exactly once and in
// order, and that Publish counts each delivery once.
func TestParallelBroadcast(t *testing.T) {
	leakcheck.Check(t)
	ts := splittingServer(t)
	const each = 32
	var simpleConns, fullConns []*websocket.Conn
	for range each {
		simpleConns = append(simpleConns, dial(t, ts.wsURL("/ws"), nil))
		c := dial(t, ts.wsURL("/ws"), fullForm)
		readFrame(t, c) // hello
		fullConns = append(fullConns, c)
	}
	gatewaytest.WaitFor(t, "registered conns", func() bool { return ts.Stats().Conns == 2*each })
	wsgate.AddOpenConns(ts.Server, wsgate.ParallelFanoutMin)
	defer wsgate.AddOpenConns(ts.Server, -wsgate.ParallelFanoutMin)
	pushesBefore := ts.Stats().Pushes
	for _, payload := range []string{"one", "two"} {
		n, err := ts.Push(context.Background(), wsgate.Target{All: true}, 140, []byte(payload))
		if n != 2*each || err != nil {
			t.Fatalf("Push %s: got %d, %v; want %d, nil", payload, n, err, 2*each)
		}
	}
	for i, c := range simpleConns {
		for _, want := range []string{"one", "two"} {
			if _, got := read(t, c); !bytes.Equal(got, simple(140, want)) {
				t.Errorf("simple conn %d: got %q, want %q", i, got, simple(140, want))
			}
		}
	}
	for i, c := range fullConns {
		for _, want := range []string{"one", "two"} {
			if f := readFrame(t, c); f.Type != wire.TypePush || f.Action != 140 || string(f.Payload) != want {
				t.Errorf("full-form conn %d: got %+v, want push 140 %q", i, f, want)
			}
		}
	}
	if got := ts.Stats().Pushes - pushesBefore; got != 2 {
		t.Errorf("Stats.Pushes: got %d more, want 2", got)
	}
}

// TestParallelTopicPush makes the server split topic pushes over several
// goroutines (as it does for a topic with thousands of subscribers) and
// checks that every subscriber, in both forms, gets each push exactly once
// and in order, that non-subscribers get nothing, and that Publish counts
// each delivery once.
func TestParallelTopicPush(t *testing.T) {
	leakcheck.Check(t)
	ts := splittingServer(t)
	wsgate.SetTopicSplitMin(ts.Server, 2)
	const each = 21 // not a multiple of the parts: the last part is shorter
	var simpleConns, fullConns []*websocket.Conn
	for range each {
		c := dial(t, ts.wsURL("/ws"), nil)
		write(t, c, websocket.BinaryMessage, simple(wire.ActionSubscribe, "news"))
		if _, got := read(t, c); !bytes.Equal(got, simple(wire.ActionSubscribe, "")) {
			t.Fatalf("subscribe: got %q", got)
		}
		simpleConns = append(simpleConns, c)
		c = dial(t, ts.wsURL("/ws"), fullForm)
		readFrame(t, c) // hello
		write(t, c, websocket.BinaryMessage, request(wire.ActionSubscribe, 1, "news"))
		if f := readFrame(t, c); f.Type != wire.TypeReply {
			t.Fatalf("subscribe: got %+v, want a reply", f)
		}
		fullConns = append(fullConns, c)
	}
	outsider := dial(t, ts.wsURL("/ws"), nil)
	pushesBefore := ts.Stats().Pushes
	for _, payload := range []string{"one", "two", "three"} {
		n, err := ts.Push(context.Background(), wsgate.Target{Topic: "news"}, 140, []byte(payload))
		if n != 2*each || err != nil {
			t.Fatalf("Push %s: got %d, %v; want %d, nil", payload, n, err, 2*each)
		}
	}
	// The outsider's first message must be this echo's reply, not a push.
	write(t, outsider, websocket.BinaryMessage, simple(wire.ActionPing, "x"))
	if _, got := read(t, outsider); !bytes.Equal(got, simple(wire.ActionPing, "x")) {
		t.Errorf("a connection not on the topic: got %q, want only its ping reply", got)
	}
	for i, c := range simpleConns {
		for _, want := range []string{"one", "two", "three"} {
			if _, got := read(t, c); !bytes.Equal(got, simple(140, want)) {
				t.Errorf("simple conn %d: got %q, want %q", i, got, simple(140, want))
			}
		}
	}
	for i, c := range fullConns {
		for _, want := range []string{"one", "two", "three"} {
			if f := readFrame(t, c); f.Type != wire.TypePush || f.Action != 140 || string(f.Payload) != want {
				t.Errorf("full-form conn %d: got %+v, want push 140 %q", i, f, want)
			}
		}
	}
	if got := ts.Stats().Pushes - pushesBefore; got != 3 {
		t.Errorf("Stats.Pushes: got %d more, want 3", got)
	}
}

// TestBroadcastsCrossUserPushes: split broadcasts (whose writes go to the
// kernel in batches, holding their connections' write locks until each
// batch is sent), sequenced pushes to the same users (which write under
// their user's sync lock) and users connecting at the same moment (whose
// sessions a broadcast finds not yet ready) neither deadlock nor reorder:
// every connection gets every broadcast and its user's pushes in order.
func TestBroadcastsCrossUserPushes(t *testing.T) {
	leakcheck.Check(t)
	if runtime.GOMAXPROCS(0) < 4 {
		prev := runtime.GOMAXPROCS(4)
		t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	}
	cfg := userAuth()
	cfg.HandshakeRate = -1
	ts := startServer(t, cfg)
	const users, each, broadcasts, userPushes = 8, 4, 40, 20
	var conns []*websocket.Conn
	for u := range users {
		for range each {
			conns = append(conns, as(t, ts, fmt.Sprintf("u%d", u), wire.Subprotocol))
		}
	}
	wsgate.AddOpenConns(ts.Server, wsgate.ParallelFanoutMin)
	defer wsgate.AddOpenConns(ts.Server, -wsgate.ParallelFanoutMin)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range broadcasts {
			if _, err := ts.Push(context.Background(), wsgate.Target{All: true}, 140, fmt.Appendf(nil, "all %d", i)); err != nil {
				t.Errorf("broadcast %d: %v", i, err)
			}
		}
	})
	wg.Go(func() {
		for i := range userPushes {
			for u := range users {
				if _, err := ts.Push(context.Background(), wsgate.Target{User: fmt.Sprintf("u%d", u)}, 141, fmt.Appendf(nil, "user %d", i)); err != nil {
					t.Errorf("push %d to u%d: %v", i, u, err)
				}
			}
		}
	})
	wg.Go(func() {
		for i := range 2 * users {
			c, err := dialErr(t, ts.wsURL("/ws"), &websocket.DialOptions{
				Header: http.Header{"X-User": {fmt.Sprintf("u%d", i%users)}}, Subprotocols: []string{wire.Subprotocol}})
			if err != nil {
				t.Errorf("dial: %v", err)
				continue
			}
			_ = c.CloseNow()
		}
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("broadcasts and user pushes did not finish: deadlock")
	}
	for i, c := range conns {
		nextAll, nextUser := 0, 0
		for nextAll < broadcasts || nextUser < userPushes {
			f := readFrame(t, c)
			switch got := string(f.Payload); {
			case f.Action == 140 && got == fmt.Sprintf("all %d", nextAll):
				nextAll++
			case f.Action == 141 && got == fmt.Sprintf("user %d", nextUser):
				nextUser++
			default:
				t.Fatalf("conn %d: got push %d %q, want broadcast %d or user push %d", i, f.Action, got, nextAll, nextUser)
			}
		}
	}
}

// TestBatchedPushPastLockedStripe: a topic push whose write batch holds a
// connection's lock sends the batch before it waits for a user's sync
// stripe (for a connection not ready yet), so that a push to that user,
// holding the stripe and waiting for the same connection, can finish.
// Without that, the two wait for each other forever.
func TestBatchedPushPastLockedStripe(t *testing.T) {
	if !websocket.IOURingUsable() {
		t.Skip("without io_uring a batch holds no lock between writes")
	}
	ts := startServer(t, userAuth())
	c := as(t, ts, "u1", wire.Subprotocol)
	if !wsgate.PushPastLockedStripe(ts.Server, "u1", 10*time.Second) {
		t.Fatal("the topic push and the user push wait for each other: deadlock")
	}
	got := map[string]bool{}
	for range 2 {
		got[string(readFrame(t, c).Payload)] = true
	}
	if !got["topic"] || !got["user push"] {
		t.Errorf("got %v, want the topic push and the user push", got)
	}
}
