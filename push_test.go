package wsgate_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// userAuth trusts the X-User header and restricts topics to the
// comma-separated X-Topics header when present. Tests only.
func userAuth() wsgate.Config {
	return wsgate.Config{Authenticate: func(_ context.Context, r *http.Request) (wsgate.Identity, error) {
		id := wsgate.Identity{UserID: r.Header.Get("X-User")}
		if v := r.Header.Get("X-Topics"); v != "" {
			id.Topics = strings.Split(v, ",")
		}
		return id, nil
	}}
}

// as dials /ws as user, in the form subprotocols select, and consumes the
// hello of full-form connections. It checks that the connection is
// registered as soon as the handshake is over: the gateway registers it
// before the 101 is sent.
func as(t *testing.T, ts *testServer, user string, subprotocols ...string) *websocket.Conn {
	t.Helper()
	before := ts.Presence(user)
	c := dial(t, ts.wsURL("/ws"), &websocket.DialOptions{Header: http.Header{"X-User": {user}}, Subprotocols: subprotocols})
	if len(subprotocols) > 0 {
		readFrame(t, c) // hello
	}
	if got := ts.Presence(user); got != before+1 {
		t.Fatalf("%s's presence right after the handshake: got %d, want %d", user, got, before+1)
	}
	return c
}

// expectNothing proves c received nothing before marker: it pushes marker
// to c's connection alone and checks that it is the next message.
func expectNothing(t *testing.T, ts *testServer, c *websocket.Conn, user string) {
	t.Helper()
	if _, err := ts.Push(context.Background(), wsgate.Target{User: user}, 199, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	if _, got := read(t, c); !bytes.Equal(got, simple(199, "marker")) {
		t.Errorf("%s: got %q before the marker, want nothing", user, got)
	}
}

func TestPushUser(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, userAuth())
	alice := []*websocket.Conn{as(t, ts, "alice"), as(t, ts, "alice", wire.Subprotocol), as(t, ts, "alice")}
	bob := as(t, ts, "bob")
	if got := ts.Presence("alice"); got != 3 {
		t.Fatalf("Presence(alice): got %d, want 3", got)
	}
	n, err := ts.Push(context.Background(), wsgate.Target{User: "alice"}, 120, []byte("hi alice"))
	if n != 3 || err != nil {
		t.Fatalf("Push: got %d, %v; want 3, nil", n, err)
	}
	for i, c := range alice {
		typ, got := read(t, c)
		want := simple(120, "hi alice")
		if i == 1 {
			want, _ = wire.AppendFrame(nil, &wire.Frame{Type: wire.TypePush, Action: 120, Seq: 1, Payload: []byte("hi alice")}) // the user's first sequenced push
		}
		if typ != websocket.BinaryMessage || !bytes.Equal(got, want) {
			t.Errorf("alice #%d: got %x, want %x", i, got, want)
		}
	}
	expectNothing(t, ts, bob, "bob")

	n, err = ts.Push(context.Background(), wsgate.Target{Users: []string{"bob", "carol"}}, 121, nil)
	if n != 1 || err != nil {
		t.Errorf("Push to bob and carol: got %d, %v; want 1, nil", n, err)
	}
	if _, got := read(t, bob); !bytes.Equal(got, simple(121, "")) {
		t.Errorf("bob: got %x, want %x", got, simple(121, ""))
	}
	if st := ts.Stats(); st.Conns != 4 || st.Users != 2 || st.Pushes != 3 || st.Delivered != 5 {
		t.Errorf("Stats: got %+v, want 4 conns, 2 users, 3 pushes, 5 delivered", st)
	}
}

func TestPushTopic(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, userAuth())
	sub, other := as(t, ts, "a"), as(t, ts, "b")
	write(t, sub, websocket.BinaryMessage, simple(wire.ActionSubscribe, "news"))
	if _, got := read(t, sub); !bytes.Equal(got, simple(wire.ActionSubscribe, "")) {
		t.Fatalf("subscribe reply: got %x", got)
	}
	n, err := ts.Push(context.Background(), wsgate.Target{Topic: "news"}, 130, []byte("headline"))
	if n != 1 || err != nil {
		t.Fatalf("Push: got %d, %v; want 1, nil", n, err)
	}
	if _, got := read(t, sub); !bytes.Equal(got, simple(130, "headline")) {
		t.Errorf("subscriber: got %q", got)
	}
	expectNothing(t, ts, other, "b")

	write(t, sub, websocket.BinaryMessage, simple(wire.ActionUnsubscribe, "news"))
	if _, got := read(t, sub); !bytes.Equal(got, simple(wire.ActionUnsubscribe, "")) {
		t.Fatalf("unsubscribe reply: got %x", got)
	}
	if n, _ := ts.Push(context.Background(), wsgate.Target{Topic: "news"}, 130, nil); n != 0 {
		t.Errorf("Push after unsubscribe: got %d, want 0", n)
	}
	write(t, sub, websocket.BinaryMessage, simple(wire.ActionUnsubscribe, "news"))
	if _, got := read(t, sub); !bytes.Equal(got, wire.AppendSimpleError(nil, wire.ActionUnsubscribe, "not subscribed: news")) {
		t.Errorf("second unsubscribe: got %q", got)
	}
	if st := ts.Stats(); st.Topics != 0 {
		t.Errorf("Stats.Topics after unsubscribe: got %d, want 0", st.Topics)
	}
}

