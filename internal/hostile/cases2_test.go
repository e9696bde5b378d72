//go:build linux

package hostile

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/wire"
)

// signed returns an HS256 token with claims, signed with the suite's secret.
func signed(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fdLimit: under an open-files limit of 256 and --max-conns far beyond it,
// 400 clients try to connect. None may get 101 and then 1011; an existing
// client keeps getting pushes, and the gateway serves again by itself
// once descriptors are free.
func fdLimit(t *testing.T, g *gateway) string {
	pre := make(chan client.Push, 4)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	c, err := client.Dial(ctx, g.ws("/ws"), client.Options{Token: token(t, "pre"), DisableReconnect: true,
		OnPush: func(p client.Push) { pre <- p }})
	if err != nil {
		t.Fatalf("existing client: %v", err)
	}
	defer c.Close()

	var ans tally
	var mu sync.Mutex
	var open []*rawConn
	fanOut(400, func(i int) {
		rc, st, _, err := g.upgradeSpread("/ws", authz(t, fmt.Sprint("u", i)))
		switch {
		case err != nil:
			ans.add("closed before the 101")
		case st != http.StatusSwitchingProtocols:
			ans.add(fmt.Sprintf("HTTP %d", st))
		default:
			// A refused start would show within a moment as a close frame.
			if r := rc.readClose(time.Second); r.code != 0 {
				ans.add(fmt.Sprintf("101 then %d", r.code))
				_ = rc.Close() // done with it
				return
			}
			ans.add("101, open")
			mu.Lock()
			open = append(open, rc)
			mu.Unlock()
		}
	})
	for k := range ans.m {
		if strings.HasPrefix(k, "101 then") {
			t.Errorf("got %s, want no client closed right after its 101", &ans)
		}
	}
	if ans.get("101, open") == 400 {
		t.Errorf("got %s, want the descriptor limit to refuse some", &ans)
	}
	// At the limit: the API may be refused too. Free half the descriptors.
	for _, rc := range open[:len(open)/2] {
		_ = rc.Close() // the gateway sees EOF and frees the descriptor
	}
	defer func() {
		for _, rc := range open[len(open)/2:] {
			_ = rc.Close() // end of the case
		}
	}()
	var delivered bool
	deadline := time.Now().Add(20 * time.Second)
	for !delivered && time.Now().Before(deadline) {
		if st, err := g.push(ctx, "pre", "still here"); err == nil && st < 300 {
			select {
			case <-pre:
				delivered = true
			case <-time.After(time.Second):
			}
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !delivered {
		t.Errorf("the client connected before the flood got no push after it")
	}
	logs := g.logs.String()
	refusals := strings.Count(logs, "refusing new connections")
	if refusals > 3 { // once per 10 s, and the case takes a few
		t.Errorf("%d refusal lines in the log, want one per 10 s", refusals)
	}
	if strings.Contains(logs, "Accept error") {
		t.Errorf("net/http's unstructured accept errors in the log:\n%s", tail(logs))
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON (--log-format json): %q", line)
			break
		}
	}
	if !strings.Contains(logs, "cannot be met") {
		t.Errorf("no warning that --max-conns cannot be met under the open-files limit")
	}
	return fmt.Sprintf("%s; existing client got a push: %v; %d refusal log lines", &ans, delivered, refusals)
}

// fdLimitDefault: the same flood with --max-conns derived from the limit:
// the gateway refuses with 503 before it runs out of descriptors.
func fdLimitDefault(t *testing.T, g *gateway) string {
	var ans tally
	var mu sync.Mutex
	var open []*rawConn
	fanOut(400, func(i int) {
		rc, st, body, err := g.upgradeSpread("/ws", authz(t, fmt.Sprint("u", i)))
		switch {
		case err != nil:
			ans.add("closed before the 101")
		case st != http.StatusSwitchingProtocols:
			ans.add(fmt.Sprintf("HTTP %d %s", st, body))
		default:
			if r := rc.readClose(time.Second); r.code != 0 {
				ans.add(fmt.Sprintf("101 then %d", r.code))
				_ = rc.Close() // done with it
				return
			}
			ans.add("101, open")
			mu.Lock()
			open = append(open, rc)
			mu.Unlock()
		}
	})
	for _, rc := range open {
		_ = rc.Close() // end of the case
	}
	if ans.get("HTTP 503 wsgate: too many connections") == 0 || ans.get("101, open") == 0 {
		t.Errorf("got %s, want 101 up to the derived --max-conns, then 503 'too many connections'", &ans)
	}
	for k := range ans.m {
		if strings.HasPrefix(k, "101 then") {
			t.Errorf("got %s, want no client closed right after its 101", &ans)
		}
	}
	return ans.String()
}

// badTokens: every kind of bad token gets 401 with its reason.
func badTokens(t *testing.T, g *gateway) string {
	exp := time.Now().Add(time.Hour).Unix()
	good := map[string]any{"sub": "u", "exp": exp, "iss": "iss-ok", "aud": "aud-ok"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(good)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, header, want string }{
		{"none", "", "missing token"},
		{"no exp", "Bearer " + signed(t, with("exp", nil)), "no exp claim"},
		{"expired", "Bearer " + signed(t, with("exp", time.Now().Add(-time.Hour).Unix())), "expired"},
		{"alg none", "Bearer " + none, "token"},
		{"wrong iss", "Bearer " + signed(t, with("iss", "other")), "iss"},
		{"wrong aud", "Bearer " + signed(t, with("aud", "other")), "aud"},
		{"2,000-byte sub", "Bearer " + signed(t, with("sub", strings.Repeat("s", 2000))), "sub claim is 2000 bytes"},
		{"1,000 topics", "Bearer " + signed(t, with("topics", make([]string, 1000))), "1000 entries"},
	}
	var got []string
	for _, tt := range tests {
		var extra []string
		if tt.header != "" {
			extra = append(extra, "Authorization: "+tt.header)
		}
		_, st, body, err := upgrade(g.addr, "/ws", extra...)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if st != http.StatusUnauthorized || !strings.Contains(body, tt.want) {
			t.Errorf("%s: got HTTP %d %q, want 401 mentioning %q", tt.name, st, body, tt.want)
		}
		got = append(got, fmt.Sprintf("%s: %d", tt.name, st))
	}
	if n := g.stats(t).Handshakes.Unauthorized; n < uint64(len(tests)) {
		t.Errorf("Stats.Handshakes.Unauthorized: got %d, want at least %d", n, len(tests))
	}
	if !strings.Contains(g.logs.String(), `"status":401`) {
		t.Errorf("no 401 in the log")
	}
	return strings.Join(got, ", ")
}

// badOrigins: cross-origin browsers get 403, even with a token cookie.
func badOrigins(t *testing.T, g *gateway) string {
	cookie := "Cookie: wsgate_token=" + token(t, "victim")
	tests := []struct {
		name  string
		extra []string
	}{
		{"null", []string{"Origin: null", authz(t, "u")}},
		{"other port", []string{"Origin: http://127.0.0.1:1", authz(t, "u")}},
		{"foreign with cookie", []string{"Origin: https://evil.example", cookie}},
	}
	var got []string
	for _, tt := range tests {
		_, st, body, err := upgrade(g.addr, "/ws", tt.extra...)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if st != http.StatusForbidden {
			t.Errorf("%s: got HTTP %d %q, want 403", tt.name, st, body)
		}
		got = append(got, fmt.Sprintf("%s: %d", tt.name, st))
	}
	if n := g.stats(t).Handshakes.Forbidden; n != uint64(len(tests)) {
		t.Errorf("Stats.Handshakes.Forbidden: got %d, want %d", n, len(tests))
	}
	return strings.Join(got, ", ")
}

// invalidFrames: twelve kinds of broken frames, each on its own
// connection, each closed with the code RFC 6455 gives it.
func invalidFrames(t *testing.T, g *gateway) string {
	bigLen := func(n uint64) []byte { return header(0x80|opBinary, n, 8) }
	tests := []struct {
		name  string
		bytes []byte
		want  int
	}{
		{"unmasked", []byte{0x80 | opBinary, 0x01, 'x'}, 1002},
		{"RSV1 without extension", frame(0x80|0x40|opBinary, []byte("x")), 1002},
		{"reserved opcode", frame(0x80|0x3, []byte("x")), 1002},
		{"fragmented ping", frame(opPing, []byte("x")), 1002},
		{"ping over 125 bytes", frame(0x80|opPing, make([]byte, 126)), 1002},
		{"continuation first", frame(0x80|opCont, []byte("x")), 1002},
		{"new message mid-fragment", append(frame(opBinary, []byte("x")), frame(0x80|opBinary, []byte("y"))...), 1002},
		{"invalid UTF-8 text", frame(0x80|opText, []byte{0xff, 0xfe}), 1007},
		{"2 GiB length", bigLen(2 << 30), 1009},
		{"2^63 length", bigLen(1 << 63), 1002},
		{"close with 1 byte", frame(0x80|opClose, []byte{3}), 1002},
		{"close code 999", frame(0x80|opClose, []byte{0x03, 0xe7}), 1002},
	}
	var ans tally
	for _, tt := range tests {
		c, st, body, err := upgrade(g.addr, "/ws", authz(t, "frames"))
		if err != nil || st != http.StatusSwitchingProtocols {
			t.Fatalf("%s: upgrade: HTTP %d %q %v", tt.name, st, body, err)
		}
		if _, err := c.Write(tt.bytes); err != nil {
			t.Errorf("%s: write: %v", tt.name, err)
		}
		r := c.readClose(10 * time.Second)
		_ = c.Close() // done
		if r.code != tt.want {
			t.Errorf("%s: got %s, want close %d", tt.name, r, tt.want)
		}
		ans.add(fmt.Sprint("close ", r.code))
	}
	return ans.String()
}

// simple returns a simple-form message frame: action and payload.
func simple(a wire.Action, payload []byte) []byte {
	return frame(0x80|opBinary, wire.AppendSimple(nil, a, payload))
}

// messageFlood: one client sends a million messages at once.
func messageFlood(t *testing.T, g *gateway) string {
	c, st, body, err := upgrade(g.addr, "/ws", authz(t, "flood"))
	if err != nil || st != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: HTTP %d %q %v", st, body, err)
	}
	defer c.Close()
	one := simple(wire.ActionPing, nil)
	buf := bytes.Repeat(one, 1000)
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second)) // ends the flood at the latest
		for range 1000 {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	r := c.readClose(30 * time.Second)
	if r.code != int(wire.CloseRateLimited) {
		t.Errorf("got %s, want close %d", r, wire.CloseRateLimited)
	}
	return r.String()
}

