package wsgate_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// TestAcksAreNotRateLimited: a client that acks every push it gets is not
// closed for it, however far the pushes outrun MessageRate; its other
// messages still pay (see TestMessageRate).
func TestAcksAreNotRateLimited(t *testing.T) {
	leakcheck.Check(t)
	cfg := userAuth()
	cfg.MessageRate = 5 // a burst of 10
	ts := startServer(t, cfg)
	var mu sync.Mutex
	var states []client.State
	got := make(chan client.Push, 500)
	c := sdkDial(t, ts, client.Options{
		Header: http.Header{"X-User": {"ivy"}},
		OnPush: func(p client.Push) { got <- p },
		OnStateChange: func(s client.State, _ error) {
			if s != client.StateConnected {
				mu.Lock()
				states = append(states, s)
				mu.Unlock()
			}
		},
	})
	const n = 100
	for i := 1; i <= n; i++ {
		pushSeq(t, ts, "ivy", "x")
		// One at a time: each push finds the client idle, so it acks each.
		if p := recvPush(t, got); p.Seq != uint64(i) {
			t.Fatalf("push %d: got seq %d", i, p.Seq)
		}
	}
	gatewaytest.WaitFor(t, "the last ack", func() bool {
		st, err := ts.UserStatus(context.Background(), "ivy")
		return err == nil && st.Acked == n
	})
	mu.Lock()
	defer mu.Unlock()
	if st := ts.Stats(); st.RateLimited != 0 || len(states) != 0 {
		t.Errorf("got %d rate-limit closes and states %v, want none", st.RateLimited, states)
	}
	_ = c
}

// TestNoHoldWithoutResume: a full-form client that names no position gets
// its user's pushes live at once, though the user has retained history
// and the client never sends a frame: a push to the user arrives before a
// connection push made after it.
func TestNoHoldWithoutResume(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, userAuth())
	pushSeq(t, ts, "jo", "old") // retained history
	c := dial(t, ts.wsURL("/ws"), &websocket.DialOptions{Header: http.Header{"X-User": {"jo"}}, Subprotocols: []string{wire.Subprotocol}})
	hello := readFrame(t, c)
	if hello.Type != wire.TypeHello || hello.Seq != 1 || hello.Epoch == 0 {
		t.Fatalf("hello: got %+v, want seq 1 and an epoch", hello)
	}
	pushSeq(t, ts, "jo", "new")
	if _, err := ts.Push(context.Background(), wsgate.Target{Conn: string(hello.ConnID)}, 121, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, c); f.Type != wire.TypePush || f.Seq != 2 || string(f.Payload) != "new" {
		t.Fatalf("first push: got %s %d %q, want the user push 2 \"new\" (not held)", f.Type, f.Seq, f.Payload)
	}
	if f := readFrame(t, c); string(f.Payload) != "marker" {
		t.Fatalf("second push: got %q, want the marker", f.Payload)
	}
}

// TestSDKPushesLost: the SDK reports pushes that expired while it was
// away through OnPushesLost, in order with the pushes around it, and
// carries on with what is retained.
func TestSDKPushesLost(t *testing.T) {
	leakcheck.Check(t)
	cfg := userAuth()
	cfg.HistorySize = 3
	ts := startServer(t, cfg)
	events := make(chan string, 64)
	c := sdkDial(t, ts, client.Options{
		Header:       http.Header{"X-User": {"kim"}},
		OnPush:       func(p client.Push) { events <- "push " + string(p.Payload) },
		OnPushesLost: func(reason string) { events <- "lost " + reason },
		Backoff:      wire.Backoff{Base: 3 * time.Second, Max: 3 * time.Second},
	})
	next := func() string {
		select {
		case e := <-events:
			return e
		case <-time.After(testTimeout):
			t.Fatal("no event")
			return ""
		}
	}
	pushSeq(t, ts, "kim", "1")
	if e := next(); e != "push 1" {
		t.Fatalf("got %q, want push 1", e)
	}
	// Away: the client waits its backoff (at least 1.5 s) before it
	// reconnects, and the six pushes are made long before that.
	if err := ts.Disconnect(c.Hello().ConnID, wire.CloseGoingAway, "away"); err != nil {
		t.Fatal(err)
	}
	gatewaytest.WaitFor(t, "kim offline", func() bool { return ts.Presence("kim") == 0 })
	for _, p := range []string{"2", "3", "4", "5", "6", "7"} {
		pushSeq(t, ts, "kim", p)
	}
	if ts.Presence("kim") != 0 {
		t.Fatal("the client came back before the pushes were made; the test cannot tell replay from live")
	}
	want := []string{"lost wsgate: pushes 2 to 4 are no longer retained", "push 5", "push 6", "push 7"}
	for _, w := range want {
		if e := next(); e != w {
			t.Fatalf("got %q, want %q", e, w)
		}
	}
}
