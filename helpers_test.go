package wsgate_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// testServer is a wsgate.Server serving on 127.0.0.1:0.
type testServer struct {
	*wsgate.Server
	addr   string // host:port
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Serve's result, set before done closes
}

// wsURL returns the ws:// URL of path.
func (ts *testServer) wsURL(path string) string { return "ws://" + ts.addr + path }

// startServer serves cfg until the test ends, then shuts down and checks
// that Serve returned nil. setup runs before serving (register handlers).
func startServer(t *testing.T, cfg wsgate.Config, setup ...func(*wsgate.Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return startServerOn(t, cfg, ln, setup...)
}

// startServerOn is startServer on a given listener.
func startServerOn(t *testing.T, cfg wsgate.Config, ln net.Listener, setup ...func(*wsgate.Server)) *testServer {
	t.Helper()
	srv, err := wsgate.New(cfg)
	if err != nil {
		_ = ln.Close() // the test is over
		t.Fatalf("New: %v", err)
	}
	for _, f := range setup {
		f(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: srv, addr: ln.Addr().String(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(ts.done)
		ts.err = srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		if err := ts.wait(); err != nil {
			t.Errorf("Serve: got %v, want nil", err)
		}
	})
	return ts
}

// wait returns Serve's result once it has returned.
func (ts *testServer) wait() error {
	select {
	case <-ts.done:
		return ts.err
	case <-time.After(2 * testTimeout):
		return errors.New("Serve did not return")
	}
}

// dial opens a pull-mode client connection, closed when the test ends.
func dial(t *testing.T, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	c, err := dialErr(t, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return c
}

// dialErr is dial that returns the handshake error (with the status).
func dialErr(t *testing.T, url string, opts *websocket.DialOptions) (*websocket.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil, opts)
	if err != nil {
		if resp != nil {
			return nil, &statusError{code: resp.StatusCode, header: resp.Header, err: err}
		}
		return nil, err
	}
	t.Cleanup(func() {
		_ = c.CloseNow() // may be closed already
		select {
		case <-c.Done():
		case <-time.After(testTimeout):
			t.Error("client connection did not finish")
		}
	})
	return c, nil
}

// statusError is a refused handshake.
type statusError struct {
	code   int
	header http.Header
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }

// statusOf returns the HTTP status of a refused handshake, or 0.
func statusOf(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return 0
}

// fullForm asks for the binary full form.
var fullForm = &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}}

// read returns the next message or fails the test.
func read(t *testing.T, c *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, data
}

// readFrame reads one binary full-form frame.
func readFrame(t *testing.T, c *websocket.Conn) wire.Frame {
	t.Helper()
	typ, data := read(t, c)
	if typ != websocket.BinaryMessage {
		t.Fatalf("message type: got %v, want binary", typ)
	}
	var f wire.Frame
	if err := wire.DecodeFrame(data, &f); err != nil {
		t.Fatalf("decode frame %x: %v", data, err)
	}
	f.Payload = bytes.Clone(f.Payload)
	return f
}

// readClose reads until the connection ends and returns its close code.
func readClose(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	code := readCloseQuiet(c)
	if code == -2 {
		t.Fatal("connection did not close")
	}
	return code
}

// readCloseQuiet is readClose for goroutines: it reports -2 on timeout
// instead of failing the test.
func readCloseQuiet(c *websocket.Conn) websocket.StatusCode {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				return -2
			}
			return websocket.CloseStatus(err)
		}
	}
}

// write sends a binary message or fails the test.
func write(t *testing.T, c *websocket.Conn, typ websocket.MessageType, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.Write(ctx, typ, data); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// simple encodes a simple-form message.
func simple(a wire.Action, payload string) []byte {
	return wire.AppendSimple(nil, a, []byte(payload))
}

// request encodes a full-form request.
func request(a wire.Action, id uint32, payload string) []byte {
	b, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypeRequest, Action: a, ID: id, Payload: []byte(payload)})
	return b
}

// classic is the 16-byte message classic clients send: uint32(110) followed
// by "我们都好" in UTF-8.
var classic = simple(110, "我们都好")

// echoHandler answers with "got " + payload.
func echoHandler(_ context.Context, req *wsgate.Request) ([]byte, error) {
	return append([]byte("got "), req.Payload...), nil
}

// handle registers h for a, failing the test on error.
func handle(t *testing.T, a wire.Action, h wsgate.HandlerFunc) func(*wsgate.Server) {
	return func(s *wsgate.Server) {
		if err := s.Handle(a, h); err != nil {
			t.Fatalf("Handle(%d): %v", a, err)
		}
	}
}

// anon is the configuration most tests start from.
func anon() wsgate.Config { return wsgate.Config{InsecureNoAuth: true} }

// readCloseReason reads until the connection ends and returns the close
// frame's code and reason.
func readCloseReason(t *testing.T, c *websocket.Conn) (websocket.StatusCode, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			t.Fatal("connection did not close")
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		return websocket.CloseStatus(err), ""
	}
}
