package websocket_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

// lockedBuffer is a bytes.Buffer safe for a logger and a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// panicInOnMessage is a named function so that the stack can be checked
// for it.
func panicInOnMessage(_ *websocket.Conn, _ websocket.MessageType, data []byte) {
	_ = data[len(data)] // a real runtime panic (index out of range), not a string
}

func TestPanicIsLoggedCountedAndReported(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		var logs lockedBuffer
		type report struct {
			value any
			stack string
		}
		reports := make(chan report, 4)
		cfg := websocket.Config{
			Mode:   mode,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			OnPanic: func(c *websocket.Conn, value any, stack []byte) {
				reports <- report{value, string(stack)}
				panic("a panicking OnPanic is ignored")
			},
		}
		srv, url := rtServer(t, cfg, websocket.Handler{OnMessage: panicInOnMessage})
		c := rtDial(t, url, nil)
		if err := c.WriteMessage(websocket.TextMessage, []byte("boom")); err != nil {
			t.Fatalf("write: %v", err)
		}
		if got := websocket.CloseStatus(rtReadErr(t, c)); got != websocket.StatusInternalError {
			t.Errorf("got close status %d, want 1011", got)
		}
		var r report
		select {
		case r = <-reports: // sent before the 1011
		case <-time.After(rtLimit):
			t.Fatalf("OnPanic not called within %v", rtLimit)
		}
		if err, ok := r.value.(error); !ok || !strings.Contains(err.Error(), "index out of range") {
			t.Errorf("got panic value %v, want the runtime error", r.value)
		}
		if !strings.Contains(r.stack, "panicInOnMessage") {
			t.Errorf("got stack without the panicking function:\n%s", r.stack)
		}
		if got := srv.Panics(); got != 1 {
			t.Errorf("got Panics() = %d, want 1", got)
		}
		var rec struct {
			Msg      string `json:"msg"`
			Level    string `json:"level"`
			Callback string `json:"callback"`
			Panic    string `json:"panic"`
			Stack    string `json:"stack"`
		}
		line, _, _ := strings.Cut(logs.String(), "\n")
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Level != "ERROR" || rec.Callback != "OnMessage" || !strings.Contains(rec.Panic, "index out of range") ||
			!strings.Contains(rec.Stack, "panicInOnMessage") {
			t.Errorf("got log record %+v, want level ERROR, callback OnMessage, the panic value and its stack", rec)
		}
	})
}

func TestPanicInOpenAndCloseCounted(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		srv, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnOpen:  func(*websocket.Conn) { panic("open") },
			OnClose: func(*websocket.Conn, error) { panic("close") },
		})
		c := rtDial(t, url, nil)
		if got := websocket.CloseStatus(rtReadErr(t, c)); got != websocket.StatusInternalError {
			t.Errorf("got close status %d, want 1011", got)
		}
		waitFor(t, "OnClose to have run", func() bool { return srv.Len() == 0 })
		if got := srv.Panics(); got != 2 {
			t.Errorf("got Panics() = %d, want 2 (OnOpen and OnClose)", got)
		}
	})
}
