package wsgate_test

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// closeTrigger makes the gateway close one connection and returns the code
// it sent.
type closeTrigger func(t *testing.T) websocket.StatusCode

// notSent lists the codes of the table that the gateway itself never sends,
// and why; the table must say so too (its row contains "not sent").
var notSent = map[int]string{
	1003: "the engine accepts both message kinds on /ws and /echo",
	1005: "a status only a receiver reports: a close frame without a code",
	1006: "a status only a receiver reports: the connection dropped",
	1008: "wsgate refuses before the upgrade (HTTP 403/401) or with a specific code",
	4501: "an origin refusal is HTTP 403 before the upgrade; applications may send it with Disconnect",
	4502: "the gateway chooses the simple form for a client offering no known subprotocol",
}

// hardToTrigger lists codes the gateway sends that this test does not
// trigger, with where they are tested instead.
var hardToTrigger = map[int]string{
	1011: "the engine's answer to a panicking callback; the gateway recovers handler panics itself, so only a gateway bug sends it (websocket/lifecycle_test.go)",
	1012: "needs a user's sequence moving to a new epoch or a store that lost its state: broker/redis TestRedisDownAndBack",
	1013: "sent when the broker cannot read the user's position at the handshake (store unreachable); NOT TESTED anywhere yet",
}

// TestCloseCodeTable checks docs/PROTOCOL.md §6 against the gateway: every
// code in the table is triggered here and arrives as that code, or is
// listed above as never sent (and the table says so) or as tested
// elsewhere; every code wire.CloseCode names is in the table.
func TestCloseCodeTable(t *testing.T) {
	table := closeTableCodes(t)
	triggers := closeTriggers()
	for code, row := range table {
		switch {
		case triggers[code] != nil:
			t.Run(strconv.Itoa(code), func(t *testing.T) {
				if got := triggers[code](t); int(got) != code {
					t.Errorf("got close %d, want %d", got, code)
				}
			})
		case notSent[code] != "":
			if !strings.Contains(row, "not sent") {
				t.Errorf("%d: never sent by the gateway (%s), but the table does not say so: %s", code, notSent[code], row)
			}
		case hardToTrigger[code] != "":
			t.Logf("%d: not triggered here: %s", code, hardToTrigger[code])
		default:
			t.Errorf("%d is in the table but neither triggered nor explained", code)
		}
	}
	for code := 1000; code < 5000; code++ {
		if name := wire.CloseCode(code).String(); name != "close "+strconv.Itoa(code) && table[code] == "" {
			t.Errorf("wire.CloseCode %d (%s) is missing from the table", code, name)
		}
	}
	for code := range triggers {
		if table[code] == "" {
			t.Errorf("the gateway sends %d, which the table does not list", code)
		}
	}
}

