package nginx_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/testbin"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// startNginx runs nginx with deploy/nginx/wsgate.conf, its upstream pointed at
// the gateway nodes at upstreams, and returns the address it listens on. It
// stops when the test ends.
func startNginx(t *testing.T, upstreams ...string) string {
	t.Helper()
	bin := testbin.Require(t, "/usr/sbin/nginx")
	conf, err := os.ReadFile("wsgate.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := testbin.FreeAddr(t)
	servers := "server " + strings.Join(upstreams, ";\n    server ") + ";"
	site := strings.NewReplacer("server 127.0.0.1:8080;", servers, "listen 80;", "listen "+addr+";").Replace(string(conf))
	if !strings.Contains(site, upstreams[0]) || !strings.Contains(site, addr) {
		t.Fatal("wsgate.conf no longer has the upstream and listen lines this test rewrites")
	}
	main := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/site.conf;
}
`, dir)
	writeFile(t, filepath.Join(dir, "site.conf"), site)
	writeFile(t, filepath.Join(dir, "nginx.conf"), main)

	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // nginx has no state worth a graceful stop here
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out.String(), log)
		}
	})
	waitListening(t, addr, exited)
	return addr
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func waitListening(t *testing.T, addr string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(gatewaytest.Timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("nginx exited at start: %v", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nginx did not listen on %s within %v", addr, gatewaytest.Timeout)
}

// TestThroughNginx runs the documented nginx config in front of a gateway and checks
// that everything a client does works through it: plain HTTP, the upgrade, requests,
// pushes, and close codes in both directions.
func TestThroughNginx(t *testing.T) {
	gw := gatewaytest.Start(t, wsgate.Config{}, func(s *wsgate.Server) {
		_ = s.Handle(110, func(_ context.Context, r *wsgate.Request) ([]byte, error) {
			return append([]byte("added "), r.Payload...), nil
		})
	})
	proxy := startNginx(t, gw.Addr)
	via := &gatewaytest.Gateway{Server: gw.Server, Addr: proxy, URL: "http://" + proxy, WS: "ws://" + proxy}

	resp, err := http.Get(via.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz through nginx: got %d %q, want 200", resp.StatusCode, body)
	}

	c := via.DialFull(t, "alice")
	if f := c.Request(t, 110, []byte("bob")); f.Type != wire.TypeReply || string(f.Payload) != "added bob" {
		t.Fatalf("request through nginx: got %+v, want reply \"added bob\"", f)
	}
	n, err := gw.Push(context.Background(), wsgate.Target{User: "alice"}, 120, []byte("hi"))
	if err != nil || n != 1 {
		t.Fatalf("push: got %d, %v; want 1 delivered", n, err)
	}
	if f := c.ReadFrame(t); f.Type != wire.TypePush || f.Action != 120 || string(f.Payload) != "hi" {
		t.Fatalf("push through nginx: got %+v, want push 120 hi", f)
	}

	// A server-side close code must reach the client unchanged: SDKs decide on it
	// whether to reconnect.
	if err := gw.Disconnect(string(c.Hello.ConnID), wire.CloseReplaced, "bye"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
	defer cancel()
	_, _, err = c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusCode(wire.CloseReplaced) {
		t.Fatalf("close through nginx: got %v (%v), want %d", got, err, wire.CloseReplaced)
	}
}

// TestNginxClientClose checks that a client's close 1000 reaches the gateway.
func TestNginxClientClose(t *testing.T) {
	codes := make(chan int, 1)
	gw := gatewaytest.Start(t, wsgate.Config{OnDisconnect: func(_ *wsgate.ConnInfo, code int) { codes <- code }}, nil)
	via := &gatewaytest.Gateway{Server: gw.Server, WS: "ws://" + startNginx(t, gw.Addr)}
	c := via.DialSimple(t, "alice")
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-codes:
		if code != 1000 {
			t.Fatalf("gateway saw close %d, want 1000", code)
		}
	case <-time.After(gatewaytest.Timeout):
		t.Fatal("gateway never saw the disconnect")
	}
}

// TestNginxSameOriginOnAnotherPort: the test page served through nginx on a
// port other than 80 opens its WebSocket with Origin http://host:port. nginx
// must pass the Host header with that port ($http_host; $host drops it), or
// the gateway's same-origin check refuses the page with 403. A foreign
// origin is still refused.
func TestNginxSameOriginOnAnotherPort(t *testing.T) {
	gw := gatewaytest.Start(t, wsgate.Config{}, nil)
	proxy := startNginx(t, gw.Addr)
	if strings.HasSuffix(proxy, ":80") {
		t.Fatalf("nginx listens on %s: the test needs a port other than 80", proxy)
	}
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"http://" + proxy, http.StatusSwitchingProtocols},
		{"http://evil.example:" + strings.Split(proxy, ":")[1], http.StatusForbidden},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
		h := http.Header{"Origin": {tc.origin}}
		c, resp, err := websocket.Dial(ctx, "ws://"+proxy+"/ws?user=alice", nil, &websocket.DialOptions{Header: h})
		cancel()
		got := 0
		if resp != nil {
			got = resp.StatusCode
		}
		if c != nil {
			_ = c.CloseNow() // only the handshake matters
		}
		if got != tc.want {
			t.Errorf("Origin %s through nginx: got HTTP %d (%v), want %d", tc.origin, got, err, tc.want)
		}
	}
}
