package wsgate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

func TestClassicMessageOnWS(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, anon(), handle(t, 110, echoHandler))
	c := dial(t, ts.wsURL("/ws"), nil)
	write(t, c, websocket.BinaryMessage, classic)
	typ, got := read(t, c)
	if want := simple(110, "got 我们都好"); typ != websocket.BinaryMessage || !bytes.Equal(got, want) {
		t.Errorf("reply: got %v %x, want binary %x", typ, got, want)
	}
}

func TestSimpleFormErrors(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, anon(), handle(t, 110, echoHandler),
		handle(t, 120, func(context.Context, *wsgate.Request) ([]byte, error) {
			return nil, &wsgate.ReplyError{Code: wire.MinAppCode, Message: "no such thing"}
		}),
		handle(t, 130, func(context.Context, *wsgate.Request) ([]byte, error) {
			return nil, errors.New("database password is hunter2")
		}),
		handle(t, 140, func(context.Context, *wsgate.Request) ([]byte, error) {
			panic("boom")
		}))
	c := dial(t, ts.wsURL("/ws"), nil)
	tests := []struct {
		name string
		send []byte
		want []byte
	}{
		{"3-byte message", []byte{0, 0, 110}, wire.AppendSimpleError(nil, 0, wire.ErrShortMessage.Error())},
		{"conn still works", classic, simple(110, "got 我们都好")},
		{"unknown action", simple(999, "x"), wire.AppendSimpleError(nil, 999, "unknown action 999")},
		{"unknown system action", simple(50, ""), wire.AppendSimpleError(nil, 50, "unknown action 50")},
		{"reply error", simple(120, ""), wire.AppendSimpleError(nil, 120, "no such thing")},
		{"generic error", simple(130, ""), wire.AppendSimpleError(nil, 130, "internal error")},
		{"panic", simple(140, ""), wire.AppendSimpleError(nil, 140, "internal error")},
		{"ping", simple(wire.ActionPing, "hi"), simple(wire.ActionPing, "hi")},
	}
	for _, tt := range tests {
		write(t, c, websocket.BinaryMessage, tt.send)
		if _, got := read(t, c); !bytes.Equal(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := ts.Stats().HandlerErrors; got != 2 {
		t.Errorf("Stats.HandlerErrors: got %d, want 2 (generic error and panic)", got)
	}
}

func TestFullFormHelloAndErrors(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.MaxMessageSize = 4096
	cfg.PingInterval = 20 * time.Second
	ts := startServer(t, cfg, handle(t, 110, echoHandler))
	c := dial(t, ts.wsURL("/ws"), fullForm)
	hello := readFrame(t, c)
	if hello.Type != wire.TypeHello || len(hello.ConnID) == 0 || hello.MaxMessage != 4096 || hello.Heartbeat != 20 {
		t.Fatalf("hello: got %+v, want a hello with conn id, MaxMessage 4096, Heartbeat 20", hello)
	}
	write(t, c, websocket.BinaryMessage, request(110, 7, "我们都好"))
	if f := readFrame(t, c); f.Type != wire.TypeReply || f.ID != 7 || string(f.Payload) != "got 我们都好" {
		t.Errorf("reply: got %+v, want reply 7 %q", f, "got 我们都好")
	}
	write(t, c, websocket.BinaryMessage, request(110, 0, "fire and forget"))
	write(t, c, websocket.BinaryMessage, request(999, 8, ""))
	f := readFrame(t, c)
	if f.Type != wire.TypeError || f.ID != 8 || f.Code != wire.CodeUnknownAction || string(f.Payload) != "unknown action 999" {
		t.Errorf("unknown action: got %+v, want error 8 code %d", f, wire.CodeUnknownAction)
	}
	write(t, c, websocket.BinaryMessage, []byte{byte(wire.TypeReply), 0, 0, 0, 1})
	if got := readClose(t, c); got != websocket.StatusProtocolError {
		t.Errorf("reply frame from a client: got close %d, want 1002", got)
	}
}

func TestJSONForm(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, anon(), handle(t, 110, echoHandler))
	c := dial(t, ts.wsURL("/ws"), &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolJSON}})
	typ, data := read(t, c)
	var hello wire.Frame
	if err := wire.DecodeJSON(data, &hello); typ != websocket.TextMessage || err != nil || hello.Type != wire.TypeHello {
		t.Fatalf("hello: got %v %s (%v), want a JSON hello", typ, data, err)
	}
	write(t, c, websocket.TextMessage, []byte(`{"type":"request","id":3,"action":110,"text":"hi"}`))
	if _, data := read(t, c); string(data) != `{"type":"reply","id":3,"text":"got hi"}` {
		t.Errorf("reply: got %s", data)
	}
	write(t, c, websocket.TextMessage, []byte(`{"type":"request","id":4,"acton":110}`))
	var f wire.Frame
	if _, data := read(t, c); wire.DecodeJSON(data, &f) != nil || f.Type != wire.TypeError || f.Code != wire.CodeBadRequest {
		t.Errorf("typo: got %s, want an error frame with code %d", data, wire.CodeBadRequest)
	}
	if _, err := ts.Push(context.Background(), wsgate.Target{All: true}, 120, []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, data := read(t, c); string(data) != `{"type":"push","action":120,"seq":0,"json":{"n":1}}` {
		t.Errorf("push: got %s", data)
	}
}

