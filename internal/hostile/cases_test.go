//go:build linux

package hostile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// noRate lifts the per-IP handshake rate for cases that open many
// connections from 127.0.0.1 to test something else.
var noRate = []string{"--handshake-rate", "-1"}

func cases() []hcase {
	return []hcase{
		{name: "echo 16 MiB ×40, never reading", args: noRate, bound: 100 * mb1, run: echoHuge},
		{name: "echo 60 KiB flood ×60, never reading", args: noRate, bound: 100 * mb1, run: echoFlood},
		{name: "headers 1 MiB ×1000", bound: 100 * mb1, run: hugeHeaders},
		{name: "fd limit: 400 handshakes", nofile: 256, args: append([]string{"--max-conns", "100000"}, noRate...), bound: 100 * mb1, run: fdLimit},
		{name: "fd limit, default --max-conns", nofile: 256, args: noRate, bound: 100 * mb1, run: fdLimitDefault},
		{name: "token: 70,000-byte sub, 1 MiB headers allowed", args: []string{"--max-header-bytes", "1MiB"}, bound: 100 * mb1, run: tokenHugeSub},
		{name: "token: 70,000-byte sub, defaults", bound: 100 * mb1, run: tokenHugeSubDefault},
		{name: "token: none, no exp, expired, alg none, wrong iss/aud", args: []string{"--jwt-issuer", "iss-ok", "--jwt-audience", "aud-ok"}, bound: 100 * mb1, run: badTokens},
		{name: "origin: null, other port, foreign with cookie", bound: 100 * mb1, run: badOrigins},
		{name: "invalid frames ×12", bound: 100 * mb1, run: invalidFrames},
		{name: "10^6-message flood", bound: 100 * mb1, run: messageFlood},
		{name: "subscribe flood", bound: 100 * mb1, run: subscribeFlood},
		{name: "API: 100 MiB body, malformed JSON, no key", bound: 150 * mb1, run: apiBodies},
		{name: "spoofed X-Forwarded-For ×60", args: []string{"--handshake-rate", "20"}, bound: 100 * mb1, run: spoofedXFF},
		{name: "handshake flood from one address, unlimited rate", args: noRate, bound: 100 * mb1, run: floodUnlimited},
		{name: "handshake flood from one address, default rate", bound: 100 * mb1, run: floodDefault},
		{name: "slow consumer", bound: 100 * mb1, run: slowConsumer},
		{name: "pending connections ×200 from one address", args: []string{"--read-header-timeout", "60s"}, bound: 100 * mb1, run: pendingOneAddress},
		{name: "one token, 1,500 connections", args: noRate, bound: 100 * mb1, run: oneTokenMany},
		{name: "garbage and truncated HTTP ×200", bound: 100 * mb1, run: garbageHTTP},
		{name: "SIGTERM with 5,000 clients", args: noRate, bound: 300 * mb1, exits: true, run: drain},

		{name: "idle keep-alive ×1000", parallel: true, bound: 100 * mb1, run: idleKeepAlive},
		{name: "slowloris ×200", parallel: true, bound: 100 * mb1, run: slowloris},
		{name: "slow bodies ×100 (API, with and without key)", parallel: true, bound: 100 * mb1, run: slowBodies},
		{name: "pending connections ×1100", parallel: true, bound: 100 * mb1, run: pendingFlood},
	}
}

func authz(t *testing.T, user string) string { return "Authorization: Bearer " + token(t, user) }

// echoHuge: 40 clients each start a 16 MiB message on /echo and never read.
func echoHuge(t *testing.T, g *gateway) string {
	var ans tally
	fanOut(40, func(int) {
		c, st, body, err := upgrade(g.addr, "/echo")
		if err != nil || st != http.StatusSwitchingProtocols {
			ans.add(fmt.Sprintf("HTTP %d %s %v", st, body, err))
			return
		}
		defer c.Close()
		go func() { // the attacker streams; the answer comes while it does
			_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second)) // shows as a write error
			if _, err := c.Write(header(0x80|opBinary, 16*mib, 8)); err != nil {
				return
			}
			chunk := make([]byte, 64<<10)
			for range 16 * mib / len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
		ans.add(c.readClose(20 * time.Second).String())
	})
	if n := ans.get(`close 1009 "message larger than 65536 bytes"`); n != 40 {
		t.Errorf("got %s, want close 1009 for all 40", &ans)
	}
	return ans.String()
}

