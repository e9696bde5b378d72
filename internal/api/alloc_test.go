package api_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/wire"
)

// TestPushAllocs: a push through the API handler allocates at most two
// objects more than the same push through Server.Publish (the payload's
// copy out of the pooled body, the target's string); decoding the body,
// the request's state and the answer allocate nothing. net/http's own
// request and response are not in the count (the handler is called
// directly), and neither is anything on the client's side: the recipient
// is a raw full-form connection that never reads.
func TestPushAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	leakcheck.Check(t)
	for _, tc := range []struct {
		name string
		size int
	}{{"history", 0}, {"nohistory", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			gw, a := apiGateway(t, tc.size)
			rawFull(t, gw.Addr, "u1")
			gatewaytest.WaitFor(t, "the connection registered", func() bool { return gw.Stats().Conns == 1 })
			payload := []byte(`{"r":1,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
			body := []byte(`{"to":{"user":"u1"},"action":120,"json":` + string(payload) + `}`)
			req, rd := reusablePush(body)
			w := &discardWriter{h: http.Header{}}
			viaAPI := testing.AllocsPerRun(100, func() {
				rd.Reset(body)
				w.status = 0
				a.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					t.Fatalf("push: status %d", w.status)
				}
			})
			ctx := context.Background()
			direct := testing.AllocsPerRun(100, func() {
				if r, err := gw.Publish(ctx, wsgate.Target{User: "u1"}, 120, payload); r.Delivered != 1 || err != nil {
					t.Fatalf("Publish: got %+v, %v; want 1 delivery", r, err)
				}
			})
			t.Logf("allocations per push: %.1f through the API, %.1f through Server.Publish", viaAPI, direct)
			if viaAPI-direct > 2 {
				t.Errorf("the API handler allocates %.1f objects per push beyond Publish's %.1f, want at most 2", viaAPI-direct, direct)
			}
		})
	}
}

// rawFull opens a full-form (wsgate.v1) connection as user by hand and
// never reads after the handshake's answer; it is closed when the test
// ends.
func rawFull(t *testing.T, addr, user string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() }) // the server may have closed it
	req := "GET /ws?user=" + user + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + wire.Subprotocol + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: got %v, %v; want 101", resp, err)
	}
}
