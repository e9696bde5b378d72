package wsgate_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

// dialFrom opens a TCP connection to addr from the loopback address from
// (127.0.0.2 and so on: all of 127/8 is loopback on Linux).
func dialFrom(ctx context.Context, from, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: testTimeout}
	return d.DialContext(ctx, "tcp", addr)
}

// rawRequest sends req on a new connection and returns the status of the
// answer, or 0 when the connection closed without one.
func rawRequest(t *testing.T, addr, req string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout)) // a hang shows as an error
	_, _ = io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close() // the status is the answer
	return resp.StatusCode
}

// waitStat polls f until it reports true, for at most testTimeout.
func waitStat(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, testTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPerIPPendingBound: one address holding its MaxPendingConnsPerIP
// silent connections gets 503 for the next one, counted and logged,
// while another address still gets in, WebSocket included.
func TestPerIPPendingBound(t *testing.T) {
	leakcheck.Check(t)
	if runtime.GOOS != "linux" {
		t.Skip("needs 127.0.0.2 on the loopback interface (Linux)")
	}
	var logs lockedBuffer
	cfg := anon()
	cfg.MaxPendingConns = 16
	cfg.MaxPendingConnsPerIP = 2
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ts := startServer(t, cfg)
	holdConns(t, ts.addr, 2)
	// Poll: the server accepts the two held connections in a moment.
	waitStat(t, "503 for a third connection from 127.0.0.1", func() bool {
		return rawRequest(t, ts.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == http.StatusServiceUnavailable
	})
	if got := ts.Stats().HTTPRejected.PerIPLimit; got < 1 {
		t.Errorf("Stats.HTTPRejected.PerIPLimit: got %d, want at least 1", got)
	}
	if l := logs.String(); !strings.Contains(l, "too many pending connections from one address") || !strings.Contains(l, "127.0.0.1:") {
		t.Errorf("log: got %q, want the refusal with its reason and peer", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		return dialFrom(ctx, "127.0.0.2", addr)
	}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ts.addr+"/healthz", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("/healthz from 127.0.0.2: %v", err)
	}
	_ = resp.Body.Close() // the status is the answer
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz from 127.0.0.2: got %d, want 200", resp.StatusCode)
	}
	ws, _, err := websocket.Dial(ctx, ts.wsURL("/ws"), nil, &websocket.DialOptions{NetDial: func(ctx context.Context, _, addr string) (net.Conn, error) {
		return dialFrom(ctx, "127.0.0.2", addr)
	}})
	if err != nil {
		t.Fatalf("WebSocket from 127.0.0.2: %v", err)
	}
	_ = ws.CloseNow() // it got in: that was the point
}

// TestNetHTTPRejectionsCounted: what net/http answers itself (431, 400)
// or closes (header, body and idle timeouts) is counted in
// Stats.HTTPRejected and, idleness apart, logged with reason and client.
func TestNetHTTPRejectionsCounted(t *testing.T) {
	leakcheck.Check(t)
	var logs lockedBuffer
	cfg := anon()
	cfg.MaxHeaderBytes = 1024
	cfg.ReadHeaderTimeout = 200 * time.Millisecond
	cfg.ReadTimeout = 300 * time.Millisecond
	cfg.HTTPIdleTimeout = 200 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.Page = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		}
	})
	ts := startServer(t, cfg)

	if got := rawRequest(t, ts.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 8<<10)+"\r\n\r\n"); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("huge header: got %d, want 431", got)
	}
	if got := rawRequest(t, ts.addr, "GET /healthz HTTP/1.1\r\n\r\n"); got != http.StatusBadRequest {
		t.Errorf("no Host: got %d, want 400", got)
	}
	// Headers cut off: closed after ReadHeaderTimeout.
	if got := rawRequest(t, ts.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); got != http.StatusBadRequest && got != 0 {
		t.Errorf("slow headers: got %d, want 400 or a close", got)
	}
	// A body cut off: the handler's read times out after ReadTimeout.
	rawRequest(t, ts.addr, "POST /page HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
	// Keep-alive left idle: closed after HTTPIdleTimeout.
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(testTimeout)) // a hang shows as an error
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("keep-alive request: got %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, br) // returns when the server closes it
	_ = c.Close()                  // closed by the server already

	want := wsgate.HTTPRejections{HeadersTooLarge: 1, BadRequest: 1, HeaderTimeout: 1, BodyTimeout: 1, IdleClosed: 1}
	waitStat(t, "the counts", func() bool { return ts.Stats().HTTPRejected == want })
	for _, line := range []string{
		"status=431 reason=\"request headers larger than the max-header-bytes bound\" client=127.0.0.1",
		"status=400 reason=\"malformed request: 400 Bad Request: missing required Host header\" client=127.0.0.1",
		"status=0 reason=\"request headers not read within the read-header timeout\" client=127.0.0.1",
		"status=0 reason=\"request body not read within the read timeout\" client=127.0.0.1",
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log: no line with %q in\n%s", line, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "request rejected"); n != 4 {
		t.Errorf("got %d \"request rejected\" lines, want 4 (idleness is not logged)", n)
	}
}

// TestUpgradedConnsLeaveTheWatch: a WebSocket upgraded through Serve is
// driven by the engine's epoll reactor (no goroutine per connection), so
// the engine got the *net.TCPConn and not the listener's wrapper.
func TestUpgradedConnsLeaveTheWatch(t *testing.T) {
	leakcheck.Check(t)
	if runtime.GOOS != "linux" {
		t.Skip("the reactor is Linux only")
	}
	ts := startServer(t, anon())
	const n = 40
	warm := dial(t, ts.wsURL("/ws"), nil) // starts the engine's own goroutines
	defer warm.CloseNow()
	waitStat(t, "first connection", func() bool { return ts.Stats().Conns == 1 })
	before := runtime.NumGoroutine()
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = dial(t, ts.wsURL("/ws"), nil)
	}
	defer func() {
		for _, c := range conns {
			_ = c.CloseNow() // end of the test
		}
	}()
	waitStat(t, "all connections", func() bool { return ts.Stats().Conns == n+1 })
	// The client side of each connection has a goroutine in this process
	// (n in all); the server side adds none in the reactor, one or more
	// per connection in blocking mode (2n in all, measured).
	if added := runtime.NumGoroutine() - before; added >= n+n/2 {
		t.Errorf("%d goroutines for %d connections (both sides), want under %d: the server drives them with a goroutine each (blocking mode)", added, n, n+n/2)
	}
}

// TestPerIPPendingBoundSparesProxies: a trusted proxy carries many
// clients, so only MaxPendingConns bounds its connections.
func TestPerIPPendingBoundSparesProxies(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.MaxPendingConns = 16
	cfg.MaxPendingConnsPerIP = 1
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	ts := startServer(t, cfg)
	holdConns(t, ts.addr, 3)
	waitStat(t, "the held connections accepted", func() bool {
		return rawRequest(t, ts.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == http.StatusOK
	})
	if got := ts.Stats().HTTPRejected.PerIPLimit; got != 0 {
		t.Errorf("Stats.HTTPRejected.PerIPLimit: got %d, want 0 for a trusted proxy", got)
	}
}
