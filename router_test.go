package wsgate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
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

// TestPipelinedRequests pipelines 1,000 full-form requests on one
// connection to a handler that answers after a random delay and checks that
// every request gets its own reply, in request order: a connection's
// handler calls run one at a time, in arrival order.
func TestPipelinedRequests(t *testing.T) {
	leakcheck.Check(t)
	const n = 1000
	cfg := anon()
	cfg.MessageRate = -1
	ts := startServer(t, cfg, handle(t, 110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
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
	for id := uint32(1); id <= n; id++ {
		f := readFrame(t, c)
		if want := "re:q" + strconv.Itoa(int(id)); f.Type != wire.TypeReply || f.ID != id || string(f.Payload) != want {
			t.Fatalf("reply %d: got %+v, want reply %d %q", id, f, id, want)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("writer: %v", err)
	}
}

// TestSimpleFormRepliesInOrder sends requests for several actions at once
// on the simple form, which has no request ids, and checks that the
// replies come back in request order even when earlier ones take longer.
func TestSimpleFormRepliesInOrder(t *testing.T) {
	leakcheck.Check(t)
	slow := func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		time.Sleep(20 * time.Millisecond)
		return req.Payload, nil
	}
	ts := startServer(t, anon(), handle(t, 110, slow), handle(t, 111, echoHandler))
	c := dial(t, ts.wsURL("/ws"), nil)
	want := [][]byte{simple(110, "1"), simple(111, "got 2"), simple(wire.ActionPing, "3"), simple(110, "4"), simple(111, "got 5")}
	for _, m := range [][]byte{simple(110, "1"), simple(111, "2"), simple(wire.ActionPing, "3"), simple(110, "4"), simple(111, "5")} {
		write(t, c, websocket.BinaryMessage, m)
	}
	for i, w := range want {
		if _, got := read(t, c); !bytes.Equal(got, w) {
			t.Errorf("reply %d: got %q, want %q", i, got, w)
		}
	}
}

// TestBlockedHandlerStallsOnlyItsConnection blocks a handler on one
// connection: that connection's next request waits for it, while another
// connection is served meanwhile.
func TestBlockedHandlerStallsOnlyItsConnection(t *testing.T) {
	leakcheck.Check(t)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	ts := startServer(t, anon(), handle(t, 110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		started <- struct{}{}
		select {
		case <-release:
			return []byte("released"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}), handle(t, 111, echoHandler))
	a := dial(t, ts.wsURL("/ws"), nil)
	b := dial(t, ts.wsURL("/ws"), nil)
	write(t, a, websocket.BinaryMessage, simple(110, ""))
	<-started
	write(t, a, websocket.BinaryMessage, simple(111, "a"))
	for i := range 3 {
		q := "b" + strconv.Itoa(i)
		write(t, b, websocket.BinaryMessage, simple(111, q))
		if _, got := read(t, b); !bytes.Equal(got, simple(111, "got "+q)) {
			t.Fatalf("other connection while a handler blocks: got %q, want %q", got, simple(111, "got "+q))
		}
	}
	if got, ok := readWithin(a, 50*time.Millisecond); ok {
		t.Fatalf("blocked connection: got %q before its first request was answered", got)
	}
	close(release)
	for _, want := range [][]byte{simple(110, "released"), simple(111, "got a")} {
		if _, got := read(t, a); !bytes.Equal(got, want) {
			t.Errorf("blocked connection after release: got %q, want %q", got, want)
		}
	}
}

// TestMaxHandlersBackpressure occupies every handler goroutine and checks
// that a third connection's requests wait instead of failing: more than
// the engine's inbox holds, so its reading pauses too, and after the
// release every one of them is answered, in order.
func TestMaxHandlersBackpressure(t *testing.T) {
	leakcheck.Check(t)
	const queued = 100 // more than the engine's inbox limit (32)
	cfg := anon()
	cfg.MaxHandlers = 2
	cfg.MessageRate = -1
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	ts := startServer(t, cfg, handle(t, 110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		started <- struct{}{}
		<-release
		return nil, nil
	}), handle(t, 111, echoHandler))
	conns := []*websocket.Conn{dial(t, ts.wsURL("/ws"), nil), dial(t, ts.wsURL("/ws"), nil), dial(t, ts.wsURL("/ws"), nil)}
	gatewaytest.WaitFor(t, "3 registered conns", func() bool { return ts.Stats().Conns == len(conns) })
	write(t, conns[0], websocket.BinaryMessage, simple(110, ""))
	write(t, conns[1], websocket.BinaryMessage, simple(110, ""))
	<-started
	<-started
	c := conns[2]
	for i := range queued {
		write(t, c, websocket.BinaryMessage, simple(111, strconv.Itoa(i)))
	}
	if got, ok := readWithin(c, 50*time.Millisecond); ok {
		t.Fatalf("with every handler goroutine busy: got %q, want no reply yet", got)
	}
	close(release)
	for _, b := range conns[:2] {
		if _, got := read(t, b); !bytes.Equal(got, simple(110, "")) {
			t.Errorf("released handler: got %q, want %q", got, simple(110, ""))
		}
	}
	for i := range queued {
		want := simple(111, "got "+strconv.Itoa(i))
		if _, got := read(t, c); !bytes.Equal(got, want) {
			t.Fatalf("queued request %d: got %q, want %q", i, got, want)
		}
	}
	if got := ts.Stats().Requests; got != queued+2 {
		t.Errorf("Stats.Requests: got %d, want %d", got, queued+2)
	}
}

// readWithin reads one message from c if one arrives within d.
func readWithin(c *websocket.Conn, d time.Duration) ([]byte, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, data, err := c.Read(ctx)
	return data, err == nil
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
	if err := srv.Handle(wire.SimpleErrorBit|110, echoHandler); err == nil {
		t.Error("Handle(0x8000006e): got nil error, want reserved (the high bit marks error replies)")
	}
	if err := srv.Handle(100, nil); err == nil {
		t.Error("Handle with nil handler: got nil error, want one")
	}
}

// TestResumeFrameGone: an ack answers nothing; the resume frame of the
// old protocol is a protocol error whose reason says where the position
// goes now; a malformed resume parameter is refused before the upgrade.
func TestResumeFrameGone(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, anon(), handle(t, 110, echoHandler))
	ack, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypeAck, Seq: 41})

	c := dial(t, ts.wsURL("/ws"), fullForm)
	readFrame(t, c) // hello
	write(t, c, websocket.BinaryMessage, ack)
	write(t, c, websocket.BinaryMessage, request(110, 1, "x"))
	if f := readFrame(t, c); f.Type != wire.TypeReply || f.ID != 1 {
		t.Errorf("request after an ack: got %+v, want reply 1 (the ack answers nothing)", f)
	}
	write(t, c, websocket.BinaryMessage, []byte{7, 0, 0, 0, 0, 0, 0, 0, 41})
	code, reason := readCloseReason(t, c)
	if code != websocket.StatusProtocolError || !strings.Contains(reason, "?resume=") {
		t.Errorf("resume frame: got close %d %q, want 1002 naming ?resume=", code, reason)
	}
	for _, bad := range []string{"x", "1", "1.", ".1", "1.2.3", "-1.2", "18446744073709551616.1"} {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		c, resp, err := websocket.Dial(ctx, ts.wsURL("/ws?resume="+url.QueryEscape(bad)), nil, fullForm)
		cancel()
		if err == nil {
			_ = c.CloseNow()
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("resume=%q: got %v, %v; want HTTP 400", bad, resp, err)
		}
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

// TestShutdownCancelsBlockedHandlers runs a handler that waits for its ctx
// with a long HandlerTimeout: when Shutdown's ctx expires, the handler's
// ctx is cancelled, so Shutdown returns (reporting the expiry) instead of
// waiting for the handler's own deadline.
func TestShutdownCancelsBlockedHandlers(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.HandlerTimeout = time.Hour
	started := make(chan struct{})
	ended := make(chan error, 1)
	ts := startServer(t, cfg, handle(t, 110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}))
	c := dial(t, ts.wsURL("/ws"), nil)
	write(t, c, websocket.BinaryMessage, simple(110, ""))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: got %v, want a deadline exceeded error", err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx: got %v, want context.Canceled", err)
		}
	default:
		t.Error("Shutdown returned before the handler did")
	}
}