func TestOversizeMessage(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.MaxMessageSize = 1024
	ts := startServer(t, cfg, handle(t, 110, echoHandler))
	c := dial(t, ts.wsURL("/ws"), nil)
	write(t, c, websocket.BinaryMessage, simple(110, string(make([]byte, 1021))))
	if got := readClose(t, c); got != websocket.StatusMessageTooBig {
		t.Errorf("close code: got %d, want 1009", got)
	}
}

// TestConcurrentRequests pipelines 1,000 full-form requests on one
// connection to a handler that answers after a random delay, so replies
// come back out of order, and checks each reply matches its request.
func TestConcurrentRequests(t *testing.T) {
	leakcheck.Check(t)
	const n = 1000
	cfg := anon()
	cfg.MaxInflight = n
	cfg.MessageRate = -1
	ts := startServer(t, cfg, handle(t, 110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		return append([]byte("re:"), req.Payload...), nil
	}))
	c := dial(t, ts.wsURL("/ws"), fullForm)
	readFrame(t, c) // hello
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		for id := uint32(1); id <= n; id++ {
			if err := c.Write(ctx, websocket.BinaryMessage, request(110, id, "q"+strconv.Itoa(int(id)))); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	seen := make(map[uint32]bool, n)
	for range n {
		f := readFrame(t, c)
		if f.Type != wire.TypeReply || string(f.Payload) != "re:q"+strconv.Itoa(int(f.ID)) || seen[f.ID] {
			t.Fatalf("reply %d: got %+v, want one reply %q per id", len(seen), f, "re:q"+strconv.Itoa(int(f.ID)))
		}
		seen[f.ID] = true
	}
	if err := <-errc; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if len(seen) != n {
		t.Errorf("replies: got %d distinct ids, want %d", len(seen), n)
	}
}

func TestMaxInflight(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.MaxInflight = 2
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(2)
	ts := startServer(t, cfg, handle(t, 110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		started.Done()
		<-release
		return nil, nil
	}))
	c := dial(t, ts.wsURL("/ws"), fullForm)
	readFrame(t, c) // hello
	write(t, c, websocket.BinaryMessage, request(110, 1, ""))
	write(t, c, websocket.BinaryMessage, request(110, 2, ""))
	started.Wait()
	write(t, c, websocket.BinaryMessage, request(110, 3, ""))
	if f := readFrame(t, c); f.Type != wire.TypeError || f.ID != 3 || f.Code != wire.CodeRateLimited {
		t.Errorf("third request: got %+v, want error 3 code rate-limited", f)
	}
	close(release)
	got := map[uint32]bool{}
	for range 2 {
		f := readFrame(t, c)
		got[f.ID] = f.Type == wire.TypeReply
	}
	if !got[1] || !got[2] {
		t.Errorf("replies after release: got %v, want replies to 1 and 2", got)
	}
}

