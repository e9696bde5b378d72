// Package gatewaytest starts a real wsgate gateway on 127.0.0.1 for tests and dials
// real WebSocket connections to it, in the manner of net/http/httptest. Nothing in it
// is a mock: the gateway, the engine and the sockets are the production ones.
package gatewaytest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// Timeout bounds every wait in the helpers.
const Timeout = 10 * time.Second

// Gateway is a running gateway.
type Gateway struct {
	*wsgate.Server
	Addr string // host:port
	URL  string // http://host:port
	WS   string // ws://host:port
}

// UserFromQuery is an Authenticate hook that trusts the `user` query parameter. Tests
// only: it lets a test open connections as any user without minting tokens.
func UserFromQuery(_ context.Context, r *http.Request) (wsgate.Identity, error) {
	u := r.URL.Query().Get("user")
	if u == "" {
		return wsgate.Identity{}, errors.New("wsgate: test gateway needs ?user=")
	}
	var topics []string
	if t, ok := r.URL.Query()["topics"]; ok {
		topics = strings.Split(t[0], ",")
	}
	return wsgate.Identity{UserID: u, Topics: topics}, nil
}

// Start runs a gateway built from cfg (Authenticate defaults to UserFromQuery) and
// stops it when the test ends. setup may register handlers before it serves.
func Start(t testing.TB, cfg wsgate.Config, setup func(*wsgate.Server)) *Gateway {
	t.Helper()
	if cfg.Authenticate == nil && !cfg.InsecureNoAuth {
		cfg.Authenticate = UserFromQuery
	}
	srv, err := wsgate.New(cfg)
	if err != nil {
		t.Fatalf("wsgate.New: %v", err)
	}
	if setup != nil {
		setup(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, wsgate.ErrServerClosed) {
				t.Errorf("Serve returned %v", err)
			}
		case <-time.After(Timeout):
			t.Errorf("gateway did not stop within %v", Timeout)
		}
	})
	addr := ln.Addr().String()
	return &Gateway{Server: srv, Addr: addr, URL: "http://" + addr, WS: "ws://" + addr}
}

// DialSimple opens a simple-form connection (no subprotocol) to /ws as user.
// The gateway registers a connection before its 101, so it is reachable by
// pushes as soon as this returns.
func (g *Gateway) DialSimple(t testing.TB, user string) *websocket.Conn {
	t.Helper()
	return g.dial(t, "/ws?user="+user, nil)
}

func (g *Gateway) dial(t testing.TB, path string, protocols []string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, g.WS+path, nil, &websocket.DialOptions{Subprotocols: protocols})
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() }) // the test may have closed it already
	return c
}

// FullConn is a full-form (wsgate.v1) connection.
type FullConn struct {
	*websocket.Conn
	Hello wire.Frame
	next  uint32
}

// DialFull opens a full-form connection to /ws as user and reads its hello.
func (g *Gateway) DialFull(t testing.TB, user string) *FullConn {
	t.Helper()
	return g.dialFull(t, "/ws?user="+user)
}

// DialFullAt is DialFull for a client that resumes from seq of epoch.
func (g *Gateway) DialFullAt(t testing.TB, user string, epoch, seq uint64) *FullConn {
	t.Helper()
	return g.dialFull(t, "/ws?user="+user+"&"+wire.ResumeParam+"="+string(wire.FormatResume(nil, epoch, seq)))
}

func (g *Gateway) dialFull(t testing.TB, path string) *FullConn {
	t.Helper()
	c := &FullConn{Conn: g.dial(t, path, []string{wire.Subprotocol})}
	c.Hello = c.ReadFrame(t)
	if c.Hello.Type != wire.TypeHello {
		t.Fatalf("first frame: got type %d, want hello", c.Hello.Type)
	}
	return c
}

// ReadFrame reads and decodes the next full-form frame; its slices are copies.
func (c *FullConn) ReadFrame(t testing.TB) wire.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if typ != websocket.BinaryMessage {
		t.Fatalf("got message type %v, want binary", typ)
	}
	var f wire.Frame
	if err := wire.DecodeFrame(append([]byte(nil), b...), &f); err != nil {
		t.Fatalf("decode frame % x: %v", b, err)
	}
	return f
}

// Request sends a request frame and returns the next frame, which must answer it.
func (c *FullConn) Request(t testing.TB, action wire.Action, payload []byte) wire.Frame {
	t.Helper()
	c.next++
	b, err := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypeRequest, Action: action, ID: c.next, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, b); err != nil {
		t.Fatalf("write request: %v", err)
	}
	f := c.ReadFrame(t)
	if f.ID != c.next {
		t.Fatalf("got frame %+v, want the answer to request %d", f, c.next)
	}
	return f
}

// WaitFor polls cond until it holds, failing the test after Timeout. A connection
// is registered on the engine's executor just after its 101 is written, so a test
// that counts connections right after dialing must wait for them.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