// TestHandlerOwnsPayload: a handler may keep Request.Payload after it
// returns, small or large (a small one is copied into the call, a large one
// on its own), and append to it, without the engine's next message or the
// next call changing what it kept; an empty payload arrives empty.
func TestHandlerOwnsPayload(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.MessageRate = -1
	var mu sync.Mutex
	var kept [][]byte
	ts := startServer(t, cfg, handle(t, 110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		kept = append(kept, req.Payload)
		_ = append(req.Payload, "tail"...) // must not reach another call's payload
		return nil, nil
	}))
	c := dial(t, ts.wsURL("/ws"), nil)
	var sent [][]byte
	for i, n := range []int{0, 1, 63, 64, 65, 1000, 64, 3} {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		sent = append(sent, p)
		write(t, c, websocket.BinaryMessage, simple(110, string(p)))
	}
	for i := range sent {
		if _, got := read(t, c); !bytes.Equal(got, simple(110, "")) {
			t.Fatalf("reply %d: got %q, want an empty reply", i, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(kept) != len(sent) {
		t.Fatalf("handler kept %d payloads, want %d", len(kept), len(sent))
	}
	for i := range sent {
		if !bytes.Equal(kept[i], sent[i]) {
			t.Errorf("payload %d: kept %q, want %q", i, kept[i], sent[i])
		}
	}
}