func TestHandlerContext(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.HandlerTimeout = 50 * time.Millisecond
	ts := startServer(t, cfg, handle(t, 110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		info, ok := wsgate.ConnFrom(ctx)
		if !ok || info != req.Conn {
			return nil, fmt.Errorf("ConnFrom: got %+v %v, want %+v", info, ok, req.Conn)
		}
		return []byte(info.ID + " " + info.Protocol), nil
	}), handle(t, 111, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	c := dial(t, ts.wsURL("/ws"), fullForm)
	hello := readFrame(t, c)
	write(t, c, websocket.BinaryMessage, request(110, 1, ""))
	if f := readFrame(t, c); string(f.Payload) != string(hello.ConnID)+" wsgate.v1" {
		t.Errorf("ConnInfo: got %q, want %q", f.Payload, string(hello.ConnID)+" wsgate.v1")
	}
	write(t, c, websocket.BinaryMessage, request(111, 2, ""))
	if f := readFrame(t, c); f.Type != wire.TypeError || f.Code != wire.CodeTimeout {
		t.Errorf("handler past its deadline: got %+v, want error code timeout", f)
	}
}

func TestMessageRate(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.MessageRate = 5 // burst 10
	ts := startServer(t, cfg)
	c := dial(t, ts.wsURL("/ws"), nil)
	for range 30 {
		if err := c.WriteMessage(websocket.BinaryMessage, simple(wire.ActionPing, "")); err != nil {
			break // the server closed us already
		}
	}
	if got := readClose(t, c); got != 4002 {
		t.Errorf("close code: got %d, want 4002", got)
	}
	if got := ts.Stats().RateLimited; got != 1 {
		t.Errorf("Stats.RateLimited: got %d, want 1", got)
	}
}

func TestHandleReserved(t *testing.T) {
	srv, err := wsgate.New(anon())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(wire.ActionSubscribe, echoHandler); err == nil {
		t.Error("Handle(1): got nil error, want reserved")
	}
	if err := srv.Handle(100, nil); err == nil {
		t.Error("Handle with nil handler: got nil error, want one")
	}
}

func TestResumeMustComeFirst(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, anon(), handle(t, 110, echoHandler))
	resume, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypeResume, Seq: 41})
	ack, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypeAck, Seq: 41})

	c := dial(t, ts.wsURL("/ws"), fullForm)
	readFrame(t, c) // hello
	write(t, c, websocket.BinaryMessage, resume)
	write(t, c, websocket.BinaryMessage, ack)
	write(t, c, websocket.BinaryMessage, request(110, 1, "x"))
	if f := readFrame(t, c); f.Type != wire.TypeReply || f.ID != 1 {
		t.Errorf("request after resume and ack: got %+v, want reply 1 (neither answers)", f)
	}
	write(t, c, websocket.BinaryMessage, resume)
	if got := readClose(t, c); got != websocket.StatusProtocolError {
		t.Errorf("resume not first: got close %d, want 1002", got)
	}
}

func TestSimpleFormJSON(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, anon(), handle(t, 110, echoHandler))
	c := dial(t, ts.wsURL("/ws"), nil)
	write(t, c, websocket.TextMessage, []byte(`{"type":"request","id":9,"action":110,"text":"我们都好"}`))
	if typ, got := read(t, c); typ != websocket.TextMessage || string(got) != `{"type":"reply","id":9,"text":"got 我们都好"}` {
		t.Errorf("JSON request on the simple form: got %v %s", typ, got)
	}
	write(t, c, websocket.TextMessage, []byte(`{"type":"ack","seq":1}`))
	var f wire.Frame
	if _, got := read(t, c); wire.DecodeJSON(got, &f) != nil || f.Type != wire.TypeError || f.ID != 0 || f.Code != wire.CodeBadRequest {
		t.Errorf("JSON ack on the simple form: got %s, want an error frame with id 0, code 2", got)
	}
	write(t, c, websocket.BinaryMessage, classic)
	if _, got := read(t, c); !bytes.Equal(got, simple(110, "got 我们都好")) {
		t.Errorf("connection after the error: got %q", got)
	}
}
