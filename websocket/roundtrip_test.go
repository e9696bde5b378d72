package websocket_test

// Client ↔ server round trips through the public API, in reactor and
// blocking mode, with a goroutine-leak check on every test.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

// rtLimit bounds every wait in these tests: liveness, not speed.
const rtLimit = 10 * time.Second

var rtModes = []struct {
	name string
	mode websocket.Mode
}{
	{"reactor", websocket.ModeReactor},
	{"blocking", websocket.ModeBlocking},
}

// forEachMode runs f as a subtest once per server I/O mode.
func forEachMode(t *testing.T, f func(t *testing.T, mode websocket.Mode)) {
	t.Helper()
	for _, m := range rtModes {
		t.Run(m.name, func(t *testing.T) { f(t, m.mode) })
	}
}

// rtEachMode runs f once per server I/O mode, each with a leak check.
func rtEachMode(t *testing.T, f func(t *testing.T, mode websocket.Mode)) {
	t.Helper()
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		leakcheck.Check(t)
		f(t, mode)
	})
}

// rtServer runs a Server behind httptest and returns it with its ws:// URL.
// Cleanup closes the listener and shuts the server down.
func rtServer(t *testing.T, cfg websocket.Config, h websocket.Handler) (*websocket.Server, string) {
	t.Helper()
	srv := websocket.NewServer(cfg, h)
	return srv, rtURL(rtServe(t, srv))
}

// rtServe serves srv behind httptest on 127.0.0.1, for tests that need the
// httptest.Server itself (a raw client dials its listener). Cleanup closes
// the listener, then shuts srv down.
func rtServe(t *testing.T, srv *websocket.Server) *httptest.Server {
	t.Helper()
	rtShutdownOnCleanup(t, srv) // registered first: cleanups run last-registered first
	return rtListen(t, srv, httptest.NewServer)
}

// rtListen serves srv with start (httptest.NewServer or NewTLSServer);
// cleanup closes the listener but leaves srv running, for tests that shut
// it down themselves.
func rtListen(t *testing.T, srv *websocket.Server, start func(http.Handler) *httptest.Server) *httptest.Server {
	t.Helper()
	hs := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = srv.Accept(w, r, nil) // a failed handshake has been answered already
	}))
	t.Cleanup(hs.Close)
	return hs
}

// rtShutdownOnCleanup shuts srv down with 1001 at cleanup and fails the
// test if that does not finish within rtLimit.
func rtShutdownOnCleanup(t *testing.T, srv *websocket.Server) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
		defer cancel()
		if err := srv.Shutdown(ctx, websocket.StatusGoingAway, ""); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
}

// rtURL is the ws:// URL of hs.
func rtURL(hs *httptest.Server) string {
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// rtEcho echoes every message with its type.
func rtEcho() websocket.Handler {
	return websocket.Handler{OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
		_ = c.WriteMessage(typ, data) // fails only when closing; the client notices
	}}
}

// rtDial opens a pull-mode client; cleanup drops it and waits for it.
func rtDial(t *testing.T, url string, cfg *websocket.Config) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, cfg, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() {
		_ = c.CloseNow() // may be closed already
		select {
		case <-c.Done():
		case <-time.After(rtLimit):
			t.Errorf("client connection not done %v after CloseNow", rtLimit)
		}
	})
	return c
}

// rtRead reads one message within rtLimit.
func rtRead(t *testing.T, c *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, data
}

// rtReadErr reads until the connection ends and returns why.
func rtReadErr(t *testing.T, c *websocket.Conn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			return err
		}
	}
}

func rtPayload(n int, text bool) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		if text {
			b[i] = byte('a' + rng.IntN(26))
		} else {
			b[i] = byte(rng.Uint32())
		}
	}
	return b
}

