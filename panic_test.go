package wsgate_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// panickingHandler is named so that the logged stack can be checked for it.
func panickingHandler(context.Context, *wsgate.Request) ([]byte, error) {
	var p *wsgate.Request
	_ = p.Payload // nil dereference
	return nil, nil
}

func TestHandlerPanicLoggedWithStackAndCounted(t *testing.T) {
	leakcheck.Check(t)
	var logs syncBuffer
	cfg := anon()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ts := startServer(t, cfg, handle(t, 140, panickingHandler))
	c := dial(t, ts.wsURL("/ws"), nil)
	write(t, c, websocket.BinaryMessage, simple(140, ""))
	if _, got := read(t, c); !bytes.Equal(got, wire.AppendSimpleError(nil, 140, "internal error")) {
		t.Errorf("got reply %q, want the generic internal error", got)
	}
	if got := ts.Stats().Panics; got != 1 {
		t.Errorf("Stats.Panics: got %d, want 1", got)
	}
	out := logs.String()
	if !strings.Contains(out, "handler panicked") || !strings.Contains(out, "nil pointer dereference") ||
		!strings.Contains(out, "panickingHandler") {
		t.Errorf("got log %q, want the panic value and a stack naming panickingHandler", out)
	}
}

// A panic in code the engine runs (here the user's OnConnect, inside the
// gateway's open callback) closes that connection with 1011 and is logged
// with its stack and counted.
func TestCallbackPanicLoggedWithStackAndCounted(t *testing.T) {
	leakcheck.Check(t)
	var logs syncBuffer
	cfg := anon()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.OnConnect = func(context.Context, *wsgate.ConnInfo) { panic("onconnect bug") }
	ts := startServer(t, cfg)
	c := dial(t, ts.wsURL("/ws"), nil)
	if got := readClose(t, c); got != 1011 {
		t.Errorf("got close code %d, want 1011", got)
	}
	if got := ts.Stats().Panics; got != 1 {
		t.Errorf("Stats.Panics: got %d, want 1", got)
	}
	if out := logs.String(); !strings.Contains(out, "onconnect bug") || !strings.Contains(out, "TestCallbackPanicLoggedWithStackAndCounted") {
		t.Errorf("got log %q, want the panic value and a stack naming the OnConnect func", out)
	}
}
