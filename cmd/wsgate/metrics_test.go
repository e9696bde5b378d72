package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/leakcheck"
)

// TestServeMetricsAddr: --metrics-addr serves /metrics on its own
// listener, which stops with the gateway; the banner names it and the
// admin view.
func TestServeMetricsAddr(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t, "--metrics-addr", "127.0.0.1:0")
	var url, admin string
	for _, line := range strings.Split(g.stdout.String(), "\n") {
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "  metrics:"):
			url = fields[1]
		case strings.HasPrefix(line, "  admin:"):
			admin = fields[1]
		}
	}
	if url == "" || admin != g.base+"/admin" {
		t.Fatalf("banner: metrics %q, admin %q; want both (admin %s/admin):\n%s", url, admin, g.base, g.stdout.String())
	}
	code, body := httpGet(t, url)
	if code != http.StatusOK || !strings.Contains(body, "wsgate_connections{") || !strings.Contains(body, "go_goroutines ") {
		t.Errorf("GET %s: %d, want 200 with wsgate_ and go_ metrics:\n%.500s", url, code, body)
	}
	if code, _ := httpGet(t, g.base+"/metrics"); code == http.StatusOK {
		t.Errorf("GET /metrics on the gateway's port: got 200, want it only on --metrics-addr")
	}
	if code, _ := httpGet(t, admin); code != http.StatusUnauthorized {
		t.Errorf("GET %s without the key: got %d, want 401", admin, code)
	}
	g.stop(t)
	if _, err := http.Get(url); err == nil {
		t.Errorf("GET %s after the gateway stopped: still answering", url)
	}
}

func TestServeNoMetricsByDefault(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	if strings.Contains(g.stdout.String(), "metrics:") {
		t.Errorf("banner without --metrics-addr mentions metrics:\n%s", g.stdout.String())
	}
}
