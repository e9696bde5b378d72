package api_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/api"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

const key = "test-api-key"

func startAPI(t *testing.T) (*gatewaytest.Gateway, *httptest.Server) {
	t.Helper()
	gw := gatewaytest.Start(t, wsgate.Config{}, nil)
	a, err := api.New(gw.Server, api.Config{APIKey: key, MaxPayload: 1024})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a)
	t.Cleanup(hs.Close)
	return gw, hs
}

func call(t *testing.T, hs *httptest.Server, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
	}
	return resp.StatusCode, out
}

func TestAPIKey(t *testing.T) {
	_, hs := startAPI(t)
	for _, auth := range []string{"", "Bearer wrong", "Basic " + key, key} {
		status, body := call(t, hs, "GET", "/api/v1/stats", auth, "")
		if status != http.StatusUnauthorized || body["error"] == nil {
			t.Errorf("auth %q: got %d %v, want 401 with an error", auth, status, body)
		}
	}
	if status, _ := call(t, hs, "GET", "/api/v1/stats", "Bearer "+key, ""); status != http.StatusOK {
		t.Errorf("right key: got %d, want 200", status)
	}
	if _, err := api.New(nil, api.Config{}); err == nil {
		t.Error("New without an API key: got nil error, want one")
	}
}

func TestPushBadRequests(t *testing.T) {
	_, hs := startAPI(t)
	big := strings.Repeat("A", 2000) // 1500 bytes once decoded, over MaxPayload
	tests := []struct{ name, body, want string }{
		{"not JSON", `{"to":`, "bad JSON"},
		{"trailing data", `{"to":{"all":true},"action":120}{}`, "trailing"},
		{"unknown field", `{"to":{"all":true},"action":120,"color":"red"}`, "unknown field"},
		{"unknown target", `{"to":{"planet":"mars"},"action":120}`, "unknown field"},
		{"no target", `{"action":120}`, `"to" is required`},
		{"empty target", `{"to":{},"action":120}`, "exactly one"},
		{"two targets", `{"to":{"user":"a","all":true},"action":120}`, "exactly one"},
		{"empty users", `{"to":{"users":[]},"action":120}`, "empty"},
		{"no action", `{"to":{"all":true}}`, `"action" is required`},
		{"system action", `{"to":{"all":true},"action":1}`, "application range"},
		{"high bit action", `{"to":{"all":true},"action":2147483648}`, "application range"},
		{"bad base64", `{"to":{"all":true},"action":120,"data":"%%%"}`, "base64"},
		{"data and json", `{"to":{"all":true},"action":120,"data":"","json":{}}`, "not both"},
		{"oversized", `{"to":{"all":true},"action":120,"data":"` + big + `"}`, "larger than"},
	}
	for _, tt := range tests {
		status, body := call(t, hs, "POST", "/api/v1/push", "Bearer "+key, tt.body)
		msg, _ := body["error"].(string)
		if status != http.StatusBadRequest || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: got %d %q, want 400 containing %q", tt.name, status, msg, tt.want)
		}
	}
}

func readPush(t *testing.T, c *websocket.Conn) (uint32, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read push: %v", err)
	}
	if len(b) < 4 {
		t.Fatalf("push % x shorter than 4 bytes", b)
	}
	return binary.BigEndian.Uint32(b), string(b[4:])
}