// echoFlood: 60 clients (more than EchoMemory admits) send 60 KiB echo
// messages as fast as they can and never read the echoes.
func echoFlood(t *testing.T, g *gateway) string {
	var ans tally
	fanOut(60, func(int) {
		c, st, _, err := upgrade(g.addr, "/echo")
		if err != nil || st != http.StatusSwitchingProtocols {
			ans.add(fmt.Sprintf("HTTP %d", st))
			return
		}
		defer c.Close()
		msg := frame(0x80|opBinary, make([]byte, 60<<10))
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second)) // backpressure ends the flood
		for range 200 {
			if _, err := c.Write(msg); err != nil {
				break
			}
		}
		// The gateway closes a client whose echoes overflow its send queue
		// with 4000; one that stopped sending before that just holds its
		// bounded queue (what RSS shows).
		r := c.readClose(5 * time.Second)
		if r.code == 0 {
			if ne, ok := r.err.(net.Error); ok && ne.Timeout() {
				ans.add("held, no overflow")
				return
			}
		}
		ans.add(r.String())
	})
	if got := ans.get("HTTP 503"); got < 1 {
		t.Errorf("got %s, want some 503 beyond EchoMemory", &ans)
	}
	if got := ans.get(`close 4000 "slow consumer"`) + ans.get("held, no overflow"); got+ans.get("HTTP 503") != 60 {
		t.Errorf("got %s, want every admitted client closed with 4000 or held", &ans)
	}
	return ans.String()
}

// hugeHeaders: 1,000 clients each send a 1 MiB header. The value goes
// out with sendfile from a file: the attacker shares the two cores with
// the gateway (an outside attacker would not), and copying 1 GB through
// its own memory would take from the gateway's share. Same connections,
// same bytes.
func hugeHeaders(t *testing.T, g *gateway) string {
	value := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(value, bytes.Repeat([]byte("a"), mib), 0o600); err != nil {
		t.Fatal(err)
	}
	var ans tally
	fanOut(1000, func(int) {
		f, err := os.Open(value)
		if err != nil {
			ans.add("open: " + err.Error())
			return
		}
		defer f.Close()
		c, err := g.dialTCPErr()
		if err != nil {
			ans.add("dial: " + err.Error())
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // a hang shows as a timeout
		status := make(chan string, 1)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				status <- "closed without an answer"
				return
			}
			_ = resp.Body.Close() // the status is the answer
			status <- fmt.Sprintf("HTTP %d", resp.StatusCode)
		}()
		_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: ")
		if _, err := io.Copy(c, f); err == nil { // sendfile: *net.TCPConn from *os.File
			_, _ = io.WriteString(c, "\r\n\r\n")
		}
		ans.add(<-status)
	})
	if got := ans.get("HTTP 431"); got+ans.get("closed without an answer") != 1000 || got == 0 {
		t.Errorf("got %s, want HTTP 431 (or a reset racing it) for all", &ans)
	}
	// A client that saw a reset instead may have been answered 431 too.
	if n := g.stats(t).HTTPRejected.HeadersTooLarge; n < uint64(ans.get("HTTP 431")) || n > 1000 {
		t.Errorf("Stats.HTTPRejected.HeadersTooLarge: got %d, want one per 431 seen (%d) and at most 1000", n, ans.get("HTTP 431"))
	}
	if !strings.Contains(g.logs.String(), `"status":431,"reason":"request headers larger than the max-header-bytes bound","client":"127.0.1.`) {
		t.Errorf("no log line for the 431s:\n%s", tail(g.logs.String()))
	}
	return ans.String()
}

