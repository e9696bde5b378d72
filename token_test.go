package wsgate_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

var tokenSecret = []byte("token-test-secret-0123456789")

func jwtAuth(t *testing.T) func(context.Context, *http.Request) (wsgate.Identity, error) {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Secret: tokenSecret})
	if err != nil {
		t.Fatal(err)
	}
	return v.Authenticate
}

func token(t *testing.T, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Issue(tokenSecret, user, ttl, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestBrowserAuthFailureIsACloseCode: an upgrade with an Origin header and a
// bad token is accepted and closed at once with 4500 and the reason, and
// nothing else happens: no hello, no OnConnect, no presence. Without an
// Origin the same request gets the plain 401.
func TestBrowserAuthFailureIsACloseCode(t *testing.T) {
	var connects atomic.Int32
	ts := startServer(t, wsgate.Config{
		Authenticate: jwtAuth(t),
		OnConnect:    func(context.Context, *wsgate.ConnInfo) { connects.Add(1) },
	})
	expired := token(t, "ann", -time.Minute)
	browser := &websocket.DialOptions{
		Subprotocols: []string{wire.Subprotocol},
		Header:       http.Header{"Origin": {"http://" + ts.addr}},
	}
	c := dial(t, ts.wsURL("/ws?token="+expired), browser)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, data, err := c.Read(ctx)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusCode(wire.CloseUnauthorized) || ce.Reason != "wsgate: token expired" {
		t.Fatalf("browser with an expired token: got %x, %v; want close 4500 \"wsgate: token expired\" before anything", data, err)
	}
	if n := connects.Load(); n != 0 {
		t.Errorf("OnConnect ran %d times for a refused connection", n)
	}
	if n := ts.Presence("ann"); n != 0 {
		t.Errorf("presence of a refused user: got %d, want 0", n)
	}
	_, err = dialErr(t, ts.wsURL("/ws?token="+expired), fullForm)
	if statusOf(err) != http.StatusUnauthorized {
		t.Errorf("non-browser with an expired token: got %v, want HTTP 401", err)
	}
	other := &websocket.DialOptions{Header: http.Header{"Origin": {"http://evil.example"}}}
	if _, err := dialErr(t, ts.wsURL("/ws?token="+expired), other); statusOf(err) != http.StatusForbidden {
		t.Errorf("foreign origin: got %v, want HTTP 403 before any auth answer", err)
	}
	gatewayWait(t, "the refused connection to be released", func() bool { return ts.Stats().Conns == 0 })
	if n := ts.Stats().Accepted; n != 0 {
		t.Errorf("accepted: got %d, want 0 (a refused connection is not accepted)", n)
	}
}

// TestTokenRefresh: a connection whose token is about to expire is warned
// (id-0 error 12), a refresh frame with a newer token of the same user
// moves its deadline, a token of another user is refused without closing,
// and a connection that never refreshes is closed with 4004.
func TestTokenRefresh(t *testing.T) {
	ts := startServer(t, wsgate.Config{Authenticate: jwtAuth(t), PingInterval: 100 * time.Millisecond})
	c := dial(t, ts.wsURL("/ws?token="+token(t, "bea", 2*time.Second)), fullForm)
	if f := readFrame(t, c); f.Type != wire.TypeHello {
		t.Fatalf("first frame: %v", f.Type)
	}
	firstDeadline := time.Now().Add(2 * time.Second)
	expectNotice(t, c)

	send := func(id uint32, tok string) wire.Frame {
		b, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypeRefresh, ID: id, Payload: []byte(tok)})
		write(t, c, websocket.BinaryMessage, b)
		return readFrame(t, c)
	}
	if f := send(1, token(t, "cid", time.Hour)); f.Type != wire.TypeError || f.ID != 1 || f.Code != wire.CodeForbidden {
		t.Fatalf("refresh with another user's token: got %+v, want error 3 to id 1", f)
	}
	if f := send(2, "garbage"); f.Type != wire.TypeError || f.ID != 2 || f.Code != wire.CodeForbidden {
		t.Fatalf("refresh with a garbage token: got %+v, want error 3 to id 2", f)
	}
	if f := send(3, token(t, "bea", 3*time.Second)); f.Type != wire.TypeReply || f.ID != 3 {
		t.Fatalf("refresh: got %+v, want an empty reply to id 3", f)
	}
	expectNotice(t, c) // the new deadline is warned about again
	code := readClose(t, c)
	if code != websocket.StatusCode(wire.CloseTokenExpired) {
		t.Fatalf("never refreshed again: got close %d, want 4004", code)
	}
	if time.Now().Before(firstDeadline) {
		t.Errorf("closed before the first token's deadline although it was refreshed")
	}
}

func expectNotice(t *testing.T, c *websocket.Conn) {
	t.Helper()
	f := readFrame(t, c)
	if f.Type != wire.TypeError || f.ID != 0 || f.Code != wire.CodeTokenExpiring || !strings.Contains(string(f.Payload), "refresh") {
		t.Fatalf("got %+v, want an id-0 token-expiring notice", f)
	}
}

// TestTextOnWSTeaches: plain text on /ws gets an error naming the forms
// and /echo; a JSON object with a mistake keeps the decoder's own words.
func TestTextOnWSTeaches(t *testing.T) {
	ts := startServer(t, wsgate.Config{InsecureNoAuth: true})
	c := dial(t, ts.wsURL("/ws"), nil)
	write(t, c, websocket.TextMessage, []byte("hello"))
	typ, data := read(t, c)
	var f wire.Frame
	if typ != websocket.TextMessage || wire.DecodeJSON(data, &f) != nil || f.Code != wire.CodeBadRequest {
		t.Fatalf("got %v %s, want a JSON error frame", typ, data)
	}
	for _, want := range []string{`{"type":"request"`, "wsgate.v1", "simple-form", "/echo", "invalid character"} {
		if !strings.Contains(string(f.Payload), want) {
			t.Errorf("error %q does not mention %q", f.Payload, want)
		}
	}
	write(t, c, websocket.TextMessage, []byte(`{"type":"request","id":1,"acton":4}`))
	_, data = read(t, c)
	if err := wire.DecodeJSON(data, &f); err != nil || strings.Contains(string(f.Payload), "/echo") || !strings.Contains(string(f.Payload), "acton") {
		t.Errorf("JSON with a typo: got %s, want the decoder's message only", f.Payload)
	}
}

func gatewayWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