func TestPushAndPresence(t *testing.T) {
	gw, hs := startAPI(t)
	alice1, alice2, bob := gw.DialSimple(t, "alice"), gw.DialSimple(t, "alice"), gw.DialSimple(t, "bob")
	gatewaytest.WaitFor(t, "3 registered connections", func() bool { return gw.Stats().Conns == 3 })

	status, body := call(t, hs, "GET", "/api/v1/presence/alice", "Bearer "+key, "")
	if status != 200 || body["connections"] != 2.0 || body["online"] != true {
		t.Fatalf("presence alice: got %d %v, want 2 connections", status, body)
	}
	if _, body = call(t, hs, "GET", "/api/v1/presence/nobody", "Bearer "+key, ""); body["online"] != false {
		t.Fatalf("presence nobody: got %v, want offline", body)
	}

	status, body = call(t, hs, "POST", "/api/v1/push", "Bearer "+key, `{"to":{"user":"alice"},"action":120,"data":"aGVsbG8="}`)
	if status != 200 || body["delivered"] != 2.0 || body["seq"] != 1.0 {
		t.Fatalf("push to alice: got %d %v, want delivered 2, seq 1", status, body)
	}
	for _, c := range []*websocket.Conn{alice1, alice2} {
		if a, p := readPush(t, c); a != 120 || p != "hello" {
			t.Fatalf("alice got action %d payload %q, want 120 hello", a, p)
		}
	}
	status, body = call(t, hs, "POST", "/api/v1/push", "Bearer "+key, `{"to":{"all":true},"action":121,"json":{"n":1}}`)
	if status != 200 || body["delivered"] != 3.0 || body["seq"] != nil {
		t.Fatalf("push to all: got %d %v, want delivered 3 and no seq", status, body)
	}
	// bob's first message is the broadcast: the user push did not reach him.
	if a, p := readPush(t, bob); a != 121 || p != `{"n":1}` {
		t.Fatalf("bob got action %d payload %q, want 121 {\"n\":1}", a, p)
	}
	status, body = call(t, hs, "GET", "/api/v1/stats", "Bearer "+key, "")
	if status != 200 || body["conns"] == nil {
		t.Fatalf("stats: got %d %v, want conns", status, body)
	}
}

func TestPushUnknownConn(t *testing.T) {
	_, hs := startAPI(t)
	status, body := call(t, hs, "POST", "/api/v1/push", "Bearer "+key, `{"to":{"conn":"nope"},"action":120}`)
	if status != http.StatusNotFound {
		t.Fatalf("got %d %v, want 404", status, body)
	}
	if status, _ := call(t, hs, "GET", "/api/v2/whatever", "Bearer "+key, ""); status != http.StatusNotFound {
		t.Fatalf("unknown endpoint: got %d, want 404", status)
	}
}

// TestPresenceSeqAndAcked: the presence answer carries the user's last
// sequence and the highest one a client acknowledged.
func TestPresenceSeqAndAcked(t *testing.T) {
	gw, hs := startAPI(t)
	c := gw.DialFull(t, "carol")
	for i := 1; i <= 3; i++ {
		if status, body := call(t, hs, "POST", "/api/v1/push", "Bearer "+key, `{"to":{"user":"carol"},"action":120}`); status != 200 || body["seq"] != float64(i) {
			t.Fatalf("push %d: got %d %v, want seq %d", i, status, body, i)
		}
		if f := c.ReadFrame(t); f.Type != wire.TypePush || f.Seq != uint64(i) {
			t.Fatalf("got %+v, want push %d", f, i)
		}
	}
	ack, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypeAck, Seq: 2})
	if err := c.WriteMessage(websocket.BinaryMessage, ack); err != nil {
		t.Fatal(err)
	}
	// Once a request sent after the ack is answered, the ack is recorded.
	c.Request(t, wire.ActionPing, nil)
	status, body := call(t, hs, "GET", "/api/v1/presence/carol", "Bearer "+key, "")
	if status != 200 || body["connections"] != 1.0 || body["seq"] != 3.0 || body["acked"] != 2.0 {
		t.Errorf("presence carol: got %d %v, want 1 connection, seq 3, acked 2", status, body)
	}
	if _, body := call(t, hs, "GET", "/api/v1/presence/nobody", "Bearer "+key, ""); body["seq"] != 0.0 || body["acked"] != 0.0 {
		t.Errorf("presence nobody: got %v, want seq 0, acked 0", body)
	}
}

