package wsgate_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

// lockedBuffer collects log output from the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRejectionsCountedAndLogged: every refused handshake is counted by
// status in Stats.Handshakes and logged with its reason and client.
func TestRejectionsCountedAndLogged(t *testing.T) {
	leakcheck.Check(t)
	var logs lockedBuffer
	cfg := wsgate.Config{
		Logger:        slog.New(slog.NewJSONHandler(&logs, nil)),
		HandshakeRate: 1, // burst 2
		Authenticate: func(_ context.Context, r *http.Request) (wsgate.Identity, error) {
			if r.URL.Query().Get("user") == "" {
				return wsgate.Identity{}, errors.New("wsgate: no user")
			}
			return wsgate.Identity{UserID: r.URL.Query().Get("user")}, nil
		},
	}
	ts := startServer(t, cfg)
	h := http.Header{"Origin": {"https://evil.example"}}
	tries := []struct {
		path string
		opts *websocket.DialOptions
		want int
	}{
		{"/ws", nil, http.StatusUnauthorized},
		{"/ws?user=a", &websocket.DialOptions{Header: h}, http.StatusForbidden},
		{"/ws?user=a", nil, http.StatusTooManyRequests}, // the burst (2) is spent
	}
	for _, tr := range tries {
		c, err := dialErr(t, ts.wsURL(tr.path), tr.opts)
		if c != nil {
			_ = c.CloseNow() // only the status matters
		}
		if got := statusOf(err); got != tr.want {
			t.Errorf("%s: got %d (%v), want %d", tr.path, got, err, tr.want)
		}
	}
	got := ts.Stats().Handshakes
	want := wsgate.HandshakeStats{Unauthorized: 1, Forbidden: 1, RateLimited: 1}
	if got != want {
		t.Errorf("Stats.Handshakes: got %+v, want %+v", got, want)
	}
	for _, s := range []string{`"status":401,"reason":"wsgate: no user","client":"127.0.0.1"`, `"status":403`, `"status":429,"reason":"handshake rate exceeded"`} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("log lacks %s:\n%s", s, logs.String())
		}
	}
}

// TestRejectionLogRateLimited: a flood of rejections writes a bounded
// number of log lines, and a later line says how many were held back.
func TestRejectionLogRateLimited(t *testing.T) {
	leakcheck.Check(t)
	var logs lockedBuffer
	cfg := wsgate.Config{
		Logger:        slog.New(slog.NewJSONHandler(&logs, nil)),
		HandshakeRate: -1,
		Authenticate: func(context.Context, *http.Request) (wsgate.Identity, error) {
			return wsgate.Identity{}, errors.New("wsgate: no")
		},
	}
	ts := startServer(t, cfg)
	const n = 100
	for range n {
		resp, err := http.Get("http://" + ts.addr + "/ws")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close() // only the count matters
	}
	if got := ts.Stats().Handshakes.Unauthorized; got != n {
		t.Errorf("Stats.Handshakes.Unauthorized: got %d, want %d", got, n)
	}
	lines := strings.Count(logs.String(), "handshake rejected")
	if lines >= n/2 || lines < 20 {
		t.Errorf("got %d log lines for %d rejections, want the burst (20) and a few more", lines, n)
	}
}

// holdConns opens n TCP connections to addr that send nothing; whatever
// the test leaves open is closed when it ends.
func holdConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	held := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() }) // may be closed already: nothing to report
		held = append(held, c)
	}
	return held
}

// TestPendingConnsBound: beyond MaxPendingConns, a new connection gets 503
// before its request is read; WebSockets do not count.
func TestPendingConnsBound(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.MaxPendingConns = 2
	ts := startServer(t, cfg)
	ws := dial(t, ts.wsURL("/ws"), nil) // hijacked: no longer pending
	defer ws.CloseNow()
	held := holdConns(t, ts.addr, 2)
	// Both slots are taken once the server has accepted them; a third
	// connection is refused. Poll: accepting takes the server a moment.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a hang shows as an error
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		_ = c.Close() // one request each
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("third connection: got %v %v, want 503", resp, err)
		}
	}
	for _, c := range held {
		_ = c.Close() // frees the slots
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + ts.addr + "/healthz")
		if err == nil {
			_ = resp.Body.Close() // the status is enough
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the slots were freed: got %v %v, want 200", resp, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEchoMemory: /echo admits the connections EchoMemory allows (at least
// one), then answers 503.
func TestEchoMemory(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.EchoMemory = 1 // below one connection's charge: exactly one fits
	ts := startServer(t, cfg)
	c := dial(t, ts.wsURL("/echo"), nil)
	if c2, err := dialErr(t, ts.wsURL("/echo"), nil); statusOf(err) != http.StatusServiceUnavailable {
		if c2 != nil {
			_ = c2.CloseNow() // wrong answer; reported below
		}
		t.Fatalf("second /echo: got %v, want 503", err)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	// The slot comes back once the first connection has ended.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c2, err := dialErr(t, ts.wsURL("/echo"), nil)
		if err == nil {
			_ = c2.CloseNow() // admitted: done
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/echo after the first closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := ts.Stats().Handshakes.Unavailable; got == 0 {
		t.Errorf("Stats.Handshakes.Unavailable: got 0, want the 503 counted")
	}
}

// TestUserIDTooLongRefused: an identity whose user id the hello cannot
// carry is refused with 401 before the upgrade, not after it.
func TestUserIDTooLongRefused(t *testing.T) {
	leakcheck.Check(t)
	cfg := wsgate.Config{Authenticate: func(context.Context, *http.Request) (wsgate.Identity, error) {
		return wsgate.Identity{UserID: strings.Repeat("u", 70000)}, nil
	}}
	ts := startServer(t, cfg)
	c, err := dialErr(t, ts.wsURL("/ws"), nil)
	if c != nil {
		_ = c.CloseNow() // wrong answer; reported below
	}
	if statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("got %v, want 401", err)
	}
}
