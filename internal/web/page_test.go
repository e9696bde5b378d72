package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/testbin"
	"github.com/wsgate/wsgate/internal/web"
	"github.com/wsgate/wsgate/wire"
)

const chromiumPath = "/usr/bin/chromium"

// startGateway serves the page and /ws the way "wsgate serve" does: JWT
// auth (token in the query string for browsers) and a handler for action
// 110 that replies "added <payload>". It returns the page URL with a token
// and an expired token.
func startGateway(t *testing.T) (string, string) {
	t.Helper()
	secret := []byte("page-test-secret-0123456789")
	v, err := auth.NewVerifier(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewaytest.Start(t, wsgate.Config{
		Page:         web.Handler(),
		Authenticate: v.Authenticate,
	}, func(srv *wsgate.Server) {
		if err := srv.Handle(110, func(_ context.Context, req *wsgate.Request) ([]byte, error) {
			return append([]byte("added "), req.Payload...), nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	tok, err := auth.Issue(secret, "page-tester", time.Hour, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, err := auth.Issue(secret, "page-tester", -time.Minute, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return gw.URL + "/?token=" + tok, expired
}

// epochHello reports whether the gateway sends the hello with an epoch
// (protocol-epoch, issue 8), the only one the page's wsgate.js decodes.
func epochHello() bool {
	_, ok := reflect.TypeOf(wire.Frame{}).FieldByName("Epoch")
	return ok
}

// nodeModules finds interop/node_modules (helper "ci" installs
// playwright-core there) or stops the test the way every browser test does.
func nodeModules(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "interop", "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "playwright-core", "package.json")); err != nil {
		testbin.Missing(t, "web page test: playwright-core not installed in %s", dir)
	}
	return dir
}

// TestPageInChromium loads the test page in headless Chromium and drives it
// through page_test.mjs: connect in each protocol form and with
// WsgateClient, send an action 110 frame and a text request, see the
// replies in #log, disconnect with 1000; then see an expired token's close
// reason on the page. With SCREENSHOT=path set, that last step saves the
// screenshot docs/ shows (docs/test-page-expired-token.png).
func TestPageInChromium(t *testing.T) {
	node := testbin.Require(t, "node")
	if _, err := os.Stat(chromiumPath); err != nil {
		testbin.Missing(t, "web page test: Debian chromium not found at %s", chromiumPath)
	}
	modules := nodeModules(t)
	url, expired := startGateway(t)
	args := []string{"page_test.mjs", url, expired}
	wantSteps := 16 // load, 4 per form, client, expired token, no page errors
	if !epochHello() {
		t.Log("SKIPPING the full-form and WsgateClient steps: the gateway does not send the epoch hello yet (protocol-epoch, issue 8)")
		args, wantSteps = append(args, "simple-only"), 7
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "CHROMIUM_PATH="+chromiumPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	steps := parseSteps(t, out)
	for _, s := range steps {
		if !s.OK {
			t.Errorf("step %q failed: %s", s.Step, s.Error)
		}
	}
	if len(steps) != wantSteps {
		t.Errorf("got %d steps, want %d\nstdout:\n%s", len(steps), wantSteps, out)
	}
	if err != nil {
		t.Errorf("page_test.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
}

type stepResult struct {
	Step  string `json:"step"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

func parseSteps(t *testing.T, out []byte) []stepResult {
	t.Helper()
	var steps []stepResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `"step"`) {
			continue
		}
		var s stepResult
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Errorf("bad output line %q: %v", line, err)
			continue
		}
		steps = append(steps, s)
	}
	return steps
}