// closeTableCodes returns the rows of PROTOCOL.md §6 that name one code.
func closeTableCodes(t *testing.T) map[int]string {
	doc, err := os.ReadFile("docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## 6. Close codes")
	if !ok {
		t.Fatal("PROTOCOL.md has no section 6. Close codes")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[int]string{}
	for _, m := range regexp.MustCompile(`(?m)^\| (\d{4}) \|.*$`).FindAllStringSubmatch(section, -1) {
		code, _ := strconv.Atoi(m[1])
		rows[code] = m[0]
	}
	if len(rows) < 20 {
		t.Fatalf("found %d codes in the table, want at least 20", len(rows))
	}
	return rows
}

func closeTriggers() map[int]closeTrigger {
	return map[int]closeTrigger{
		1000: func(t *testing.T) websocket.StatusCode { // the gateway answers a client's close
			gw := gatewaytest.Start(t, wsgate.Config{}, nil)
			c := gw.DialSimple(t, "a")
			_ = c.Close(websocket.StatusNormalClosure, "bye") // a fresh connection: cannot be closing
			return readClose(t, c)
		},
		1001: func(t *testing.T) websocket.StatusCode {
			ts := startServer(t, anon())
			c := dial(t, ts.wsURL("/ws"), nil)
			go func() { _ = ts.Shutdown(context.Background()) }() // the read below sees its close
			return readClose(t, c)
		},
		1002: func(t *testing.T) websocket.StatusCode {
			c := dial(t, startServer(t, anon()).wsURL("/ws"), fullForm)
			readFrame(t, c)                                             // hello
			write(t, c, websocket.BinaryMessage, []byte{2, 0, 0, 0, 1}) // a reply: server→client only
			return readClose(t, c)
		},
		1007: func(t *testing.T) websocket.StatusCode {
			c := dial(t, startServer(t, anon()).wsURL("/ws"), nil)
			write(t, c, websocket.TextMessage, []byte{0xff, 0xfe})
			return readClose(t, c)
		},
		1009: func(t *testing.T) websocket.StatusCode {
			c := dial(t, startServer(t, wsgate.Config{InsecureNoAuth: true, MaxMessageSize: 64}).wsURL("/ws"), nil)
			write(t, c, websocket.BinaryMessage, make([]byte, 65))
			return readClose(t, c)
		},
		4000: triggerSlowConsumer,
		4001: func(t *testing.T) websocket.StatusCode {
			gw := gatewaytest.Start(t, wsgate.Config{IdleTimeout: 200 * time.Millisecond, PingInterval: time.Hour}, nil)
			return readClose(t, gw.DialSimple(t, "a"))
		},
		4002: func(t *testing.T) websocket.StatusCode {
			c := dial(t, startServer(t, wsgate.Config{InsecureNoAuth: true, MessageRate: 1}).wsURL("/ws"), nil)
			for range 5 {
				_ = c.WriteMessage(websocket.BinaryMessage, simple(wire.ActionPing, "x")) // fails once closed
			}
			return readClose(t, c)
		},
		4003: func(t *testing.T) websocket.StatusCode {
			ts := startServer(t, wsgate.Config{InsecureNoAuth: true, DrainPeriod: 100 * time.Millisecond})
			c := dial(t, ts.wsURL("/ws"), nil)
			go func() { _ = ts.Shutdown(context.Background()) }() // the read below sees its close
			return readClose(t, c)
		},
		4004: func(t *testing.T) websocket.StatusCode {
			ts := startServer(t, wsgate.Config{Authenticate: jwtAuth(t), PingInterval: 100 * time.Millisecond})
			return readClose(t, dial(t, ts.wsURL("/ws?token="+token(t, "a", time.Second)), nil))
		},
		4500: func(t *testing.T) websocket.StatusCode {
			ts := startServer(t, wsgate.Config{Authenticate: jwtAuth(t)})
			browser := &websocket.DialOptions{Header: http.Header{"Origin": {"http://" + ts.addr}}}
			return readClose(t, dial(t, ts.wsURL("/ws?token=bad"), browser))
		},
		4503: func(t *testing.T) websocket.StatusCode {
			gw := gatewaytest.Start(t, wsgate.Config{}, nil)
			c := gw.DialFull(t, "a")
			if err := gw.Disconnect(string(c.Hello.ConnID), wire.CloseReplaced, "replaced"); err != nil {
				t.Fatal(err)
			}
			return readClose(t, c.Conn)
		},
	}
}

// triggerSlowConsumer fills the queue of a client that does not read, as
// TestSendQueueMessagesBound does.
func triggerSlowConsumer(t *testing.T) websocket.StatusCode {
	gw := gatewaytest.Start(t, wsgate.Config{SendQueueMessages: 8, SendQueueBytes: 256 << 20}, nil)
	stalled := gw.DialSimple(t, "bob")
	payload := make([]byte, 256<<10)
	for i := 0; gw.Stats().SlowConsumers == 0; i++ {
		if i == 300 {
			t.Fatal("300 pushes to a client that does not read: not closed")
		}
		if _, err := gw.Push(context.Background(), wsgate.Target{User: "bob"}, 120, payload); err != nil {
			t.Fatal(err)
		}
	}
	return readClose(t, stalled)
}