// idleKeepAlive: 1,000 clients make one request each and keep the
// connection open without another.
func idleKeepAlive(t *testing.T, g *gateway) string {
	const timeout = 30 * time.Second // --http-idle-timeout's default
	var ans tally
	var lo durationRange
	fanOut(1000, func(int) {
		c, err := g.dialTCPErr()
		if err != nil {
			ans.add("dial: " + err.Error())
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout + 15*time.Second)) // a connection kept too long shows as a timeout
		br := bufio.NewReader(c)
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			ans.add("no answer")
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body) // the status is the answer
		_ = resp.Body.Close()
		t0 := time.Now()
		_, err = br.ReadByte()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			ans.add("still open")
			return
		}
		lo.add(time.Since(t0))
		ans.add(fmt.Sprintf("HTTP %d, then closed", resp.StatusCode))
	})
	if got := ans.get("HTTP 200, then closed"); got != 1000 {
		t.Errorf("got %s, want all closed", &ans)
	}
	if lo.max > timeout+5*time.Second {
		t.Errorf("closed after up to %v, want within --http-idle-timeout (%v) and a few seconds", lo.max, timeout)
	}
	if n := g.stats(t).HTTPRejected.IdleClosed; n != uint64(ans.get("HTTP 200, then closed")) {
		t.Errorf("Stats.HTTPRejected.IdleClosed: got %d, want %d", n, ans.get("HTTP 200, then closed"))
	}
	return fmt.Sprintf("%s after %v–%v", &ans, lo.min.Round(100*time.Millisecond), lo.max.Round(100*time.Millisecond))
}

// durationRange records the smallest and largest of some durations.
type durationRange struct {
	mu       sync.Mutex
	min, max time.Duration
	n        int
}

func (r *durationRange) add(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 || d < r.min {
		r.min = d
	}
	r.max = max(r.max, d)
	r.n++
}

// slowloris: 200 clients send their headers one byte a second.
func slowloris(t *testing.T, g *gateway) string {
	const timeout = 10 * time.Second // --read-header-timeout's default
	var ans tally
	var took durationRange
	fanOut(200, func(int) {
		c, err := g.dialTCPErr()
		if err != nil {
			ans.add("dial: " + err.Error())
			return
		}
		defer c.Close()
		t0 := time.Now()
		_ = c.SetDeadline(t0.Add(timeout + 20*time.Second)) // kept too long shows as a timeout
		closed := make(chan string, 1)
		go func() {
			b, err := io.ReadAll(c)
			switch {
			case len(b) > 0:
				closed <- strings.SplitN(string(b), "\r\n", 2)[0]
			case err != nil && !isReset(err):
				closed <- "still open"
			default:
				closed <- "closed"
			}
		}()
		req := "GET /ws HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 60)
		for i := range len(req) {
			if _, err := io.WriteString(c, req[i:i+1]); err != nil {
				break
			}
			select {
			case what := <-closed:
				took.add(time.Since(t0))
				ans.add(what)
				return
			case <-time.After(time.Second):
			}
		}
		what := <-closed
		took.add(time.Since(t0))
		ans.add(what)
	})
	if ans.get("HTTP/1.1 400 Bad Request") != 200 {
		t.Errorf("got %s, want every slow client closed", &ans)
	}
	if took.max > timeout+3*time.Second {
		t.Errorf("closed after up to %v, want within --read-header-timeout (%v) and a little", took.max, timeout)
	}
	if n := g.stats(t).HTTPRejected.HeaderTimeout; n != 200 {
		t.Errorf("Stats.HTTPRejected.HeaderTimeout: got %d, want 200", n)
	}
	if !strings.Contains(g.logs.String(), `"reason":"request headers not read within the read-header timeout","client":"127.0.1.`) {
		t.Errorf("no log line for the header timeouts:\n%s", tail(g.logs.String()))
	}
	return fmt.Sprintf("%s after %v–%v", &ans, took.min.Round(100*time.Millisecond), took.max.Round(100*time.Millisecond))
}

