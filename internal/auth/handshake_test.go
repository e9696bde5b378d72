package auth_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

var secret = []byte("handshake-test-secret-0123456789")

// TestHandshakeAuth runs a real gateway with JWT verification and checks what a
// client gets for each kind of token: a 401 with a reason before any upgrade, or a
// connection as the token's user.
func TestHandshakeAuth(t *testing.T) {
	v, err := auth.NewVerifier(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewaytest.Start(t, wsgate.Config{Authenticate: v.Authenticate}, nil)
	now := time.Now()
	valid, _ := auth.Issue(secret, "alice", time.Hour, nil, now)
	expired, _ := auth.Issue(secret, "alice", time.Hour, nil, now.Add(-2*time.Hour))
	forged, _ := auth.Issue([]byte("some-other-secret-0123456789abcd"), "alice", time.Hour, nil, now)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Subject: "alice"}).SignedString(jwt.UnsafeAllowNoneSignatureType)

	tests := []struct {
		name   string
		query  string
		header http.Header
		want   string // "" = connects; else a substring of the 401 body
	}{
		{"no token", "", nil, "missing token"},
		{"expired", "?token=" + expired, nil, "expired"},
		{"wrong secret", "?token=" + forged, nil, "signature"},
		{"alg none", "?token=" + none, nil, "token"},
		{"garbage", "?token=abc", nil, "malformed"},
		{"query", "?token=" + valid, nil, ""},
		{"bearer header", "", http.Header{"Authorization": {"Bearer " + valid}}, ""},
		{"cookie", "", http.Header{"Cookie": {auth.CookieName + "=" + valid}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, gw.WS+"/ws"+tt.query, nil,
				&websocket.DialOptions{Header: tt.header, Subprotocols: []string{wire.Subprotocol}})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want a connection", err)
				}
				defer c.CloseNow()
				return
			}
			if err == nil {
				_ = c.CloseNow()
				t.Fatal("got a connection, want 401")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("got %v (%v), want a 401 response", resp, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), tt.want) {
				t.Fatalf("401 body %q does not say %q", body, tt.want)
			}
		})
	}
}

// TestTopicsClaim: a token's topics claim limits what its holder may subscribe to.
func TestTopicsClaim(t *testing.T) {
	v, err := auth.NewVerifier(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewaytest.Start(t, wsgate.Config{Authenticate: v.Authenticate}, nil)
	tok, _ := auth.Issue(secret, "bob", time.Hour, []string{"news", "chat.*"}, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, gw.WS+"/ws?token="+tok, nil, &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	fc := &gatewaytest.FullConn{Conn: c}
	defer c.CloseNow()
	if f := fc.ReadFrame(t); f.Type != wire.TypeHello || string(f.UserID) != "bob" {
		t.Fatalf("got %+v, want bob's hello", f)
	}
	for topic, allowed := range map[string]bool{"news": true, "chat.room1": true, "sports": false, "newsletter": false} {
		f := fc.Request(t, wire.ActionSubscribe, []byte(topic))
		switch {
		case allowed && f.Type != wire.TypeReply:
			t.Errorf("subscribe %q: got %+v, want a reply", topic, f)
		case !allowed && (f.Type != wire.TypeError || f.Code != wire.CodeForbidden):
			t.Errorf("subscribe %q: got %+v, want error forbidden", topic, f)
		}
	}
}