// subscribeFlood: one client subscribes to 100,000 topics at once.
func subscribeFlood(t *testing.T, g *gateway) string {
	c, st, body, err := upgrade(g.addr, "/ws", authz(t, "subs"))
	if err != nil || st != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: HTTP %d %q %v", st, body, err)
	}
	defer c.Close()
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second)) // ends the flood at the latest
		var buf []byte
		for i := range 100000 {
			buf = append(buf, simple(wire.ActionSubscribe, []byte(fmt.Sprintf("topic.%d", i)))...)
			if len(buf) > 64<<10 {
				if _, err := c.Write(buf); err != nil {
					return
				}
				buf = buf[:0]
			}
		}
		_, _ = c.Write(buf) // the last ones
	}()
	r := c.readClose(30 * time.Second)
	if r.code != int(wire.CloseRateLimited) {
		t.Errorf("got %s, want close %d", r, wire.CloseRateLimited)
	}
	return r.String()
}

// apiBodies: a 100 MiB push body, malformed JSON, and no key.
func apiBodies(t *testing.T, g *gateway) string {
	post := func(body io.Reader, key bool) string {
		req, err := http.NewRequest(http.MethodPost, g.url("/api/v1/push"), body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if key {
			req.Header.Set("Authorization", "Bearer "+apiKey)
		}
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := hc.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		var e struct{ Error string }
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<10)).Decode(&e) // the reason, if any
		_ = resp.Body.Close()
		return fmt.Sprintf("%d %q", resp.StatusCode, e.Error)
	}
	big := func() io.Reader {
		return io.MultiReader(strings.NewReader(`{"to":{"user":"x"},"action":120,"data":"`),
			io.LimitReader(letters{}, 100*mib), strings.NewReader(`"}`))
	}
	got := []string{
		"100 MiB with key: " + post(big(), true),
		"100 MiB without key: " + post(big(), false),
		"malformed JSON: " + post(strings.NewReader(`{"to":{"user":`), true),
	}
	want := []string{`: 400 "wsgate: payload larger than`, ": 401", `: 400 "wsgate: bad JSON body`}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("got %s, want %s", got[i], w)
		}
	}
	return strings.Join(got, ", ")
}

