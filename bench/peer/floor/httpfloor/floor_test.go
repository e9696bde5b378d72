package main

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/loadgen"
)

const (
	testSecret = "httpfloor-test-secret-0123456789"
	testKey    = "httpfloor-test-key"
)

// startFloor serves a floor on 127.0.0.1:0 until the test ends and returns
// its base address (host:port).
func startFloor(t *testing.T) string {
	t.Helper()
	f, err := newFloor([]byte(testSecret), testKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // ErrServerClosed at the end
	}()
	t.Cleanup(func() {
		_ = srv.Close() // closes the listener and idle API connections
		f.shutdown()
		<-done
	})
	return ln.Addr().String()
}

// noLeaks fails the test if goroutines started during it are still there
// once it has cleaned up (waiting up to 10 s for them to end).
func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines left over:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// TestFloorServesTheLoadGenerator runs the personal and connect scenarios
// of bench/peer/run.sh, small, against the floor with the load generator's
// wsgate protocol: every push must arrive and every handshake succeed.
func TestFloorServesTheLoadGenerator(t *testing.T) {
	noLeaks(t)
	addr := startFloor(t)
	cfg := loadgen.Config{URL: "ws://" + addr + "/ws", API: "http://" + addr, APIKey: testKey, Server: "floor"}
	pc := loadgen.PeerConfig{Peer: loadgen.PeerWsgate, Secret: testSecret}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	res, err := loadgen.PeerScenario(ctx, cfg, pc, loadgen.PeerOptions{Scenario: "personal", N: 40, Users: 20, PushConc: 4, Repeats: 3, Warmup: 1})
	if err != nil {
		t.Fatalf("personal: %v", err)
	}
	if missed, ok := res.Metric("missed"); !ok || missed != 0 || res.Errors != 0 {
		t.Errorf("personal: missed %v (reported %v), errors %d; want 0 and 0", missed, ok, res.Errors)
	}

	res, err = loadgen.PeerScenario(ctx, cfg, pc, loadgen.PeerOptions{Scenario: "connect", N: 30, Conc: 5})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if n, _ := res.Metric("handshakes"); n != 30 || res.Errors != 0 {
		t.Errorf("connect: %v handshakes, %d errors; want 30 and 0", n, res.Errors)
	}
}

// TestFloorRefuses checks the answers to what the floor does not serve.
func TestFloorRefuses(t *testing.T) {
	noLeaks(t)
	addr := startFloor(t)
	token, err := auth.Issue([]byte(testSecret), "u1", time.Hour, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := auth.Issue([]byte("another-secret-0123456789abcdef"), "u1", time.Hour, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "wsgate.v1"}
	with := func(h map[string]string, k, v string) map[string]string {
		c := map[string]string{k: v}
		for hk, hv := range h {
			if hk != k {
				c[hk] = hv
			}
		}
		if v == "" {
			delete(c, k)
		}
		return c
	}
	body := `{"action":120,"json":{"r":1},"to":{"user":"u1"}}`
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		want                     int
	}{
		{"no token", "GET", "/ws", "", upgrade, http.StatusUnauthorized},
		{"forged token", "GET", "/ws", "", with(upgrade, "Authorization", "Bearer "+forged), http.StatusUnauthorized},
		{"no subprotocol", "GET", "/ws", "", with(with(upgrade, "Authorization", "Bearer "+token), "Sec-WebSocket-Protocol", ""), http.StatusBadRequest},
		{"not an upgrade", "GET", "/ws", "", map[string]string{"Authorization": "Bearer " + token}, http.StatusBadRequest},
		{"bad API key", "POST", "/api/v1/push", body, map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"user not connected", "POST", "/api/v1/push", body, map[string]string{"Authorization": "Bearer " + testKey}, http.StatusNotFound},
		{"bad body", "POST", "/api/v1/push", `{"to":`, map[string]string{"Authorization": "Bearer " + testKey}, http.StatusBadRequest},
		{"no user", "POST", "/api/v1/push", `{"action":120,"to":{"topic":"news"}}`, map[string]string{"Authorization": "Bearer " + testKey}, http.StatusBadRequest},
		{"system action", "POST", "/api/v1/push", `{"action":5,"to":{"user":"u1"}}`, map[string]string{"Authorization": "Bearer " + testKey}, http.StatusBadRequest},
		{"other path", "GET", "/", "", nil, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://"+addr+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close() // only the status matters
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
