package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/leakcheck"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/wire"
)

const (
	actionEcho  wire.Action = 110 // replies "ok:" + payload
	actionFail  wire.Action = 111 // error 1000 "nope"
	actionBlock wire.Action = 112 // waits until the test releases it
	actionPush  wire.Action = 120
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// fastBackoff keeps reconnect tests short.
var fastBackoff = wire.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// testServer is a real wsgate server on 127.0.0.1. Its users authenticate
// with "Authorization: Bearer <user>"; the token "bad" is refused.
type testServer struct {
	*wsgate.Server
	addr    string
	url     string
	release chan struct{} // closing it lets actionBlock handlers return
	stopped chan error
	cancel  context.CancelFunc
}

func authenticate(_ context.Context, r *http.Request) (wsgate.Identity, error) {
	user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || user == "bad" {
		return wsgate.Identity{}, errors.New("wsgate: bad token")
	}
	return wsgate.Identity{UserID: user}, nil
}

// startServer serves on addr ("127.0.0.1:0" for a fresh port) until the
// test ends or stop is called.
func startServer(t *testing.T, addr string) *testServer {
	t.Helper()
	return startServerConfig(t, addr, wsgate.Config{})
}

// startServerConfig is startServer with extra settings in cfg.
func startServerConfig(t *testing.T, addr string, cfg wsgate.Config) *testServer {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(20 * time.Millisecond) {
		// Reusing the address of a server that just stopped can race with
		// the kernel's release of the port.
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	cfg.Authenticate, cfg.ShutdownTimeout = authenticate, testTimeout
	srv, err := wsgate.New(cfg)
	if err != nil {
		t.Fatalf("wsgate.New: %v", err)
	}
	ts := &testServer{Server: srv, addr: ln.Addr().String(), release: make(chan struct{}), stopped: make(chan error, 1)}
	ts.url = "ws://" + ts.addr + "/ws"
	handlers := map[wire.Action]wsgate.HandlerFunc{
		actionEcho: func(_ context.Context, req *wsgate.Request) ([]byte, error) {
			return append([]byte("ok:"), req.Payload...), nil
		},
		actionFail: func(context.Context, *wsgate.Request) ([]byte, error) {
			return nil, &wire.Error{Code: 1000, Message: "nope"}
		},
		actionBlock: func(ctx context.Context, _ *wsgate.Request) ([]byte, error) {
			select {
			case <-ts.release:
			case <-ctx.Done():
			}
			return nil, nil
		},
	}
	for a, h := range handlers {
		if err := srv.Handle(a, h); err != nil {
			t.Fatalf("Handle(%d): %v", a, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() { ts.stopped <- srv.Serve(ctx, ln) }()
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server down (clients see 1001) and waits for it.
func (ts *testServer) stop() {
	ts.cancel()
	<-ts.stopped
	ts.stopped <- nil // later calls return at once
}

// disconnect closes the server side of connID with code. The server
// registers a connection just after sending hello, so a client may know its
// id a moment before Disconnect can find it; that window is retried.
func (ts *testServer) disconnect(t *testing.T, connID string, code wire.CloseCode) {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(time.Millisecond) {
		err := ts.Disconnect(connID, code, "test")
		if err == nil {
			return
		}
		if !errors.Is(err, wsgate.ErrNotConnected) || time.Now().After(deadline) {
			t.Fatalf("Disconnect(%s, %d): %v", connID, code, err)
		}
	}
}

// stateLog records state changes and lets a test wait for one.
type stateLog struct {
	mu     sync.Mutex
	states []State
	errs   []error
	ch     chan struct{}
}

func newStateLog() *stateLog { return &stateLog{ch: make(chan struct{}, 100)} }

func (l *stateLog) record(s State, err error) {
	l.mu.Lock()
	l.states = append(l.states, s)
	l.errs = append(l.errs, err)
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// waitFor waits until the n-th occurrence of s was recorded and returns the
// error that came with it.
func (l *stateLog) waitFor(t *testing.T, s State, n int) error {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		l.mu.Lock()
		seen := 0
		for i, got := range l.states {
			if got == s {
				if seen++; seen == n {
					err := l.errs[i]
					l.mu.Unlock()
					return err
				}
			}
		}
		states := fmt.Sprint(l.states)
		l.mu.Unlock()
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("waiting for state %v #%d: got states %s", s, n, states)
		}
	}
}

func (l *stateLog) snapshot() []State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]State(nil), l.states...)
}

func dial(t *testing.T, url string, opts Options) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if opts.Token == "" {
		opts.Token = "alice"
	}
	c, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestRequestReply(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, "127.0.0.1:0")
	c := dial(t, ts.url, Options{})
	if got, want := c.State(), StateConnected; got != want {
		t.Errorf("State: got %v, want %v", got, want)
	}
	if h := c.Hello(); h.UserID != "alice" || h.ConnID == "" || h.MaxMessage == 0 {
		t.Errorf("Hello: got %+v, want user alice, a conn id and a max message", h)
	}
	var wg sync.WaitGroup
	for i := range 20 { // concurrent requests are matched by id
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("m%d", i)
			got, err := c.Request(testCtx(t), actionEcho, []byte(msg))
			if err != nil || string(got) != "ok:"+msg {
				t.Errorf("Request(%q): got %q, %v; want %q", msg, got, err, "ok:"+msg)
			}
		}()
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if got, want := c.State(), StateClosed; got != want {
		t.Errorf("State after Close: got %v, want %v", got, want)
	}
	if _, err := c.Request(testCtx(t), actionEcho, nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Request after Close: got %v, want net.ErrClosed", err)
	}
}

func TestErrorReply(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, "127.0.0.1:0")
	c := dial(t, ts.url, Options{})
	cases := []struct {
		action wire.Action
		code   wire.ErrorCode
		msg    string
	}{
		{actionFail, 1000, "nope"},
		{999, wire.CodeUnknownAction, ""},
	}
	for _, tc := range cases {
		_, err := c.Request(testCtx(t), tc.action, nil)
		var e *Error
		if !errors.As(err, &e) || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("Request(%d): got %v, want *Error code %d with %q", tc.action, err, tc.code, tc.msg)
		}
	}
	big := make([]byte, c.Hello().MaxMessage)
	var e *Error
	if _, err := c.Request(testCtx(t), actionEcho, big); !errors.As(err, &e) || e.Code != wire.CodeTooLarge {
		t.Errorf("oversized Request: got %v, want *Error code %d before sending", err, wire.CodeTooLarge)
	}
	if got, err := c.Request(testCtx(t), actionEcho, []byte("still")); err != nil || string(got) != "ok:still" {
		t.Errorf("Request after errors: got %q, %v; want ok:still", got, err)
	}
}

