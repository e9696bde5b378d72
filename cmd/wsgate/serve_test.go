package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/leakcheck"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/wire"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 15 * time.Second

// syncBuffer is an output the program writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the output contains s and returns the output.
func (b *syncBuffer) waitFor(t *testing.T, s string) string {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(5 * time.Millisecond) {
		out := b.String()
		if strings.Contains(out, s) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q in output:\n%s", s, out)
		}
	}
}

// gateway is a "wsgate serve" running in-process through run().
type gateway struct {
	base, ws     string // http://127.0.0.1:port, ws://127.0.0.1:port
	token        string // first-run demo token ("" otherwise)
	apiKey       string // first-run API key
	stdout       *syncBuffer
	stderr       *syncBuffer
	cancel       context.CancelFunc
	done         chan error
	stopOnce     sync.Once
	stoppedError error
}

// startServe runs "wsgate serve --addr 127.0.0.1:0 args..." until the
// test ends (or stop), and reads the banner.
func startServe(t *testing.T, args ...string) *gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		g.done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), strings.NewReader(""), g.stdout, g.stderr)
	}()
	t.Cleanup(func() { g.stop(t) })
	deadline := time.After(testTimeout)
	for !strings.Contains(g.stdout.String(), "test page:") {
		select {
		case err := <-g.done:
			g.done <- err
			t.Fatalf("serve exited early: %v\nstderr: %s", err, g.stderr.String())
		case <-deadline:
			t.Fatalf("no banner; stdout: %s", g.stdout.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	g.parseBanner(t)
	return g
}

func (g *gateway) parseBanner(t *testing.T) {
	t.Helper()
	for _, line := range strings.Split(g.stdout.String(), "\n") {
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "wsgate listening on "):
			g.base = fields[len(fields)-1]
			g.ws = "ws://" + strings.TrimPrefix(g.base, "http://")
		case strings.HasPrefix(line, "  demo token"):
			g.token = fields[len(fields)-1]
		case strings.HasPrefix(line, "  API key:"):
			g.apiKey = fields[len(fields)-1]
		}
	}
	if g.base == "" {
		t.Fatalf("no address in banner:\n%s", g.stdout.String())
	}
}

// stop is SIGINT: cancel run's ctx and wait for it; it must return nil.
func (g *gateway) stop(t *testing.T) {
	t.Helper()
	g.stopOnce.Do(func() {
		g.cancel()
		select {
		case g.stoppedError = <-g.done:
		case <-time.After(testTimeout):
			g.stoppedError = errors.New("serve did not stop")
		}
		if g.stoppedError != nil {
			t.Errorf("serve after SIGINT: got %v, want nil (exit 0)", g.stoppedError)
		}
	})
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestServeFirstRun(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	if g.token == "" || g.apiKey == "" {
		t.Fatalf("first-run banner: got token %q, API key %q; want both\n%s", g.token, g.apiKey, g.stdout.String())
	}
	if !strings.Contains(g.stdout.String(), g.base+"/?token="+g.token) {
		t.Errorf("banner: want the page URL with ?token=\n%s", g.stdout.String())
	}
	for path, want := range map[string]string{
		"/": `id="log"`, "/page.js": "sendAction", "/wsgate.js": "class WsgateClient",
		"/wire.js": "export function encodeSimple", "/healthz": "ok", "/readyz": "ok",
	} {
		if code, body := httpGet(t, g.base+path); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: got %d, want 200 with %q", path, code, want)
		}
	}
	if code, _ := httpGet(t, g.base+"/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: got %d, want 404", code)
	}

	_, err := client.Dial(testCtx(t), g.ws+"/ws", client.Options{})
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
		t.Errorf("Dial without token: got %v, want HTTP 401", err)
	}

	pushes := make(chan client.Push, 1)
	states := make(chan client.State, 10)
	c, err := client.Dial(testCtx(t), g.ws+"/ws", client.Options{
		Token:         g.token,
		OnPush:        func(p client.Push) { pushes <- p },
		OnStateChange: func(s client.State, _ error) { states <- s },
	})
	if err != nil {
		t.Fatalf("Dial with the demo token: %v", err)
	}
	defer c.Close()
	checkDemo(t, c)

	out, errOut, err := runCmd(t, "push", "--api", g.base, "--api-key", g.apiKey, "--user", "demo", "--action", "120", "--data", "hello")
	if err != nil || strings.TrimSpace(out) != "delivered 1 seq 1" {
		t.Errorf("push: got %q, %v (stderr %q); want delivered 1 seq 1", out, err, errOut)
	}
	select {
	case p := <-pushes:
		if p.Action != 120 || string(p.Payload) != "hello" {
			t.Errorf("push: got %+v, want action 120 payload hello", p)
		}
	case <-time.After(testTimeout):
		t.Fatal("the pushed message never arrived")
	}

	g.stop(t) // SIGINT: the client is told 1001 and starts reconnecting
	for deadline := time.After(testTimeout); ; {
		select {
		case s := <-states:
			if s == client.StateReconnecting {
				return
			}
		case <-deadline:
			t.Fatal("after SIGINT the client never left state connected")
		}
	}
}

