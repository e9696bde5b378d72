package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/internal/testbin"
	"github.com/wsgate/wsgate/internal/web"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

const adminKey = "admin-test-key"

// startAdmin runs a gateway with the admin view mounted as the binary
// mounts it.
func startAdmin(t *testing.T) *gatewaytest.Gateway {
	t.Helper()
	mux := http.NewServeMux()
	return gatewaytest.Start(t, wsgate.Config{Page: mux, HandshakeRate: -1}, func(srv *wsgate.Server) {
		h := web.Admin(srv, web.AdminConfig{APIKey: adminKey, Node: "test-node:8080"})
		mux.Handle("/admin", h)
		mux.Handle("/admin/", h)
	})
}

func adminGet(t *testing.T, url string, header http.Header) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

func basic(key string) http.Header {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth("admin", key)
	return req.Header
}

// TestAdminAccess: the key is required (Basic password or Bearer), a
// cross-site browser request is refused, and the data endpoints answer.
func TestAdminAccess(t *testing.T) {
	leakcheck.Check(t)
	gw := startAdmin(t)
	for _, tc := range []struct {
		name   string
		path   string
		header http.Header
		want   int
	}{
		{"no key", "/admin", nil, http.StatusUnauthorized},
		{"wrong key", "/admin/stats", basic("wrong"), http.StatusUnauthorized},
		{"basic", "/admin", basic(adminKey), http.StatusOK},
		{"bearer", "/admin/stats", http.Header{"Authorization": {"Bearer " + adminKey}}, http.StatusOK},
		{"script", "/admin/admin.js", basic(adminKey), http.StatusOK},
		{"cross-site", "/admin/stats", mergeHeader(basic(adminKey), "Sec-Fetch-Site", "cross-site"), http.StatusForbidden},
		{"foreign origin", "/admin/stats", mergeHeader(basic(adminKey), "Origin", "http://evil.example"), http.StatusForbidden},
		{"unknown path", "/admin/nope", basic(adminKey), http.StatusNotFound},
	} {
		status, h, _ := adminGet(t, gw.URL+tc.path, tc.header)
		if status != tc.want {
			t.Errorf("%s: GET %s: got %d, want %d", tc.name, tc.path, status, tc.want)
		}
		if status == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: WWW-Authenticate %q, want a Basic challenge", tc.name, h.Get("WWW-Authenticate"))
		}
		if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: missing anti-framing headers: %v", tc.name, h)
		}
	}

	c := gw.DialSimple(t, "alice")
	// The handshake is counted once Accept has returned on the server,
	// which may be a moment after the client has its 101.
	gatewaytest.WaitFor(t, "alice registered and counted", func() bool {
		st := gw.Stats()
		return st.Conns == 1 && st.Handshakes.Accepted == 1
	})
	if _, err := gw.Publish(context.Background(), wsgate.Target{User: "alice"}, 200, []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, _, body := adminGet(t, gw.URL+"/admin/stats", basic(adminKey))
	var st struct {
		Time  int64           `json:"time"`
		Nodes []web.NodeStats `json:"nodes"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("/admin/stats: %v in %s", err, body)
	}
	if len(st.Nodes) != 1 || !st.Nodes[0].Self || st.Nodes[0].Node != "test-node:8080" || st.Nodes[0].Conns != 1 ||
		st.Nodes[0].Handshakes["accepted"] != 1 || st.Nodes[0].Delivered != 1 || st.Time == 0 {
		t.Errorf("/admin/stats: got %s, want this node with 1 connection, 1 accepted handshake, 1 delivery", body)
	}
	_, _, body = adminGet(t, gw.URL+"/admin/user/alice", basic(adminKey))
	var u map[string]any
	if err := json.Unmarshal(body, &u); err != nil || u["online"] != true || u["seq"] != float64(1) || u["connections"] != float64(1) {
		t.Errorf("/admin/user/alice: got %s (%v), want online, 1 connection, seq 1", body, err)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

func mergeHeader(h http.Header, k, v string) http.Header {
	h = h.Clone()
	h.Set(k, v)
	return h
}

// TestAdminInChromium opens /admin in headless Chromium (admin_test.mjs)
// and puts load on the gateway once the page has a baseline: the charts
// must draw and the numbers move. With WSGATE_SCREENSHOTS=1 the
// screenshot is written to docs/admin.png (the one the README shows).
func TestAdminInChromium(t *testing.T) {
	node := testbin.Require(t, "node")
	if _, err := os.Stat(chromiumPath); err != nil {
		testbin.Missing(t, "admin view test: Debian chromium not found at %s", chromiumPath)
	}
	modules := nodeModules(t)
	gw := startAdmin(t)
	shot := filepath.Join(t.TempDir(), "admin.png")
	if os.Getenv("WSGATE_SCREENSHOTS") == "1" {
		shot, _ = filepath.Abs(filepath.Join("..", "..", "docs", "admin.png"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "admin_test.mjs", gw.URL, adminKey, shot)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "CHROMIUM_PATH="+chromiumPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var loadDone sync.WaitGroup
	var out bytes.Buffer
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if strings.Contains(line, `"step":"baseline","ok":true`) {
			loadDone.Go(func() { runLoad(loadCtx, t, gw) })
		}
	}
	err = cmd.Wait()
	stopLoad()
	loadDone.Wait()
	steps := parseSteps(t, out.Bytes())
	for _, s := range steps {
		if !s.OK {
			t.Errorf("step %q failed: %s", s.Step, s.Error)
		}
	}
	if len(steps) < 9 {
		t.Errorf("got %d steps, want 9\nstdout:\n%s", len(steps), out.String())
	}
	if err != nil {
		t.Errorf("admin_test.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	if b, err := os.ReadFile(shot); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("screenshot %s: %v, want a PNG", shot, err)
	}
}

// runLoad holds "watcher" and five other users connected, churns one
// more connection every 100 ms (handshakes), sends a request every 20 ms,
// pushes to everyone every 20 ms and to watcher every 100 ms, and pushes
// 256 KiB every 20 ms to "slowpoke", who never reads, so that the gateway
// closes it as a slow consumer about once a second; until ctx ends. The load's
// connections never read either: what they receive stays in socket
// buffers, a few kilobytes.
func runLoad(ctx context.Context, t *testing.T, gw *gatewaytest.Gateway) {
	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			_ = c.CloseNow() // the test is over
		}
	}()
	dial := func(user string) *websocket.Conn {
		dctx, cancel := context.WithTimeout(ctx, gatewaytest.Timeout)
		defer cancel()
		c, _, err := websocket.Dial(dctx, gw.WS+"/ws?user="+user, nil, nil)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("load: dial %s: %v", user, err)
			}
			return nil
		}
		conns = append(conns, c)
		return c
	}
	var watcher *websocket.Conn
	for _, u := range []string{"watcher", "u1", "u2", "u3", "u4", "u5", "slowpoke"} {
		c := dial(u)
		if c == nil {
			return
		}
		if u == "watcher" {
			watcher = c
		}
	}
	ping := wire.AppendSimple(nil, wire.ActionPing, nil)
	big := make([]byte, 256<<10)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var churn *websocket.Conn
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := gw.Push(ctx, wsgate.Target{All: true}, 200, []byte("tick")); err != nil && ctx.Err() == nil {
			t.Errorf("load: push: %v", err)
		}
		_ = watcher.Write(ctx, websocket.BinaryMessage, ping) // fails only when ctx ends
		if n, err := gw.Push(ctx, wsgate.Target{User: "slowpoke"}, 202, big); n == 0 && err == nil && gw.Presence("slowpoke") == 0 {
			dial("slowpoke") // closed as a slow consumer: the next one
		}
		if i%5 != 0 {
			continue
		}
		if _, err := gw.Publish(ctx, wsgate.Target{User: "watcher"}, 201, []byte("hi")); err != nil && ctx.Err() == nil {
			t.Errorf("load: publish: %v", err)
		}
		if churn != nil {
			_ = churn.CloseNow() // a drop: the gateway counts a 1006 close
		}
		churn = dial("churn")
	}
}

// TestPageHandlerHidesAdmin: the page handler does not serve the admin
// view's files; only Admin does, behind the key.
func TestPageHandlerHidesAdmin(t *testing.T) {
	leakcheck.Check(t)
	gw := gatewaytest.Start(t, wsgate.Config{Page: web.Handler()}, nil)
	for _, p := range []string{"/admin", "/admin/", "/admin/index.html", "/admin/admin.js"} {
		if status, _, _ := adminGet(t, gw.URL+p, nil); status != http.StatusNotFound {
			t.Errorf("GET %s from the page handler: got %d, want 404", p, status)
		}
	}
}