func TestSubscribeForbidden(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, userAuth())
	c := dial(t, ts.wsURL("/ws"), &websocket.DialOptions{
		Header:       http.Header{"X-User": {"u"}, "X-Topics": {"news.*,chat"}},
		Subprotocols: []string{wire.Subprotocol},
	})
	readFrame(t, c) // hello
	tests := []struct {
		topic string
		code  wire.ErrorCode // 0 = allowed
	}{
		{"news.sport", 0},
		{"chat", 0},
		{"admin", wire.CodeForbidden},
		{"chat.private", wire.CodeForbidden},
		{"", wire.CodeBadRequest},
		{strings.Repeat("x", wire.MaxTopicLen+1), wire.CodeBadRequest},
	}
	for i, tt := range tests {
		write(t, c, websocket.BinaryMessage, request(wire.ActionSubscribe, uint32(i+1), tt.topic))
		f := readFrame(t, c)
		if tt.code == 0 && f.Type != wire.TypeReply || tt.code != 0 && (f.Type != wire.TypeError || f.Code != tt.code) {
			t.Errorf("subscribe %.20q: got %+v, want code %d", tt.topic, f, tt.code)
		}
	}
	if n, _ := ts.Push(context.Background(), wsgate.Target{Topic: "admin"}, 130, nil); n != 0 {
		t.Errorf("push to the refused topic: got %d deliveries, want 0", n)
	}
}

func TestPushBroadcast(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, anon())
	conns := make([]*websocket.Conn, 10)
	for i := range conns {
		conns[i] = dial(t, ts.wsURL("/ws"), nil)
	}
	n, err := ts.Push(context.Background(), wsgate.Target{All: true}, 140, []byte("all"))
	if n != 10 || err != nil {
		t.Fatalf("Push: got %d, %v; want 10, nil", n, err)
	}
	for i, c := range conns {
		if _, got := read(t, c); !bytes.Equal(got, simple(140, "all")) {
			t.Errorf("conn %d: got %q", i, got)
		}
	}
}

func TestPushConnAndDisconnect(t *testing.T) {
	leakcheck.Check(t)
	var disconnected atomic.Int32
	cfg := anon()
	cfg.OnDisconnect = func(c *wsgate.ConnInfo, code int) { disconnected.Store(int32(code)) }
	ts := startServer(t, cfg)
	c := dial(t, ts.wsURL("/ws"), fullForm)
	id := string(readFrame(t, c).ConnID)
	gatewaytest.WaitFor(t, "registration", func() bool { return ts.Stats().Conns == 1 })
	if n, err := ts.Push(context.Background(), wsgate.Target{Conn: id}, 150, []byte("you")); n != 1 || err != nil {
		t.Fatalf("Push to conn: got %d, %v; want 1, nil", n, err)
	}
	if f := readFrame(t, c); f.Type != wire.TypePush || f.Action != 150 || f.Seq != 0 || string(f.Payload) != "you" {
		t.Errorf("push frame: got %+v", f)
	}
	if err := ts.Disconnect(id, wire.CloseReplaced, "replaced"); err != nil {
		t.Fatal(err)
	}
	if got := readClose(t, c); got != websocket.StatusCode(wire.CloseReplaced) {
		t.Errorf("close code: got %d, want %d", got, wire.CloseReplaced)
	}
	gatewaytest.WaitFor(t, "OnDisconnect", func() bool { return disconnected.Load() == int32(wire.CloseReplaced) })
	if _, err := ts.Push(context.Background(), wsgate.Target{Conn: id}, 150, nil); !errors.Is(err, wsgate.ErrNotConnected) {
		t.Errorf("Push to a closed conn: got %v, want ErrNotConnected", err)
	}
	if err := ts.Disconnect(id, wire.CloseReplaced, ""); !errors.Is(err, wsgate.ErrNotConnected) {
		t.Errorf("Disconnect of a closed conn: got %v, want ErrNotConnected", err)
	}
}

func TestPushInvalid(t *testing.T) {
	srv, err := wsgate.New(anon())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		to     wsgate.Target
		action wire.Action
	}{
		{"no target", wsgate.Target{}, 120},
		{"two targets", wsgate.Target{User: "a", All: true}, 120},
		{"system action", wsgate.Target{All: true}, wire.ActionSubscribe},
		{"error bit", wsgate.Target{All: true}, wire.SimpleErrorBit | 120},
	}
	for _, tt := range tests {
		if _, err := srv.Push(context.Background(), tt.to, tt.action, nil); err == nil {
			t.Errorf("%s: got nil error, want one", tt.name)
		}
	}
}

func TestShutdown(t *testing.T) {
	leakcheck.Check(t)
	started := make(chan struct{})
	var finished atomic.Bool
	ts := startServer(t, anon(), handle(t, 110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		close(started)
		time.Sleep(100 * time.Millisecond)
		finished.Store(true)
		return nil, nil
	}))
	conns := make([]*websocket.Conn, 20)
	for i := range conns {
		conns[i] = dial(t, ts.wsURL("/ws"), nil)
	}
	write(t, conns[0], websocket.BinaryMessage, simple(110, ""))
	<-started

	codes := make(chan websocket.StatusCode, len(conns))
	for _, c := range conns {
		go func() { codes <- readCloseQuiet(c) }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !finished.Load() {
		t.Error("Shutdown returned before the running handler finished")
	}
	for range conns {
		if got := <-codes; got != websocket.StatusGoingAway {
			t.Errorf("client close code: got %d, want 1001", got)
		}
	}
	if err := ts.wait(); err != nil {
		t.Errorf("Serve after Shutdown: got %v, want nil", err)
	}
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz after Shutdown: got %d, want 503", rec.Code)
	}
	if _, err := ts.Push(context.Background(), wsgate.Target{All: true}, 120, nil); !errors.Is(err, wsgate.ErrServerClosed) {
		t.Errorf("Push after Shutdown: got %v, want ErrServerClosed", err)
	}
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: got %v, want nil", err)
	}
}