// letters reads as an endless run of base64 'A's.
type letters struct{}

func (letters) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	return len(p), nil
}

// spoofedXFF: 60 handshakes from one address, each claiming another
// client in X-Forwarded-For and X-Real-IP, which the gateway must not
// believe (no trusted proxies): the handshake rate (20/s, burst 40)
// applies to the real address.
func spoofedXFF(t *testing.T, g *gateway) string {
	var ans tally
	for i := range 60 {
		ip := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
		c, st, _, err := upgrade(g.addr, "/ws", authz(t, "x"), "X-Forwarded-For: "+ip, "X-Real-IP: "+ip)
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		if c != nil {
			_ = c.Close() // only the status counts
		}
		ans.add(fmt.Sprint("HTTP ", st))
	}
	if ans.get("HTTP 429") == 0 {
		t.Errorf("got %s, want 429 once the burst is spent", &ans)
	}
	if !strings.Contains(g.logs.String(), "handshake rate exceeded") {
		t.Errorf("no rate-limit rejection in the log")
	}
	time.Sleep(time.Second) // the health probe after the case needs a token back
	return ans.String()
}

// slowConsumer: a client that never reads, pushed to through the API until
// its send queue overflows.
func slowConsumer(t *testing.T, g *gateway) string {
	c, st, body, err := upgrade(g.addr, "/ws", authz(t, "sloth"))
	if err != nil || st != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: HTTP %d %q %v", st, body, err)
	}
	defer c.Close()
	payload := strings.Repeat("p", 60<<10)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	pushed := 0
	for range 600 { // 36 MB: past the kernel's buffers and the 1 MiB queue
		st, err := g.push(ctx, "sloth", payload)
		if err != nil || st >= 300 {
			break
		}
		pushed++
		if g.stats(t).SlowConsumers > 0 {
			break
		}
	}
	r := c.readClose(30 * time.Second)
	if r.code != int(wire.CloseSlowConsumer) {
		t.Errorf("got %s after %d pushes, want close %d", r, pushed, wire.CloseSlowConsumer)
	}
	return fmt.Sprintf("%s after %d pushes of 60 KiB", r, pushed)
}

