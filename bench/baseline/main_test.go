package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/leakcheck"
)

// startServer runs serve on 127.0.0.1:0 and returns its address; cleanup
// stops it and checks that it returned nil and left no goroutines behind.
func startServer(t *testing.T) string {
	t.Helper()
	leakcheck.Check(t) // first, so that it runs after the server has stopped
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, config{sendQueue: 16}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: got %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not return within 10s of cancel")
		}
	})
	return ln.Addr().String()
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() }) // may already be closed by the test
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip writes one message and returns the next one read.
func roundTrip(t *testing.T, c *websocket.Conn, typ int, data []byte) (int, []byte) {
	t.Helper()
	if err := c.WriteMessage(typ, data); err != nil {
		t.Fatalf("write: %v", err)
	}
	return read(t, c)
}

func read(t *testing.T, c *websocket.Conn) (int, []byte) {
	t.Helper()
	typ, got, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, got
}

func action(code uint32, payload string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, code), payload...)
}

func TestEcho(t *testing.T) {
	addr := startServer(t)
	c := dial(t, "ws://"+addr+"/echo")
	tests := []struct {
		name string
		typ  int
		data []byte
	}{
		{"text", websocket.TextMessage, []byte("hello")},
		{"binary", websocket.BinaryMessage, []byte{0, 1, 2, 255}},
		{"empty", websocket.BinaryMessage, []byte{}},
		{"large", websocket.BinaryMessage, bytes.Repeat([]byte("x"), 200<<10)},
	}
	for _, tt := range tests {
		typ, got := roundTrip(t, c, tt.typ, tt.data)
		if typ != tt.typ || !bytes.Equal(got, tt.data) {
			t.Errorf("%s: got type %d, %d bytes, want type %d, %d bytes", tt.name, typ, len(got), tt.typ, len(tt.data))
		}
	}
}

func TestActions(t *testing.T) {
	addr := startServer(t)
	c := dial(t, "ws://"+addr+"/ws")
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"echo", action(7, "abc"), action(7, "abc")},
		{"no payload", action(1, ""), action(1, "")},
		{"short", []byte{1, 2, 3}, action(actionError, "wsgate: message shorter than 4 bytes")},
		{"empty", []byte{}, action(actionError, "wsgate: message shorter than 4 bytes")},
	}
	for _, tt := range tests {
		typ, got := roundTrip(t, c, websocket.BinaryMessage, tt.in)
		if typ != websocket.BinaryMessage || !bytes.Equal(got, tt.want) {
			t.Errorf("%s: got type %d %q, want type %d %q", tt.name, typ, got, websocket.BinaryMessage, tt.want)
		}
	}
}

// postPush returns the status, the delivered count and the error text.
func postPush(t *testing.T, addr, body string) (int, int, string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/api/v1/push", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Delivered int
		Error     string
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("push %s: status %d, body: %v", body, resp.StatusCode, err)
	}
	return resp.StatusCode, out.Delivered, out.Error
}

func TestPush(t *testing.T) {
	addr := startServer(t)
	alice := dial(t, "ws://"+addr+"/ws?user=alice")
	bob := dial(t, "ws://"+addr+"/ws?user=bob")
	echo := dial(t, "ws://"+addr+"/echo")
	// A reply proves the hub registered the connection before its pumps started.
	for _, c := range []*websocket.Conn{alice, bob} {
		roundTrip(t, c, websocket.BinaryMessage, action(1, ""))
	}
	roundTrip(t, echo, websocket.TextMessage, []byte("x"))

	// "aGk=" is base64 for "hi".
	status, n, _ := postPush(t, addr, `{"to":{"all":true},"action":120,"data":"aGk="}`)
	if status != http.StatusOK || n != 2 {
		t.Fatalf("push all: got status %d delivered %d, want 200 and 2", status, n)
	}
	for _, c := range []*websocket.Conn{alice, bob} {
		if _, got := read(t, c); !bytes.Equal(got, action(120, "hi")) {
			t.Errorf("push all: got %q, want %q", got, action(120, "hi"))
		}
	}
	status, n, _ = postPush(t, addr, `{"to":{"user":"bob"},"action":121,"data":""}`)
	if status != http.StatusOK || n != 1 {
		t.Fatalf("push bob: got status %d delivered %d, want 200 and 1", status, n)
	}
	if _, got := read(t, bob); !bytes.Equal(got, action(121, "")) {
		t.Errorf("push bob: got %q, want %q", got, action(121, ""))
	}
	// alice must not have received bob's push: her next message is her echo.
	if _, got := roundTrip(t, alice, websocket.BinaryMessage, action(2, "a")); !bytes.Equal(got, action(2, "a")) {
		t.Errorf("alice after push to bob: got %q, want %q", got, action(2, "a"))
	}
}

func TestPushRejectsBadBodies(t *testing.T) {
	addr := startServer(t)
	for _, body := range []string{
		`{"to":{},"action":1}`,
		`{"to":{"all":true,"user":"x"},"action":1}`,
		`{"to":{"all":true},"action":1,"data":"!!"}`,
		`not json`,
	} {
		if status, _, msg := postPush(t, addr, body); status != http.StatusBadRequest || msg == "" {
			t.Errorf("push %s: got status %d error %q, want 400 and an error", body, status, msg)
		}
	}
}

func TestStats(t *testing.T) {
	addr := startServer(t)
	c := dial(t, "ws://"+addr+"/echo")
	roundTrip(t, c, websocket.TextMessage, []byte("x"))
	resp, err := http.Get("http://" + addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Conns != 1 || s.Goroutines < 2 || s.HeapInuse == 0 {
		t.Errorf("stats: got %+v, want 1 conn, >= 2 goroutines, heap > 0", s)
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, config{sendQueue: 16}) }()
	c := dial(t, "ws://"+ln.Addr().String()+"/echo")
	roundTrip(t, c, websocket.TextMessage, []byte("x"))

	cancel()
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("read after shutdown: got %v, want close 1001", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return within 10s of cancel")
	}
	_ = c.Close()
}