func TestPushAndSubscribe(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, "127.0.0.1:0")
	pushes := make(chan Push, 10)
	c := dial(t, ts.url, Options{OnPush: func(p Push) { pushes <- p }})
	ctx := testCtx(t)
	if err := c.Subscribe(ctx, "news"); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	for _, to := range []wsgate.Target{{User: "alice"}, {Topic: "news"}, {Conn: c.Hello().ConnID}, {All: true}} {
		n, err := ts.Push(ctx, to, actionPush, []byte("hi"))
		if err != nil || n != 1 {
			t.Fatalf("Push(%+v): got %d, %v; want 1 delivery", to, n, err)
		}
		select {
		case p := <-pushes:
			if p.Action != actionPush || string(p.Payload) != "hi" {
				t.Errorf("push to %+v: got %+v, want action %d payload hi", to, p, actionPush)
			}
		case <-time.After(testTimeout):
			t.Fatalf("push to %+v: nothing arrived", to)
		}
	}
	if err := c.Unsubscribe(ctx, "news"); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if n, err := ts.Push(ctx, wsgate.Target{Topic: "news"}, actionPush, nil); err != nil || n != 0 {
		t.Errorf("Push to topic after Unsubscribe: got %d, %v; want 0", n, err)
	}
	if err := c.Send(ctx, actionEcho, []byte("nobody answers")); err != nil {
		t.Errorf("Send: %v", err)
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, "127.0.0.1:0")
	states := newStateLog()
	pushes := make(chan Push, 10)
	c := dial(t, ts.url, Options{Backoff: fastBackoff, OnStateChange: states.record, OnPush: func(p Push) { pushes <- p }})
	if err := c.Subscribe(testCtx(t), "news"); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	firstConn := c.Hello().ConnID

	ts.stop()
	err := states.waitFor(t, StateReconnecting, 1)
	if got := closeCode(err); got != wire.CloseGoingAway {
		t.Errorf("reconnect cause: got %v (%v), want close %d", got, err, wire.CloseGoingAway)
	}
	if _, err := c.Request(testCtx(t), actionEcho, nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Request while reconnecting: got %v, want ErrNotConnected", err)
	}

	ts2 := startServer(t, ts.addr)
	states.waitFor(t, StateConnected, 2)
	if c.Hello().ConnID == firstConn {
		t.Errorf("ConnID after reconnect: got the old %q, want a new one", firstConn)
	}
	if got, err := c.Request(testCtx(t), actionEcho, []byte("back")); err != nil || string(got) != "ok:back" {
		t.Errorf("Request after reconnect: got %q, %v; want ok:back", got, err)
	}
	// The subscription was renewed on the new server.
	deadline := time.Now().Add(testTimeout)
	for {
		n, err := ts2.Push(testCtx(t), wsgate.Target{Topic: "news"}, actionPush, []byte("again"))
		if err != nil {
			t.Fatalf("Push: %v", err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic push after reconnect: got %d deliveries, want 1 (not resubscribed)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case p := <-pushes:
		if string(p.Payload) != "again" {
			t.Errorf("push after reconnect: got %q, want again", p.Payload)
		}
	case <-time.After(testTimeout):
		t.Fatal("push after reconnect: nothing arrived")
	}
	_ = c.Close()
	if got, want := fmt.Sprint(states.snapshot()), "[connected reconnecting connected closed]"; got != want {
		t.Errorf("states: got %s, want %s", got, want)
	}
}

func TestTerminalCloseStopsReconnecting(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, "127.0.0.1:0")
	states := newStateLog()
	c := dial(t, ts.url, Options{Backoff: fastBackoff, OnStateChange: states.record})
	ts.disconnect(t, c.Hello().ConnID, wire.CloseReplaced)
	err := states.waitFor(t, StateClosed, 1)
	if got := closeCode(err); got != wire.CloseReplaced {
		t.Errorf("close cause: got %v (%v), want %d", got, err, wire.CloseReplaced)
	}
	time.Sleep(3 * fastBackoff.Max) // room for a (wrong) reconnect
	if got := ts.Stats().Conns; got != 0 {
		t.Errorf("server connections after terminal close: got %d, want 0", got)
	}
	if got, want := fmt.Sprint(states.snapshot()), "[connected closed]"; got != want {
		t.Errorf("states: got %s, want %s", got, want)
	}
	if _, err := c.Request(testCtx(t), actionEcho, nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Request after terminal close: got %v, want ErrNotConnected", err)
	}
}