// checkDemo exercises the demo actions over the Go client.
func checkDemo(t *testing.T, c *client.Client) {
	t.Helper()
	ctx := testCtx(t)
	if got, err := c.Request(ctx, actionDemoEcho, []byte("我们都好")); err != nil || string(got) != "我们都好" {
		t.Errorf("action 100: got %q, %v; want the payload back", got, err)
	}
	got, err := c.Request(ctx, actionAddFriend, []byte("bob"))
	if want := `{"user":"demo","added":"bob","friends":["bob"]}`; err != nil || string(got) != want {
		t.Errorf("action 110: got %s, %v; want %s", got, err, want)
	}
	got, err = c.Request(ctx, actionGetInfo, nil)
	if err != nil || !strings.Contains(string(got), `"user":"demo"`) || !strings.Contains(string(got), `"friends":["bob"]`) {
		t.Errorf("action 111: got %s, %v; want the demo user with friend bob", got, err)
	}
	var e *client.Error
	if _, err := c.Request(ctx, actionAddFriend, nil); !errors.As(err, &e) || e.Code != wire.CodeBadRequest {
		t.Errorf("action 110 without payload: got %v, want bad request", err)
	}
}

func TestServeInsecureNoAuth(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t, "--insecure-no-auth", "--no-echo")
	if g.token != "" {
		t.Errorf("banner with --insecure-no-auth: got a demo token, want none")
	}
	if code, _ := httpGet(t, g.base+"/echo"); code != http.StatusNotFound {
		t.Errorf("GET /echo with --no-echo: got %d, want 404", code)
	}
	c, err := client.Dial(testCtx(t), g.ws+"/ws", client.Options{})
	if err != nil {
		t.Fatalf("Dial without a token: %v", err)
	}
	defer c.Close()
	// The help says the demo actions are on when no auth is configured.
	if got, err := c.Request(testCtx(t), actionDemoEcho, []byte("hi")); err != nil || string(got) != "hi" {
		t.Errorf("demo echo with --insecure-no-auth: got %q, %v; want \"hi\"", got, err)
	}
	if !strings.Contains(g.stdout.String(), "demo actions:") {
		t.Errorf("banner with --insecure-no-auth does not list the demo actions:\n%s", g.stdout.String())
	}
	if code, _ := httpGet(t, g.base+"/api/v1/stats"); code != http.StatusNotFound {
		t.Errorf("API without --api-key: got %d, want 404", code)
	}
}

func TestServeInsecureNoAuthNoDemo(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t, "--insecure-no-auth", "--demo=false")
	c, err := client.Dial(testCtx(t), g.ws+"/ws", client.Options{})
	if err != nil {
		t.Fatalf("Dial without a token: %v", err)
	}
	defer c.Close()
	var e *client.Error
	if _, err := c.Request(testCtx(t), actionAddFriend, []byte("bob")); !errors.As(err, &e) || e.Code != wire.CodeUnknownAction {
		t.Errorf("action 110 with --demo=false: got %v, want unknown action", err)
	}
}

func TestServeConfiguredAuth(t *testing.T) {
	leakcheck.Check(t)
	const secret = "a-secret-of-enough-length"
	t.Setenv("WSGATE_API_KEY", "key-from-env")
	g := startServe(t, "--jwt-secret", secret, "--demo")
	if g.token != "" || strings.Contains(g.stdout.String(), secret) {
		t.Errorf("banner with a configured secret: want no demo token and no secret\n%s", g.stdout.String())
	}
	tok, _, err := runCmd(t, "token", "--secret", secret, "--user", "alice")
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	c, err := client.Dial(testCtx(t), g.ws+"/ws", client.Options{Token: strings.TrimSpace(tok)})
	if err != nil {
		t.Fatalf("Dial with a minted token: %v", err)
	}
	defer c.Close()
	if got := c.Hello().UserID; got != "alice" {
		t.Errorf("user: got %q, want alice", got)
	}
	out, _, err := runCmd(t, "push", "--api", g.base, "--api-key", "key-from-env", "--all", "--action", "120", "--json", `{"n":1}`)
	if err != nil || strings.TrimSpace(out) != "delivered 1" {
		t.Errorf("push with the env API key: got %q, %v; want delivered 1", out, err)
	}
	if _, err := client.Dial(testCtx(t), g.ws+"/ws", client.Options{Token: "not-a-jwt"}); err == nil {
		t.Error("Dial with a bad token: got nil error, want 401")
	}
}

func TestServeFlagErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(testCtx(t), []string{"serve", "--help"}, strings.NewReader(""), &out, &errOut)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "WSGATE_ADDR") {
		t.Errorf("serve --help: got %v and %q, want flag.ErrHelp and the settings", err, errOut.String())
	}
	if got := exitCode(err, &errOut); got != 0 {
		t.Errorf("exit code after --help: got %d, want 0", got)
	}
	err = run(testCtx(t), []string{"serve", "--max-conns", "lots"}, strings.NewReader(""), &out, &errOut)
	if !errors.Is(err, errUsage) || exitCode(err, &errOut) != 2 {
		t.Errorf("serve --max-conns lots: got %v, want a usage error (exit 2)", err)
	}
	err = run(testCtx(t), []string{"serve", "--addr", "256.0.0.1:1"}, strings.NewReader(""), &out, &errOut)
	if err == nil || exitCode(err, io.Discard) != 1 {
		t.Errorf("serve on a bad address: got %v, want an error (exit 1)", err)
	}
	if err := run(testCtx(t), []string{"frobnicate"}, strings.NewReader(""), &out, &errOut); !errors.Is(err, errUsage) {
		t.Errorf("unknown command: got %v, want a usage error", err)
	}
}

func TestDemoLimits(t *testing.T) {
	d := &demo{friends: map[string][]string{}}
	cases := []struct {
		payload string
		code    wire.ErrorCode
	}{
		{"", wire.CodeBadRequest},
		{strings.Repeat("x", maxFriendID+1), wire.CodeBadRequest},
		{"\xff", wire.CodeBadRequest},
	}
	for _, tc := range cases {
		_, err := d.addFriend(testCtx(t), demoRequest("u", tc.payload))
		var e *wire.Error
		if !errors.As(err, &e) || e.Code != tc.code {
			t.Errorf("addFriend(%q): got %v, want code %d", tc.payload, err, tc.code)
		}
	}
	for i := range maxFriends {
		if _, err := d.addFriend(testCtx(t), demoRequest("u", fmt.Sprintf("friend-%d", i))); err != nil {
			t.Fatalf("friend %d: %v", i, err)
		}
	}
	var e *wire.Error
	if _, err := d.addFriend(testCtx(t), demoRequest("u", "one-too-many")); !errors.As(err, &e) || e.Code != wire.CodeLimitExceeded {
		t.Errorf("friend beyond the limit: got %v, want limit exceeded", err)
	}
	if _, err := d.addFriend(testCtx(t), demoRequest("u", "friend-0")); err != nil {
		t.Errorf("re-adding a known friend at the limit: got %v, want nil", err)
	}
}

func demoRequest(user, payload string) *wsgate.Request {
	return &wsgate.Request{Conn: wsgate.ConnInfo{UserID: user}, Action: actionAddFriend, Payload: []byte(payload)}
}

// TestServeRedisUnreachable: with --redis the gateway starts even when
// Redis is down, serves connections, and the push API answers 503.
func TestServeRedisUnreachable(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t, "--insecure-no-auth", "--api-key", "k", "--redis", "redis://127.0.0.1:1/0")
	c, err := client.Dial(testCtx(t), g.ws+"/ws", client.Options{})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if _, err := c.Request(testCtx(t), wire.ActionPing, []byte("x")); err != nil {
		t.Errorf("ping with Redis down: %v", err)
	}
	req, _ := http.NewRequest("POST", g.base+"/api/v1/push", strings.NewReader(`{"to":{"all":true},"action":120}`))
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "broker is unavailable") {
		t.Errorf("push with Redis down: got %d %s, want 503", resp.StatusCode, body)
	}
}

// TestServeAPIRoutes: the API is reached straight from the page handler
// (apiFirst) and answers what the page mux routed to it before: its
// endpoints, its JSON 404, the mux's redirect of "/api", and a path whose
// escapes put it outside /api/ stays outside the API.
func TestServeAPIRoutes(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, body string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(testCtx(t), method, g.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+g.apiKey)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	push := `{"to":{"all":true},"action":120,"json":1}`
	if code, _, body := do("POST", "/api/v1/push", push); code != http.StatusOK || !strings.Contains(body, `"delivered":0`) {
		t.Errorf("POST /api/v1/push: got %d %q, want 200 delivered 0", code, body)
	}
	if code, _, body := do("GET", "/api/v1/stats", ""); code != http.StatusOK || !strings.Contains(body, `"conns"`) {
		t.Errorf("GET /api/v1/stats: got %d %q, want 200 with the stats", code, body)
	}
	if code, _, body := do("GET", "/api/v1/nope", ""); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("GET /api/v1/nope: got %d %q, want the API's JSON 404", code, body)
	}
	if code, h, _ := do("GET", "/api", ""); code/100 != 3 || h.Get("Location") != "/api/" {
		t.Errorf("GET /api: got %d Location %q, want a redirect to /api/", code, h.Get("Location"))
	}
	if code, _, body := do("POST", "/api%2Fv1/push", push); code == http.StatusOK && strings.Contains(body, "delivered") {
		t.Errorf("POST /api%%2Fv1/push: got %d %q, want no push (the path is not under /api/)", code, body)
	}
}