func TestRoundTripSizes(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20}
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
				_, url := rtServer(t, websocket.Config{Mode: mode, Compression: compress}, rtEcho())
				ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
				defer cancel()
				c, resp, err := websocket.Dial(ctx, url, &websocket.Config{Compression: compress}, nil)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer func() { _ = c.CloseNow(); <-c.Done() }()
				ext := resp.Header.Get("Sec-WebSocket-Extensions")
				if got := strings.Contains(ext, "permessage-deflate"); got != compress {
					t.Fatalf("got Sec-WebSocket-Extensions %q, want permessage-deflate negotiated = %v", ext, compress)
				}
				for _, n := range sizes {
					for _, typ := range []websocket.MessageType{websocket.TextMessage, websocket.BinaryMessage} {
						want := rtPayload(n, typ == websocket.TextMessage)
						if err := c.WriteMessage(typ, want); err != nil {
							t.Fatalf("write %d bytes: %v", n, err)
						}
						gotTyp, got := rtRead(t, c)
						if gotTyp != typ || !bytes.Equal(got, want) {
							t.Fatalf("size %d type %d: got type %d, %d bytes (equal=%v), want the same message back",
								n, typ, gotTyp, len(got), bytes.Equal(got, want))
						}
					}
				}
			})
		})
	}
}

func TestRoundTripPipelined(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		_, url := rtServer(t, websocket.Config{Mode: mode}, rtEcho())
		c := rtDial(t, url, nil)
		const n = 200
		for i := range n {
			if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("msg %d", i))); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		for i := range n {
			_, got := rtRead(t, c)
			if want := fmt.Sprintf("msg %d", i); string(got) != want {
				t.Fatalf("message %d: got %q, want %q", i, got, want)
			}
		}
	})
}

// TestRoundTripEventClient drives the server with a Dialer client (event
// mode, the client side of the reactor or blocking machinery).
func TestRoundTripEventClient(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		_, url := rtServer(t, websocket.Config{Mode: mode, Compression: true}, rtEcho())
		got := make(chan string, 300)
		opened := make(chan *websocket.Conn, 1)
		closed := make(chan error, 1)
		d := websocket.NewDialer(websocket.Config{Mode: mode, Compression: true}, websocket.Handler{
			OnOpen:    func(c *websocket.Conn) { opened <- c },
			OnMessage: func(_ *websocket.Conn, _ websocket.MessageType, data []byte) { got <- string(data) },
			OnClose:   func(_ *websocket.Conn, err error) { closed <- err },
		})
		ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
		defer cancel()
		c, _, err := d.Dial(ctx, url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if oc := <-opened; oc != c {
			t.Errorf("OnOpen got a different *Conn than Dial returned")
		}
		const n = 200
		for i := range n {
			msg := fmt.Sprintf("%d:%s", i, strings.Repeat("x", i*10))
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		for i := range n {
			select {
			case m := <-got:
				if want := fmt.Sprintf("%d:%s", i, strings.Repeat("x", i*10)); m != want {
					t.Fatalf("message %d: got %.20q, want %.20q", i, m, want)
				}
			case <-time.After(rtLimit):
				t.Fatalf("message %d did not arrive within %v", i, rtLimit)
			}
		}
		if err := d.Shutdown(ctx, 4000, "done"); err != nil {
			t.Fatalf("dialer shutdown: %v", err)
		}
		if err := <-closed; websocket.CloseStatus(err) != 4000 {
			t.Errorf("OnClose: got %v, want close code 4000", err)
		}
		if n := d.Len(); n != 0 {
			t.Errorf("dialer Len after Shutdown: got %d, want 0", n)
		}
	})
}