// garbageHTTP: random bytes, and requests cut off in the middle.
func garbageHTTP(t *testing.T, g *gateway) string {
	var ans tally
	fanOut(200, func(i int) {
		c, err := g.dialTCPErr()
		if err != nil {
			ans.add("dial: " + err.Error())
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // a hang shows as a timeout
		if i%2 == 0 {
			junk := make([]byte, 4096)
			_, _ = rand.Read(junk)
			junk = append(junk, "\r\n\r\n"...)
			_, _ = c.Write(junk)
		} else {
			_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgr")
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite() // cut off: the request never ends
			}
		}
		b, err := io.ReadAll(c)
		switch {
		case len(b) > 0:
			ans.add(strings.SplitN(string(b), "\r\n", 2)[0])
		case err != nil && !isReset(err):
			ans.add("still open")
		default:
			ans.add("closed")
		}
	})
	if ans.get("still open") > 0 {
		t.Errorf("got %s, want every connection answered or closed", &ans)
	}
	return ans.String()
}

// drain: SIGTERM with 5,000 clients connected: every one gets 1001 and the
// gateway exits with status 0.
func drain(t *testing.T, g *gateway) string {
	const n = 5000
	conns := make([]*rawConn, n)
	var ans tally
	fanOut(50, func(w int) {
		for i := w; i < n; i += 50 {
			c, st, body, err := g.upgradeSpread("/ws", authz(t, fmt.Sprint("d", i)))
			if err != nil || st != http.StatusSwitchingProtocols {
				ans.add(fmt.Sprintf("HTTP %d %s %v", st, body, err))
				continue
			}
			conns[i] = c
		}
	})
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	fanOut(50, func(w int) {
		for i := w; i < n; i += 50 {
			if c := conns[i]; c != nil {
				ans.add(c.readClose(30 * time.Second).String())
				_ = c.Close() // done
			}
		}
	})
	select {
	case <-g.done:
	case <-time.After(limit):
		t.Errorf("gateway still running %v after SIGTERM", limit)
	}
	if got := ans.get(`close 1001 "server shutting down"`); got != n {
		t.Errorf("got %s, want close 1001 for all %d", &ans, n)
	}
	return ans.String()
}
