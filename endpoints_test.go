package wsgate_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

func TestNewRequiresAuthDecision(t *testing.T) {
	_, err := wsgate.New(wsgate.Config{})
	if err == nil || !strings.Contains(err.Error(), "Authenticate") {
		t.Errorf("New without Authenticate: got %v, want an error naming Authenticate", err)
	}
	if _, err := wsgate.New(wsgate.Config{MaxConns: -1, InsecureNoAuth: true}); err == nil {
		t.Error("New with negative MaxConns: got nil error, want one")
	}
	cfg := wsgate.Config{InsecureNoAuth: true, AllowedOrigins: []string{"https://a.example"}}
	if _, err := wsgate.New(cfg); err != nil {
		t.Fatalf("New: %v", err)
	}
	if cfg.MaxConns != 0 || cfg.Addr != "" {
		t.Errorf("New modified the caller's Config: MaxConns %d, Addr %q", cfg.MaxConns, cfg.Addr)
	}
}

func TestEchoClassicMessage(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, anon())
	if len(classic) != 16 {
		t.Fatalf("classic message: got %d bytes, want 16", len(classic))
	}
	for _, path := range []string{"/echo", "/"} {
		c := dial(t, ts.wsURL(path), nil)
		write(t, c, websocket.BinaryMessage, classic)
		typ, got := read(t, c)
		if typ != websocket.BinaryMessage || !bytes.Equal(got, classic) {
			t.Errorf("%s: got %v %x, want binary %x", path, typ, got, classic)
		}
		write(t, c, websocket.TextMessage, []byte("我们都好"))
		if typ, got := read(t, c); typ != websocket.TextMessage || string(got) != "我们都好" {
			t.Errorf("%s text: got %v %q, want text %q", path, typ, got, "我们都好")
		}
	}
}

func TestEchoMaxMessageSize(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.EchoMaxMessageSize = 100
	ts := startServer(t, cfg)
	c := dial(t, ts.wsURL("/echo"), nil)
	write(t, c, websocket.BinaryMessage, make([]byte, 101))
	if got := readClose(t, c); got != websocket.StatusMessageTooBig {
		t.Errorf("close code: got %d, want 1009", got)
	}
}

func TestDisableEcho(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.DisableEcho = true
	ts := startServer(t, cfg)
	for _, path := range []string{"/echo", "/"} {
		if _, err := dialErr(t, ts.wsURL(path), nil); statusOf(err) != http.StatusNotFound {
			t.Errorf("%s with echo disabled: got %v, want 404", path, err)
		}
	}
}

func TestHTTPEndpoints(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "page "+r.URL.Path)
	})
	tests := []struct {
		name       string
		page       http.Handler
		path       string
		wantStatus int
		wantBody   string
	}{
		{"healthz", nil, "/healthz", 200, "ok\n"},
		{"readyz", nil, "/readyz", 200, "ok\n"},
		{"root without page", nil, "/", 404, "404 page not found\n"},
		{"root with page", page, "/", 200, "page /"},
		{"asset with page", page, "/wsgate.js", 200, "page /wsgate.js"},
		{"ws without upgrade", page, "/ws", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := anon()
			cfg.Page = tt.page
			srv, err := wsgate.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body: got %q, want %q", rec.Body.String(), tt.wantBody)
			}
		})
	}
}

func TestMaxConns(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.MaxConns = 2
	ts := startServer(t, cfg)
	dial(t, ts.wsURL("/ws"), nil)
	dial(t, ts.wsURL("/echo"), nil)
	_, err := dialErr(t, ts.wsURL("/ws"), nil)
	if got := statusOf(err); got != http.StatusServiceUnavailable {
		t.Errorf("third connection: got %v (status %d), want 503", err, got)
	}
	if got := ts.Stats().Rejected.Overloaded; got != 1 {
		t.Errorf("Stats.Rejected.Overloaded: got %d, want 1", got)
	}
}

func TestOriginPolicy(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.AllowedOrigins = []string{"https://app.example.com"}
	ts := startServer(t, cfg)
	tests := []struct {
		origin string
		want   int // 0 = accepted
	}{
		{"", 0},
		{"http://" + ts.addr, 0},
		{"https://app.example.com", 0},
		{"https://evil.example.com", http.StatusForbidden},
		{"http://localhost:1", http.StatusForbidden},
	}
	for _, tt := range tests {
		opts := &websocket.DialOptions{Header: http.Header{}}
		if tt.origin != "" {
			opts.Header.Set("Origin", tt.origin)
		}
		_, err := dialErr(t, ts.wsURL("/ws"), opts)
		if got := statusOf(err); got != tt.want || (tt.want == 0 && err != nil) {
			t.Errorf("Origin %q: got %v (status %d), want status %d", tt.origin, err, got, tt.want)
		}
	}
	if got := ts.Stats().Rejected.Origin; got != 2 {
		t.Errorf("Stats.Rejected.Origin: got %d, want 2", got)
	}
}

