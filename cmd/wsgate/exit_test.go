package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/leakcheck"
)

// TestExitCodePrefix: every message gets exactly one "wsgate" prefix.
func TestExitCodePrefix(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
		code int
	}{
		{fmt.Errorf("wsgate: listen: %w", errors.New("address in use")), "wsgate: listen: address in use\n", exitFailure},
		{errors.New("plain"), "wsgate: plain\n", exitFailure},
		{withExit(exitAuth, errors.New("wsgate: push: HTTP 401")), "wsgate: push: HTTP 401\n", exitAuth},
		{errUsage, "", exitUsage},
	} {
		var buf bytes.Buffer
		if code := exitCode(tc.err, &buf); code != tc.code || buf.String() != tc.want {
			t.Errorf("exitCode(%v): got %d, %q; want %d, %q", tc.err, code, buf.String(), tc.code, tc.want)
		}
	}
}

// TestPushExitCodes runs "wsgate push" against a real first-run gateway:
// nothing delivered is exit 4 and still prints the seq, a wrong key is
// exit 3, and the server's "wsgate:" prefix is not repeated.
func TestPushExitCodes(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	out, _, err := runCmd(t, "push", "--api", g.base, "--api-key", g.apiKey, "--user", "nobody", "--action", "120", "--data", "x")
	if got := strings.TrimSpace(out); got != "delivered 0 seq 1" {
		t.Errorf("push to nobody: printed %q, want %q", got, "delivered 0 seq 1")
	}
	if code := exitCode(err, &bytes.Buffer{}); code != exitNotDelivered {
		t.Errorf("push to nobody: exit %d (%v), want %d", code, err, exitNotDelivered)
	}
	_, _, err = runCmd(t, "push", "--api", g.base, "--api-key", g.apiKey, "--conn", "no-such-conn", "--action", "120")
	if code := exitCode(err, &bytes.Buffer{}); code != exitNotDelivered {
		t.Errorf("push to an unknown conn: exit %d (%v), want %d", code, err, exitNotDelivered)
	}
	_, _, err = runCmd(t, "push", "--api", g.base, "--api-key", "wrong", "--all", "--action", "120")
	var msg bytes.Buffer
	if code := exitCode(err, &msg); code != exitAuth {
		t.Errorf("wrong key: exit %d (%v), want %d", code, err, exitAuth)
	}
	if strings.Count(msg.String(), "wsgate:") != 1 {
		t.Errorf("wrong key: message %q, want one wsgate: prefix", msg.String())
	}
	c := startClient(t, "--token", g.token, g.ws+"/ws")
	defer c.stdin.Close()
	out, _, err = runCmd(t, "push", "--api", g.base, "--api-key", g.apiKey, "--user", "demo", "--action", "120", "--data", "hi")
	if err != nil || strings.TrimSpace(out) != "delivered 1 seq 1" {
		t.Errorf("push to demo: got %q, %v; want \"delivered 1 seq 1\", nil", out, err)
	}
	c.stdout.waitFor(t, `action 120 payload "hi"`)
}

// TestClientAbnormalCloseExit: the server closing with 1009 makes
// "wsgate client" exit 5; a 401 handshake exits 3.
func TestClientAbnormalCloseExit(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	c := startClient(t, "--token", g.token, g.ws+"/ws")
	c.send(t, strings.Repeat("x", 70<<10)) // above the default 64 KiB limit
	err := c.wait(t)
	if code := exitCode(err, &bytes.Buffer{}); code != exitAbnormalClose {
		t.Errorf("after close 1009: exit %d (%v), want %d", code, err, exitAbnormalClose)
	}
	if got := c.stderr.String(); !strings.Contains(got, "closed: code 1009") {
		t.Errorf("stderr: got %q, want close 1009", got)
	}
	_, _, err = runCmd(t, "client", g.ws+"/ws")
	if code := exitCode(err, &bytes.Buffer{}); code != exitAuth {
		t.Errorf("client without a token: exit %d (%v), want %d", code, err, exitAuth)
	}
}