// TestWrongMethod: a known path asked with the wrong method is 405 with
// Allow, an unknown path 404.
func TestWrongMethod(t *testing.T) {
	_, hs := startAPI(t)
	for _, tc := range []struct {
		method, path, allow string
	}{
		{"GET", "/api/v1/push", "POST"},
		{"PUT", "/api/v1/push", "POST"},
		{"POST", "/api/v1/stats", "GET, HEAD"},
		{"DELETE", "/api/v1/presence/alice", "GET, HEAD"},
	} {
		req, err := http.NewRequest(tc.method, hs.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: got %d Allow %q, want 405 Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
		}
		if !strings.Contains(string(raw), `"error"`) {
			t.Errorf("%s %s: body %q, want a JSON error", tc.method, tc.path, raw)
		}
	}
	if status, _ := call(t, hs, "GET", "/api/v1/nope", "Bearer "+key, ""); status != http.StatusNotFound {
		t.Errorf("GET /api/v1/nope: got %d, want 404", status)
	}
	req, err := http.NewRequest("HEAD", hs.URL+"/api/v1/stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /api/v1/stats: got %d, want 200", resp.StatusCode)
	}
}

// TestPushBodiesInSequence: push bodies decoded one after another (the
// decoder of a good one is reused, that of a bad one is not) never mix:
// each good push arrives with its own action and payload, each bad one is
// refused on its own.
func TestPushBodiesInSequence(t *testing.T) {
	gw, hs := startAPI(t)
	c := gw.DialSimple(t, "dora")
	gatewaytest.WaitFor(t, "1 registered connection", func() bool { return gw.Stats().Conns == 1 })
	for i, tc := range []struct {
		body   string
		status int
		action uint32
		want   string
	}{
		{`{"to":{"user":"dora"},"action":120,"json":{"n":1}}`, 200, 120, `{"n":1}`},
		{`{"to":{"user":"dora"},"action":121,"json":{"n":2}} {"to":`, 400, 0, ""},
		{` {"to":{"user":"dora"},"action":122,"data":"aGk="}` + "\n\t", 200, 122, "hi"},
		{`{"to":{"user":"dora"},"action":123,"json":{"n":3},"x":1}`, 400, 0, ""},
		{`{"to":{"user":"dora"},"action":124,"json":[1,`, 400, 0, ""},
		{`{"to":{"user":"dora"},"action":125,"json":"s"}`, 200, 125, `"s"`},
		{`{"action":126,"to":{"user":"dora"}}`, 200, 126, ""},
	} {
		status, body := call(t, hs, "POST", "/api/v1/push", "Bearer "+key, tc.body)
		if status != tc.status {
			t.Fatalf("body %d %q: got %d %v, want %d", i, tc.body, status, body, tc.status)
		}
		if tc.status != 200 {
			continue
		}
		if a, p := readPush(t, c); a != tc.action || p != tc.want {
			t.Fatalf("body %d: got action %d payload %q, want %d %q", i, a, p, tc.action, tc.want)
		}
	}
}

// TestConcurrentPushes: pushes handled at the same time, each in a pooled
// state another push used before, never mix: every user gets its own
// pushes, whole and in order, and every answer carries its own sequence.
func TestConcurrentPushes(t *testing.T) {
	gw, hs := startAPI(t)
	const users, pushes = 4, 50
	conns := make([]*websocket.Conn, users)
	for i := range conns {
		conns[i] = gw.DialSimple(t, "user"+strconv.Itoa(i))
	}
	gatewaytest.WaitFor(t, "the connections registered", func() bool { return gw.Stats().Conns == users })
	errs := make(chan error, users)
	for i := range users {
		go func() {
			for k := range pushes {
				body := fmt.Sprintf(`{"to":{"user":"user%d"},"action":%d,"json":{"u":%d,"k":%d}}`, i, 120+i, i, k)
				req, err := http.NewRequest("POST", hs.URL+"/api/v1/push", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := hs.Client().Do(req)
				if err != nil {
					errs <- err
					return
				}
				raw, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close() // read whole
				if resp.StatusCode != 200 || !strings.Contains(string(raw), fmt.Sprintf(`"seq":%d}`, k+1)) {
					errs <- fmt.Errorf("push %d to user%d: got %d %q, want 200 with seq %d", k, i, resp.StatusCode, raw, k+1)
					return
				}
			}
			errs <- nil
		}()
	}
	for range users {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		for k := range pushes {
			want := fmt.Sprintf(`{"u":%d,"k":%d}`, i, k)
			if a, p := readPush(t, c); a != uint32(120+i) || p != want {
				t.Fatalf("user%d push %d: got action %d payload %q, want %d %q", i, k, a, p, 120+i, want)
			}
		}
	}
}