// TestTLSUsesBlockingMode: a reactor-mode server behind TLS serves wss://
// (TLS connections always run in blocking mode).
func TestTLSUsesBlockingMode(t *testing.T) {
	leakcheck.Check(t)
	srv := websocket.NewServer(websocket.Config{Mode: websocket.ModeReactor}, rtEcho())
	rtShutdownOnCleanup(t, srv) // after the listener closed, as in rtServe
	hs := rtListen(t, srv, httptest.NewTLSServer)
	ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
	defer cancel()
	url := "wss" + strings.TrimPrefix(hs.URL, "https")
	c, _, err := websocket.Dial(ctx, url, nil, &websocket.DialOptions{TLSConfig: hs.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer func() { _ = c.CloseNow(); <-c.Done() }()
	for _, n := range []int{0, 10, 70000} {
		want := rtPayload(n, false)
		if err := c.WriteMessage(websocket.BinaryMessage, want); err != nil {
			t.Fatalf("write: %v", err)
		}
		if _, got := rtRead(t, c); !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want the %d sent", len(got), n)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := websocket.CloseStatus(rtReadErr(t, c)); got != websocket.StatusNormalClosure {
		t.Errorf("after close: got status %d, want 1000", got)
	}
}

// TestContextTakeover: with context takeover on both sides, similar
// messages compress against the previous ones; every one must still
// decompress to what was sent, in both directions, prepared ones included.
func TestContextTakeover(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		cfg := websocket.Config{Mode: mode, Compression: true, CompressionContextTakeover: true}
		conns := make(chan *websocket.Conn, 1)
		_, url := rtServer(t, cfg, websocket.Handler{
			OnOpen: func(c *websocket.Conn) { conns <- c },
			OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
				_ = c.WriteMessage(typ, data)
			},
		})
		ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, url, &cfg, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer func() { _ = c.CloseNow(); <-c.Done() }()
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); strings.Contains(ext, "no_context_takeover") {
			t.Fatalf("got Sec-WebSocket-Extensions %q, want context takeover", ext)
		}
		sc := <-conns
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, []byte(strings.Repeat("prepared and shared ", 20)))
		if err != nil {
			t.Fatalf("prepare: %v", err)
		}
		for i := range 30 {
			want := fmt.Sprintf(`{"seq":%d,"topic":"prices","body":"%s"}`, i, strings.Repeat("similar ", 20+i))
			if err := c.WriteMessage(websocket.TextMessage, []byte(want)); err != nil {
				t.Fatalf("write: %v", err)
			}
			if _, got := rtRead(t, c); string(got) != want {
				t.Fatalf("message %d: got %.30q, want %.30q", i, got, want)
			}
			if i%10 == 0 {
				if err := sc.WritePrepared(pm); err != nil {
					t.Fatalf("WritePrepared: %v", err)
				}
				if _, got := rtRead(t, c); !bytes.Equal(got, []byte(strings.Repeat("prepared and shared ", 20))) {
					t.Fatalf("prepared message %d: got %.30q", i, got)
				}
			}
		}
	})
}

// TestBatchedRepliesNotHeldBySlowCallback: replies written by callbacks
// that run back to back are sent together, but a later callback that
// blocks must not hold back the replies made before it. The blocked
// callback is released only once the earlier replies arrived, so holding
// them would deadlock the test.
func TestBatchedRepliesNotHeldBySlowCallback(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		release := make(chan struct{})
		srv := websocket.NewServer(websocket.Config{Mode: mode}, websocket.Handler{
			OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
				if string(data) == "block" {
					select {
					case <-release:
					case <-time.After(rtLimit):
						t.Error("the replies before the blocked callback never arrived")
					}
				}
				_ = c.WriteMessage(typ, data) // fails only when closing; the client notices
			},
		})
		c := dialRaw(t, rtServe(t, srv))
		// One TCP write: the server reads all three messages at once, so
		// their callbacks run back to back.
		c.send(text("one"), text("two"), text("block"))
		c.expectMessage(opText, []byte("one"))
		c.expectMessage(opText, []byte("two"))
		close(release)
		c.expectMessage(opText, []byte("block"))
		_ = c.conn.Close() // so that Shutdown need not wait for our close frame
	})
}
