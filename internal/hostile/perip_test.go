//go:build linux

package hostile

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

// pendingOneAddress: one address (127.0.0.3) opens 200 silent
// connections, beyond --max-pending-conns-per-ip (128 by default). The
// excess gets 503 before its request is read, counted and logged; while
// the 128 are held, a client from another address (127.0.0.2) still
// connects and gets a push, and the attacker's next connection is still
// refused. The case runs with --read-header-timeout 60s so that the hold
// outlasts it however slow the machine is.
func pendingOneAddress(t *testing.T, g *gateway) string {
	const n, perIP = 200, 128
	attacker, other := net.IPv4(127, 0, 0, 3), net.IPv4(127, 0, 0, 2)
	var (
		mu   sync.Mutex
		held []net.Conn
		ans  []string
	)
	defer func() {
		for _, c := range held {
			_ = c.Close() // end of the case
		}
	}()
	fanOut(n, func(int) {
		c, err := dialFrom(attacker, g.addr)
		if err != nil {
			t.Errorf("dial from %v: %v", attacker, err)
			return
		}
		mu.Lock()
		held = append(held, c)
		mu.Unlock()
	})
	// Every connection is accepted or refused by now or in a moment.
	deadline := time.Now().Add(limit)
	for g.stats(t).HTTPRejected.PerIPLimit < n-perIP && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	refused := 0
	for _, c := range held {
		if refusedNow(c) {
			refused++
		}
	}
	ans = append(ans, fmt.Sprintf("503 before the request ×%d, held ×%d", refused, len(held)-refused))
	if got := g.stats(t).HTTPRejected.PerIPLimit; got != n-perIP || refused != n-perIP {
		t.Errorf("Stats.HTTPRejected.PerIPLimit %d, 503s seen %d; want %d each", got, refused, n-perIP)
	}
	if !strings.Contains(g.logs.String(), "too many pending connections from one address") {
		t.Errorf("no log line for the refusals:\n%s", tail(g.logs.String()))
	}

	t0 := time.Now()
	if err := g.healthyFrom(t, other); err != nil {
		t.Errorf("client from %v: %v", other, err)
		ans = append(ans, "client from 127.0.0.2: "+err.Error())
	} else {
		ans = append(ans, fmt.Sprintf("client from 127.0.0.2 connected and got a push in %v", time.Since(t0).Round(time.Millisecond)))
	}
	c, err := dialFrom(attacker, g.addr)
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, c)
	if !waitRefused(c) {
		t.Errorf("the attacker's next connection was not refused: its slots are no longer held")
	}
	return strings.Join(append(ans, "its next connection: 503"), "; ")
}

// refusedNow reports whether the gateway has answered c with 503 (it
// then closes it); a held connection has nothing to read.
func refusedNow(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond)) // what has arrived is there already
	b := make([]byte, 12)
	n, _ := io.ReadFull(c, b)
	return bytes.HasPrefix(b[:n], []byte("HTTP/1.1 503"))
}

// waitRefused reports whether c gets a 503 (within limit).
func waitRefused(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(limit)) // a held connection shows as a timeout
	b := make([]byte, 12)
	n, _ := io.ReadFull(c, b)
	return bytes.HasPrefix(b[:n], []byte("HTTP/1.1 503"))
}

// healthyFrom is healthy for a client whose connections (WebSocket and
// API) come from the loopback address ip.
func (g *gateway) healthyFrom(t *testing.T, ip net.IP) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dial := func(ctx context.Context, _, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		return d.DialContext(ctx, "tcp", addr)
	}
	user := fmt.Sprintf("from-%v-%d", ip, time.Now().UnixNano())
	ws, _, err := websocket.Dial(ctx, g.ws("/ws"), nil, &websocket.DialOptions{
		NetDial: dial, Header: http.Header{"Authorization": {"Bearer " + token(t, user)}},
	})
	if err != nil {
		return fmt.Errorf("new client: %w", err)
	}
	defer ws.CloseNow()
	hc := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	got := make(chan error, 1)
	go func() { // the reader: the push's payload, or the error that ended reading
		for {
			_, msg, err := ws.Read(ctx)
			if err != nil {
				got <- err
				return
			}
			if bytes.Contains(msg, []byte("ping-from-"+ip.String())) {
				got <- nil
				return
			}
		}
	}()
	for {
		body := fmt.Sprintf(`{"to":{"user":%q},"action":120,"json":%q}`, user, "ping-from-"+ip.String())
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url("/api/v1/push"), strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		_ = resp.Body.Close() // the status is the answer
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("push: HTTP %d", resp.StatusCode)
		}
		select {
		case err := <-got:
			return err
		case <-time.After(time.Second):
			// the registration may trail the 101 by a moment: push again
		case <-ctx.Done():
			return fmt.Errorf("no push within 15 s")
		}
	}
}

// oneTokenMany: one valid token opens 1,500 connections, one after
// another, past --max-conns-per-user (1,000 by default). The first 1,000
// are held; the rest get 429 with Retry-After, and are counted; while they
// are held, the same user's next attempt is still refused and another
// user connects and gets a push (the health check after the case).
func oneTokenMany(t *testing.T, g *gateway) string {
	const tries, limit = 1500, 1000
	hdr := authz(t, "mallory")
	var held []*rawConn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	var ans tally
	for range tries {
		c, st, body, err := upgrade(g.addr, "/ws", hdr)
		switch {
		case err != nil:
			ans.add("error: " + err.Error())
		case st == http.StatusSwitchingProtocols:
			held = append(held, c)
			ans.add("HTTP 101")
		default:
			if c != nil {
				_ = c.Close()
			}
			ans.add(fmt.Sprintf("HTTP %d %s", st, strings.TrimSpace(body)))
		}
	}
	refused := "HTTP 429 wsgate: too many connections for this user"
	if ans.get("HTTP 101") != limit || ans.get(refused) != tries-limit {
		t.Errorf("got %s, want %d × HTTP 101 and %d × %q", &ans, limit, tries-limit, refused)
	}
	if n := g.stats(t).Rejected.UserLimit; n != tries-limit {
		t.Errorf("Stats.Rejected.UserLimit: got %d, want %d", n, tries-limit)
	}
	if err := g.healthy(t); err != nil {
		t.Errorf("another user while mallory holds %d connections: %v", len(held), err)
	}
	return ans.String()
}