// slowBodies: 100 API requests (half with the key) whose bodies trickle
// one byte a second.
func slowBodies(t *testing.T, g *gateway) string {
	const timeout = 30 * time.Second // --read-timeout's default
	var ans tally
	var took durationRange
	fanOut(100, func(i int) {
		c, err := g.dialTCPErr()
		if err != nil {
			ans.add("dial: " + err.Error())
			return
		}
		defer c.Close()
		t0 := time.Now()
		_ = c.SetDeadline(t0.Add(timeout + 30*time.Second)) // kept too long shows as a timeout
		key := "key"
		hdr := "POST /api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
		if i%2 == 0 {
			hdr += "Authorization: Bearer " + apiKey + "\r\n"
		} else {
			key = "no key"
		}
		_, _ = io.WriteString(c, hdr+"\r\n")
		closed := make(chan string, 1)
		go func() {
			b, err := io.ReadAll(c)
			status := "no answer"
			if len(b) > 0 {
				status = strings.SplitN(string(b), "\r\n", 2)[0]
			}
			if err != nil && !isReset(err) {
				status += ", still open"
			} else {
				status += ", closed"
			}
			closed <- key + ": " + status
		}()
		for {
			select {
			case what := <-closed:
				took.add(time.Since(t0))
				ans.add(what)
				return
			case <-time.After(time.Second):
				if _, err := io.WriteString(c, "{"); err != nil {
					what := <-closed
					took.add(time.Since(t0))
					ans.add(what)
					return
				}
			}
		}
	})
	for k := range ans.m {
		if strings.Contains(k, "still open") {
			t.Errorf("got %s, want every slow body closed", &ans)
			break
		}
	}
	if took.max > timeout+3*time.Second {
		t.Errorf("closed after up to %v, want within --read-timeout (%v) and a little", took.max, timeout)
	}
	bodies := g.stats(t).HTTPRejected.BodyTimeout
	if bodies == 0 {
		t.Errorf("Stats.HTTPRejected.BodyTimeout: got 0, want the bodies the API read counted")
	}
	return fmt.Sprintf("%s; after %v–%v; %d counted as body timeouts", &ans, took.min.Round(100*time.Millisecond), took.max.Round(100*time.Millisecond), bodies)
}

// pendingFlood: 1,100 connections that send nothing, beyond
// --max-pending-conns (1024).
func pendingFlood(t *testing.T, g *gateway) string {
	var ans tally
	var took durationRange
	fanOut(1100, func(int) {
		c, err := g.dialTCPErr()
		if err != nil {
			ans.add("dial: " + err.Error())
			return
		}
		defer c.Close()
		t0 := time.Now()
		_ = c.SetDeadline(t0.Add(30 * time.Second)) // kept too long shows as a timeout
		b, err := io.ReadAll(c)
		switch {
		case bytes.HasPrefix(b, []byte("HTTP/1.1 503")):
			ans.add("503 before the request")
		case err != nil && !isReset(err):
			ans.add("still open")
		default:
			took.add(time.Since(t0))
			ans.add("closed")
		}
	})
	if ans.get("503 before the request") < 1100-1024 || ans.get("503 before the request")+ans.get("closed") != 1100 {
		t.Errorf("got %s, want at least %d refused with 503 and the rest closed", &ans, 1100-1024)
	}
	// Every connection was either refused (the 503 may be lost to a
	// reset) or closed by the header timeout. PendingLimit also counts
	// the prober's refused probes.
	st := g.stats(t).HTTPRejected
	if refused := uint64(ans.get("503 before the request")); st.HeaderTimeout == 0 || st.HeaderTimeout > 1100-refused || st.PendingLimit < 1100-st.HeaderTimeout {
		t.Errorf("Stats.HTTPRejected: %d pending-limit refusals and %d header timeouts, want the header timeouts at most %d and together at least 1100", st.PendingLimit, st.HeaderTimeout, 1100-refused)
	}
	return fmt.Sprintf("%s (closed after %v–%v)", &ans, took.min.Round(100*time.Millisecond), took.max.Round(100*time.Millisecond))
}

// tokenHugeSub: a token whose sub is 70,000 bytes, with headers allowed to
// carry it: 401 with the reason, never 101 and silence.
func tokenHugeSub(t *testing.T, g *gateway) string {
	tok := signed(t, map[string]any{"sub": strings.Repeat("u", 70000), "exp": time.Now().Add(time.Hour).Unix()})
	_, st, body, err := upgrade(g.addr, "/ws", "Authorization: Bearer "+tok)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if st != http.StatusUnauthorized || !strings.Contains(body, "token longer than") {
		t.Errorf("got HTTP %d %q, want 401 naming the size bound", st, body)
	}
	return fmt.Sprintf("HTTP %d %q", st, body)
}

// tokenHugeSubDefault: the same token with the default header bound.
func tokenHugeSubDefault(t *testing.T, g *gateway) string {
	tok := signed(t, map[string]any{"sub": strings.Repeat("u", 70000), "exp": time.Now().Add(time.Hour).Unix()})
	_, st, body, err := upgrade(g.addr, "/ws", "Authorization: Bearer "+tok)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if st != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("got HTTP %d %q, want 431", st, body)
	}
	return fmt.Sprintf("HTTP %d", st)
}