func TestPendingFailOnDisconnect(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, "127.0.0.1:0")
	states := newStateLog()
	c := dial(t, ts.url, Options{Backoff: fastBackoff, OnStateChange: states.record})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(testCtx(t), actionBlock, nil)
		errc <- err
	}()
	// Wait until the request is in flight, then drop the connection.
	for deadline := time.Now().Add(testTimeout); c.inFlight() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never became pending")
		}
	}
	ts.disconnect(t, c.Hello().ConnID, wire.CloseSlowConsumer)
	select {
	case err := <-errc:
		if !errors.Is(err, ErrNotConnected) {
			t.Errorf("pending Request: got %v, want ErrNotConnected", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("pending Request did not fail on disconnect")
	}
	close(ts.release)
	states.waitFor(t, StateConnected, 2) // 4000 reconnects
}

func TestDialRefused(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, "127.0.0.1:0")
	_, err := Dial(testCtx(t), ts.url, Options{Token: "bad"})
	var he *HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized || !strings.Contains(err.Error(), "bad token") {
		t.Errorf("Dial with a bad token: got %v, want *HandshakeError 401 with the server's message", err)
	}
	_, err = Dial(testCtx(t), "ws://"+ts.addr+"/echo", Options{Token: "alice"})
	if err == nil || !strings.Contains(err.Error(), wire.Subprotocol) {
		t.Errorf("Dial to /echo: got %v, want a subprotocol error", err)
	}
}