func TestAnyOrigin(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.AllowedOrigins = []string{"*"}
	ts := startServer(t, cfg)
	opts := &websocket.DialOptions{Header: http.Header{"Origin": {"https://anything.example"}}}
	if _, err := dialErr(t, ts.wsURL("/ws"), opts); err != nil {
		t.Errorf("any origin allowed: got %v, want accepted", err)
	}
}

func TestAuthenticate(t *testing.T) {
	leakcheck.Check(t)
	cfg := wsgate.Config{Authenticate: func(_ context.Context, r *http.Request) (wsgate.Identity, error) {
		if r.Header.Get("Authorization") != "Bearer good" {
			return wsgate.Identity{}, errors.New("wsgate: bad token")
		}
		return wsgate.Identity{UserID: "alice"}, nil
	}}
	ts := startServer(t, cfg)
	_, err := dialErr(t, ts.wsURL("/ws"), nil)
	if got := statusOf(err); got != http.StatusUnauthorized {
		t.Errorf("no token: got %v (status %d), want 401", err, got)
	}
	resp, err := http.Get("http://" + ts.addr + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "wsgate: bad token") {
		t.Errorf("plain GET without token: got %d %q, want 401 with the error's message", resp.StatusCode, body)
	}
	opts := &websocket.DialOptions{Header: http.Header{"Authorization": {"Bearer good"}}, Subprotocols: fullForm.Subprotocols}
	c := dial(t, ts.wsURL("/ws"), opts)
	if hello := readFrame(t, c); string(hello.UserID) != "alice" {
		t.Errorf("hello user: got %q, want alice", hello.UserID)
	}
	gatewaytest.WaitFor(t, "Presence(alice) == 1", func() bool { return ts.Presence("alice") == 1 })
}

func TestHandshakeRate(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.HandshakeRate = 1 // burst 2
	ts := startServer(t, cfg)
	dial(t, ts.wsURL("/ws"), nil)
	dial(t, ts.wsURL("/echo"), nil)
	_, err := dialErr(t, ts.wsURL("/ws"), nil)
	if got := statusOf(err); got != http.StatusTooManyRequests {
		t.Fatalf("third handshake in a burst of 2: got %v (status %d), want 429", err, got)
	}
	var se *statusError
	if errors.As(err, &se) && se.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After: got %q, want \"1\"", se.header.Get("Retry-After"))
	}
}

// TestHandshakeRateIPv6Network: behind a trusted proxy, IPv6 clients are
// rate limited by their /64, since one host can use any address of its
// network; another /64 has a bucket of its own.
func TestHandshakeRateIPv6Network(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.HandshakeRate = 1 // burst 2
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	ts := startServer(t, cfg)
	from := func(ip string) *websocket.DialOptions {
		return &websocket.DialOptions{Header: http.Header{"X-Real-Ip": {ip}}}
	}
	dial(t, ts.wsURL("/ws"), from("2001:db8:1:2::1"))
	dial(t, ts.wsURL("/ws"), from("2001:db8:1:2::2"))
	_, err := dialErr(t, ts.wsURL("/ws"), from("2001:db8:1:2:ffff::3"))
	if got := statusOf(err); got != http.StatusTooManyRequests {
		t.Fatalf("third handshake from the same /64: got %v (status %d), want 429", err, got)
	}
	dial(t, ts.wsURL("/ws"), from("2001:db8:1:3::1")) // another /64
	dial(t, ts.wsURL("/ws"), from("192.0.2.1"))
}

// TestMaxConnsPerUser: a user at MaxConnsPerUser gets 429 with Retry-After
// and is counted; other users are not affected; a slot freed by a close
// can be taken again.
func TestMaxConnsPerUser(t *testing.T) {
	leakcheck.Check(t)
	cfg := userAuth()
	cfg.MaxConnsPerUser = 2
	ts := startServer(t, cfg)
	first := as(t, ts, "mallory")
	as(t, ts, "mallory")
	opts := &websocket.DialOptions{Header: http.Header{"X-User": {"mallory"}}}
	_, err := dialErr(t, ts.wsURL("/ws"), opts)
	if got := statusOf(err); got != http.StatusTooManyRequests {
		t.Fatalf("third connection of a user limited to 2: got %v (status %d), want 429", err, got)
	}
	var se *statusError
	if errors.As(err, &se) && se.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if st := ts.Stats(); st.Rejected.UserLimit != 1 || st.Handshakes.RateLimited != 1 {
		t.Errorf("counters: got user_limit %d, 429s %d; want 1, 1", st.Rejected.UserLimit, st.Handshakes.RateLimited)
	}
	as(t, ts, "trent") // another user
	_ = first.Close(websocket.StatusNormalClosure, "")
	gatewaytest.WaitFor(t, "Presence(mallory) == 1", func() bool { return ts.Presence("mallory") == 1 })
	as(t, ts, "mallory")
}

// TestMaxConnsPerUserUnlimited: a negative MaxConnsPerUser lifts the limit.
func TestMaxConnsPerUserUnlimited(t *testing.T) {
	leakcheck.Check(t)
	cfg := userAuth()
	cfg.MaxConnsPerUser = -1
	ts := startServer(t, cfg)
	for range 3 {
		as(t, ts, "mallory")
	}
}
