package backend_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/wire"
)

// event is what the test backend records of each call.
type event struct {
	Type   string `json:"type"`
	Conn   string `json:"conn"`
	User   string `json:"user"`
	Action uint32 `json:"action"`
	Data   []byte `json:"data"`
	Code   int    `json:"code"`
	Remote string `json:"remote"`
}

// recorder is a real HTTP backend that answers requests with answer and records
// every event it receives.
type recorder struct {
	mu     sync.Mutex
	events []event
	seen   chan string // event types, as they arrive
}

func (rec *recorder) serve(answer func(w http.ResponseWriter, ev event)) *httptest.Server {
	rec.seen = make(chan string, 64)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev event
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		rec.events = append(rec.events, ev)
		rec.mu.Unlock()
		rec.seen <- ev.Type
		if ev.Type == "request" {
			answer(w, ev)
		}
	}))
	return hs
}

func (rec *recorder) waitFor(t *testing.T, typ string) {
	t.Helper()
	timeout := time.After(gatewaytest.Timeout)
	for {
		select {
		case got := <-rec.seen:
			if got == typ {
				return
			}
		case <-timeout:
			t.Fatalf("backend never got a %q event", typ)
		}
	}
}

func startForwarding(t *testing.T, url string, timeout time.Duration) *gatewaytest.Gateway {
	t.Helper()
	f, err := backend.New(backend.Config{URL: url, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewaytest.Start(t, wsgate.Config{Fallback: f.Handle, OnConnect: f.OnConnect, OnDisconnect: f.OnDisconnect}, nil)
	t.Cleanup(f.Close) // after the gateway has stopped: cleanups run last-in first-out
	return gw
}

func TestForwardRoundTrip(t *testing.T) {
	var rec recorder
	hs := rec.serve(func(w http.ResponseWriter, ev event) {
		if ev.Action == 111 {
			_, _ = w.Write([]byte(`{"error":{"code":1001,"message":"no such friend"}}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": append([]byte("re:"), ev.Data...)})
	})
	defer hs.Close()
	gw := startForwarding(t, hs.URL, time.Second)

	c := gw.DialFull(t, "alice")
	rec.waitFor(t, "connect")
	if f := c.Request(t, 110, []byte("bob")); f.Type != wire.TypeReply || string(f.Payload) != "re:bob" {
		t.Fatalf("got %+v, want reply re:bob", f)
	}
	if f := c.Request(t, 111, nil); f.Type != wire.TypeError || f.Code != 1001 || string(f.Payload) != "no such friend" {
		t.Fatalf("got %+v, want error 1001 no such friend", f)
	}
	rec.mu.Lock()
	conn, req := rec.events[0], rec.events[1]
	rec.mu.Unlock()
	if ap, err := netip.ParseAddrPort(conn.Remote); conn.Type != "connect" || err != nil || !ap.Addr().IsLoopback() {
		t.Errorf("backend got %+v, want a connect event with the client's loopback ip:port", conn)
	}
	if req.Type != "request" || req.User != "alice" || req.Conn != string(c.Hello.ConnID) || req.Action != 110 {
		t.Fatalf("backend got %+v, want alice's request 110 on conn %s", req, c.Hello.ConnID)
	}
	_ = c.CloseNow() // drop it: the gateway must still report the disconnect
	rec.waitFor(t, "disconnect")
}

func TestForwardBackendDown(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	url := hs.URL
	hs.Close() // nothing listens there any more
	gw := startForwarding(t, url, time.Second)
	c := gw.DialFull(t, "alice")
	f := c.Request(t, 110, nil)
	if f.Type != wire.TypeError || f.Code != wire.CodeUnavailable {
		t.Fatalf("got %+v, want error code %d (unavailable)", f, wire.CodeUnavailable)
	}
}

func TestForwardBackendErrors(t *testing.T) {
	release := make(chan struct{})
	var rec recorder
	hs := rec.serve(func(w http.ResponseWriter, ev event) {
		switch ev.Action {
		case 200:
			<-release // slower than the forwarder's timeout
		case 201:
			http.Error(w, "boom", http.StatusInternalServerError)
		case 202:
			_, _ = w.Write([]byte("not json"))
		}
	})
	defer hs.Close()
	defer close(release)
	gw := startForwarding(t, hs.URL, 200*time.Millisecond)
	c := gw.DialFull(t, "alice")
	for action, want := range map[wire.Action]wire.ErrorCode{200: wire.CodeTimeout, 201: wire.CodeUnavailable, 202: wire.CodeUnavailable} {
		if f := c.Request(t, action, nil); f.Type != wire.TypeError || f.Code != want {
			t.Errorf("action %d: got %+v, want error code %d", action, f, want)
		}
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "localhost:8080", "http://"} {
		if _, err := backend.New(backend.Config{URL: u}); err == nil {
			t.Errorf("URL %q: got nil error, want one", u)
		}
	}
}
