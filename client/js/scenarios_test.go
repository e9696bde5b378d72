package wsgatejs_test

import (
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/redistest"
	"github.com/wsgate/wsgate/internal/web"
	"github.com/wsgate/wsgate/wire"
)

// TestJSTokenRefreshBeforeExpiry: the gateway warns that the token is
// expiring, the client fetches a new one with getToken and sends it in a
// refresh frame; the connection outlives the first token, on one attempt.
func TestJSTokenRefreshBeforeExpiry(t *testing.T) {
	needEpochServer(t)
	for _, name := range drivers {
		t.Run(name, func(t *testing.T) {
			tk := &tokens{t: t, plan: []time.Duration{3 * time.Second, time.Hour}}
			gw := gatewaytest.Start(t, jwtConfig(t, tk), nil)
			firstExpiry := time.Now().Add(3 * time.Second)
			d := startDriver(t, name, gw.URL+"/")
			d.do(map[string]any{"cmd": "start", "url": gw.WS + "/ws", "tokenURL": gw.URL + "/token"})
			d.next("hello")
			d.next("tokenRefreshed")
			// Past the first token's deadline and one heartbeat round more,
			// the connection still answers.
			time.Sleep(time.Until(firstExpiry.Add(500 * time.Millisecond)))
			if r := d.do(map[string]any{"cmd": "request", "action": int(wire.ActionPing), "payload": "still here"}); r["reply"] != "still here" {
				t.Fatalf("ping after the first token expired: got %v", r)
			}
			if s := d.do(map[string]any{"cmd": "stats"}); num(s, "attempts") != 1 || s["state"] != "open" {
				t.Errorf("got %v, want one attempt, still open", s)
			}
			if n := tk.count(); n != 2 {
				t.Errorf("getToken calls: got %d, want 2 (connect, refresh)", n)
			}
		})
	}
}

// TestJSTokenRefreshAfterExpiry: the token service is down when the
// warning comes, so the gateway closes with 4004 at the deadline; the
// client reconnects with a token from getToken once it is back.
func TestJSTokenRefreshAfterExpiry(t *testing.T) {
	needEpochServer(t)
	for _, name := range drivers {
		t.Run(name, func(t *testing.T) {
			tk := &tokens{t: t, plan: []time.Duration{2 * time.Second, 0, time.Hour}}
			gw := gatewaytest.Start(t, jwtConfig(t, tk), nil)
			d := startDriver(t, name, gw.URL+"/")
			d.do(map[string]any{"cmd": "start", "url": gw.WS + "/ws", "tokenURL": gw.URL + "/token"})
			d.next("hello")
			if e := d.next("close"); num(e, "code") != int(wire.CloseTokenExpired) || e["reconnect"] != true {
				t.Fatalf("got %v, want close 4004 with reconnect", e)
			}
			d.next("hello")
			if s := d.do(map[string]any{"cmd": "stats"}); num(s, "attempts") != 2 || s["state"] != "open" {
				t.Errorf("got %v, want two attempts, open", s)
			}
			if n := tk.count(); n != 3 {
				t.Errorf("getToken calls: got %d, want 3 (connect, failed refresh, reconnect)", n)
			}
		})
	}
}

// TestJSExpiredTokenIsShownAndFinal: a browser sees the gateway's reason
// for refusing an expired token (close 4500 "wsgate: token expired"), and
// the client stops: once without getToken, and with a getToken that has
// nothing newer after asking it once more. The attempts are counted.
// Node's WebSocket sends no Origin header, so the gateway answers it with
// a plain 401, which Node reports as 1006 without a reason: that case is
// the Go tests' (TestBrowserAuthFailureIsACloseCode), not this one's.
func TestJSExpiredTokenIsShownAndFinal(t *testing.T) {
	needEpochServer(t)
	tk := &tokens{t: t, plan: []time.Duration{-time.Minute}}
	gw := gatewaytest.Start(t, jwtConfig(t, tk), nil)
	expired := expiredToken(t)
	for _, withGetToken := range []bool{false, true} {
		d := startDriver(t, "chromium", gw.URL+"/")
		cmd := map[string]any{"cmd": "start", "url": gw.WS + "/ws?token=" + expired}
		if withGetToken {
			cmd = map[string]any{"cmd": "start", "url": gw.WS + "/ws", "tokenURL": gw.URL + "/token"}
		}
		before := tk.count()
		d.do(cmd)
		e := d.next("close")
		if num(e, "code") != int(wire.CloseUnauthorized) || e["reason"] != "wsgate: token expired" {
			t.Fatalf("getToken=%v: got %v, want close 4500 \"wsgate: token expired\"", withGetToken, e)
		}
		d.next("connectFailed")
		s := d.do(map[string]any{"cmd": "stats"})
		if s["state"] != "closed" || num(s, "attempts") != 1 {
			t.Errorf("getToken=%v: got %v, want closed after exactly one attempt", withGetToken, s)
		}
		if want := map[bool]int{false: 0, true: 2}[withGetToken]; tk.count()-before != want {
			t.Errorf("getToken=%v: %d token calls, want %d", withGetToken, tk.count()-before, want)
		}
	}
}

