package main

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/leakcheck"
)

func TestVersion(t *testing.T) {
	out, _, err := runCmd(t, "version")
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	if !strings.HasPrefix(out, "wsgate ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: got %q, want \"wsgate VERSION … %s …\"", out, runtime.Version())
	}
	b := buildInfo{Version: "v1.2.3", Commit: "abc", Modified: true, GoVersion: "go1.26.0", Platform: "linux/amd64"}
	if got, want := b.String(), "wsgate v1.2.3 commit abc (modified) go1.26.0 linux/amd64"; got != want {
		t.Errorf("buildInfo: got %q, want %q", got, want)
	}
}

// TestTokenWithoutSecret: the README's token line without the variable
// set names the secret, not --user, which was given.
func TestTokenWithoutSecret(t *testing.T) {
	t.Setenv("WSGATE_JWT_SECRET", "")
	_, errOut, err := runCmd(t, "token", "--secret", "", "--user", "alice")
	if !errors.Is(err, errUsage) {
		t.Fatalf("got %v, want a usage error", err)
	}
	if !strings.Contains(errOut, "WSGATE_JWT_SECRET is not set") || strings.Contains(errOut, "--user") {
		t.Errorf("stderr %q: want it to name the missing secret, and not --user", errOut)
	}
}

func TestHealthcheck(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	if out, errOut, err := runCmd(t, "healthcheck", "--url", g.base+"/healthz"); err != nil || out != "ok\n" {
		t.Errorf("healthcheck --url: %v %q %q", err, out, errOut)
	}
	// Without --url: the address serve was given, as serve reads it.
	t.Setenv("WSGATE_ADDR", strings.TrimPrefix(g.base, "http://"))
	if _, errOut, err := runCmd(t, "healthcheck"); err != nil {
		t.Errorf("healthcheck from $WSGATE_ADDR: %v %s", err, errOut)
	}
	g.stop(t)
	if _, _, err := runCmd(t, "healthcheck"); err == nil {
		t.Error("healthcheck with serve stopped: got nil, want an error")
	}
}

func TestHealthURL(t *testing.T) {
	cases := []struct {
		addr string
		tls  bool
		want string
	}{
		{":8080", false, "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:9000", true, "https://127.0.0.1:9000/healthz"},
		{"[::]:80", false, "http://127.0.0.1:80/healthz"},
		{"10.1.2.3:8080", false, "http://10.1.2.3:8080/healthz"},
		{"[::1]:8080", false, "http://[::1]:8080/healthz"},
	}
	for _, tc := range cases {
		c := &config.Config{}
		c.Server.Addr = tc.addr
		if tc.tls {
			c.TLSCertFile = "c.pem"
		}
		if got := healthURL(c); got != tc.want {
			t.Errorf("healthURL(%q, tls=%v): got %q, want %q", tc.addr, tc.tls, got, tc.want)
		}
	}
}