func (c *Client) inFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// fakeTimers records the reconnect delays asked for and fires at once.
type fakeTimers struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (f *fakeTimers) after(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	f.delays = append(f.delays, d)
	f.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch, func() bool { return true }
}

func (f *fakeTimers) snapshot() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.delays...)
}

// TestBackoffSchedule checks that the reconnect loop follows wire.Backoff,
// with an injected clock: failed dials grow the attempt, a connection that
// stayed up for Backoff.Max resets it, a draining close does not count.
func TestBackoffSchedule(t *testing.T) {
	leakcheck.Check(t)
	b := wire.Backoff{Base: time.Second, Max: 8 * time.Second}
	const r = 0.5
	delay := func(n int) time.Duration { return b.Delay(n, r) }

	cases := []struct {
		name   string
		code   wire.CloseCode
		stable bool // each connection appears to last longer than Backoff.Max
		want   []time.Duration
	}{
		{"unstable", wire.CloseSlowConsumer, false, []time.Duration{delay(0), delay(1), delay(2)}},
		{"stable", wire.CloseSlowConsumer, true, []time.Duration{delay(0), delay(0), delay(0)}},
		{"draining", wire.CloseDraining, false, []time.Duration{delay(0), delay(0), delay(0)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, "127.0.0.1:0")
			timers := &fakeTimers{}
			var mu sync.Mutex
			now := time.Unix(0, 0)
			clk := clock{after: timers.after, rand: func() float64 { return r }, now: func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				if tc.stable {
					now = now.Add(b.Max)
				}
				return now
			}}
			states := newStateLog()
			c := dial(t, ts.url, Options{Backoff: b, OnStateChange: states.record, clock: clk})
			for i := range len(tc.want) {
				ts.disconnect(t, c.Hello().ConnID, tc.code)
				states.waitFor(t, StateConnected, i+2)
			}
			if got := timers.snapshot(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("delays: got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFailedDialsBackOff(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, "127.0.0.1:0")
	timers := &fakeTimers{}
	b := wire.Backoff{Base: time.Second, Max: 4 * time.Second}
	clk := clock{after: timers.after, rand: func() float64 { return 0 }, now: time.Now}
	states := newStateLog()
	c := dial(t, ts.url, Options{Backoff: b, OnStateChange: states.record, clock: clk})
	ts.stop() // every further dial is refused
	states.waitFor(t, StateReconnecting, 1)
	deadline := time.Now().Add(testTimeout)
	for len(timers.snapshot()) < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := timers.snapshot()[:5]
	want := []time.Duration{b.Delay(0, 0), b.Delay(1, 0), b.Delay(2, 0), b.Delay(3, 0), b.Delay(4, 0)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays: got %v, want %v", got, want)
	}
	if err := states.waitFor(t, StateClosed, 1); err != nil {
		t.Errorf("Closed after Close: got error %v, want nil", err)
	}
}

// TestStaleGenerationDropped: a reply that arrives for a call made on an
// older connection must not complete it.
func TestStaleGenerationDropped(t *testing.T) {
	c := &Client{pending: map[uint32]*call{}}
	cl := &call{gen: 2, done: make(chan result, 1)}
	c.pending[7] = cl
	c.resolve(1, 7, result{payload: []byte("stale")})
	if len(cl.done) != 0 {
		t.Fatal("a reply from generation 1 completed a call of generation 2")
	}
	c.resolve(2, 7, result{payload: []byte("fresh")})
	if r := <-cl.done; string(r.payload) != "fresh" {
		t.Errorf("got %q, want fresh", r.payload)
	}
	if _, ok := c.pending[7]; ok {
		t.Error("resolved call still pending")
	}
}

func TestPushSequenceRules(t *testing.T) {
	c := &Client{opts: Options{}.withDefaults(), lastSeq: 5}
	cases := []struct {
		seq  uint64
		want bool
	}{
		{0, true}, {5, false}, {3, false}, {6, true}, {6, false}, {9, true}, {7, false}, {0, true},
	}
	for _, tc := range cases {
		if _, got := c.freshPush(tc.seq); got != tc.want {
			t.Errorf("freshPush(%d): got %v, want %v", tc.seq, got, tc.want)
		}
	}
	if c.lastSeq != 9 {
		t.Errorf("lastSeq: got %d, want 9", c.lastSeq)
	}
}