// TestJSResumeAfterRestart: the gateway node a client is on restarts (same
// address, state in Redis); pushes published meanwhile through another
// node arrive after the reconnect, once each, in order, with no gap.
func TestJSResumeAfterRestart(t *testing.T) {
	needEpochServer(t)
	rs := redistest.Start(t)
	publisher := rs.StartNode(t, redisbroker.Options{}, jwtConfig(t, &tokens{plan: []time.Duration{time.Hour}}))
	for _, name := range drivers {
		t.Run(name, func(t *testing.T) {
			tk := &tokens{t: t, plan: []time.Duration{time.Hour}}
			addr := freeAddr(t)
			startA := func() *node {
				b, err := redisbroker.New(redisbroker.Options{URL: rs.URL()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close() }) // after the node's own cleanup
				cfg := jwtConfig(t, tk)
				cfg.Broker = b
				return startNode(t, addr, cfg)
			}
			a := startA()
			d := startDriver(t, name, "http://"+addr+"/")
			d.do(map[string]any{"cmd": "start", "url": "ws://" + addr + "/ws", "tokenURL": "http://" + addr + "/token"})
			d.next("hello")
			publish(t, publisher.Server, "jo", name+"-1")
			first := num(d.next("push"), "seq")
			a.stop()
			d.next("close")
			for i := 2; i <= 6; i++ {
				publish(t, publisher.Server, "jo", name+"-"+itoa(i))
			}
			startA()
			d.next("hello")
			for i := 2; i <= 7; i++ {
				if i == 7 {
					publish(t, publisher.Server, "jo", name+"-7")
				}
				e := d.next("push")
				if num(e, "seq") != first+i-1 || e["payload"] != name+"-"+itoa(i) || e["gap"] != false {
					t.Fatalf("got %v, want push %d (%s-%d) without a gap", e, first+i-1, name, i)
				}
			}
		})
	}
}

// TestJSSimpleForm: SimpleClient speaks the simple form to a real gateway:
// a request gets its reply by action, an error reply rejects with the
// gateway's message, and a push arrives as a message.
func TestJSSimpleForm(t *testing.T) {
	for _, name := range drivers {
		t.Run(name, func(t *testing.T) {
			gw := gatewaytest.Start(t, wsgate.Config{Page: web.Handler()}, nil)
			d := startDriver(t, name, gw.URL+"/")
			if r := d.do(map[string]any{"cmd": "startSimple", "url": gw.WS + "/ws?user=sam"}); r["opened"] != true {
				t.Fatalf("startSimple: %v", r)
			}
			if r := d.do(map[string]any{"cmd": "request", "action": int(wire.ActionPing), "payload": "echo me"}); r["reply"] != "echo me" {
				t.Fatalf("ping: got %v", r)
			}
			if r := d.do(map[string]any{"cmd": "request", "action": 999, "payload": ""}); r["failed"] != "wsgate: unknown action 999 (code 0)" {
				t.Fatalf("unknown action: got %v, want the gateway's error reply", r)
			}
			gatewaytest.WaitFor(t, "sam registered", func() bool { return gw.Presence("sam") == 1 })
			publish(t, gw.Server, "sam", "pushed")
			if e := d.next("message"); num(e, "action") != 120 || e["payload"] != "pushed" {
				t.Fatalf("push: got %v", e)
			}
			if s := d.do(map[string]any{"cmd": "stats"}); num(s, "attempts") != 1 || s["state"] != "open" {
				t.Errorf("got %v, want one attempt, open", s)
			}
		})
	}
}
