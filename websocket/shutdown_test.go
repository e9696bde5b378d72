package websocket_test

// Server.Shutdown: every connection gets its close frame, also those whose
// handshake races Shutdown.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

func TestShutdownClosesEveryConnection(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		srv := websocket.NewServer(websocket.Config{Mode: mode}, rtEcho())
		url := rtURL(rtListen(t, srv, httptest.NewServer)) // the test shuts srv down itself
		const n = 20
		clients := make([]*websocket.Conn, n)
		for i := range clients {
			clients[i] = rtDial(t, url, nil)
		}
		waitFor(t, "server Len = n", func() bool { return srv.Len() == n })
		ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
		defer cancel()
		if err := srv.Shutdown(ctx, websocket.StatusServiceRestart, "restarting"); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if got := srv.Len(); got != 0 {
			t.Errorf("Len after Shutdown: got %d, want 0", got)
		}
		for i, c := range clients {
			var ce *websocket.CloseError
			if err := rtReadErr(t, c); !errors.As(err, &ce) || ce.Code != websocket.StatusServiceRestart || ce.Reason != "restarting" {
				t.Errorf("client %d: got %v, want *CloseError 1012 \"restarting\"", i, err)
			}
		}
		// After Shutdown, Accept answers 503.
		if _, _, err := websocket.Dial(ctx, url, nil, nil); err == nil {
			t.Error("dial after Shutdown: got nil error, want a rejected handshake")
		}
	})
}

// TestShutdownContextDropsStragglers: clients that never answer the close
// are dropped when ctx ends, and Shutdown still leaves no goroutine.
func TestShutdownContextDropsStragglers(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		srv := websocket.NewServer(websocket.Config{Mode: mode, CloseTimeout: time.Minute}, rtEcho())
		raw := dialRaw(t, rtListen(t, srv, httptest.NewServer)) // a client that never answers; the test shuts srv down itself
		_ = raw
		waitFor(t, "server Len = 1", func() bool { return srv.Len() == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := srv.Shutdown(ctx, websocket.StatusGoingAway, ""); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("shutdown: got %v, want context.DeadlineExceeded", err)
		}
		if got := srv.Len(); got != 0 {
			t.Errorf("Len after Shutdown: got %d, want 0", got)
		}
	})
}

// TestShutdownRacingAccept: dials keep arriving while Shutdown runs. Each
// is either refused with 503 or, once it got its 101, ends with
// Shutdown's close frame, even when its handshake finished after Shutdown
// began: never with a dropped TCP connection (1006). Shutdown returns and
// nothing leaks.
func TestShutdownRacingAccept(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		srv := websocket.NewServer(websocket.Config{Mode: mode}, rtEcho())
		url := rtURL(rtListen(t, srv, httptest.NewServer)) // after Shutdown: 503, or a close frame after the 101
		var wg sync.WaitGroup
		var mu sync.Mutex
		outcomes := map[string]int{}
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					outcome, err := dialDuringShutdown(url)
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					outcomes[outcome]++
					mu.Unlock()
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
		defer cancel()
		if err := srv.Shutdown(ctx, websocket.StatusGoingAway, "shutting down"); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		wg.Wait()
		if n := srv.Len(); n != 0 {
			t.Errorf("Len after Shutdown: got %d, want 0", n)
		}
		t.Logf("outcomes: %v", outcomes)
	})
}

// dialDuringShutdown dials once and reports how it ended: "503", or
// "1001" for a connection that got Shutdown's close frame. Anything else
// is an error.
func dialDuringShutdown(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil, nil)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
			return "503", nil
		}
		return "dial error", fmt.Errorf("dial: got %v (response %v), want a 101 or a 503", err, resp)
	}
	defer func() { _ = c.CloseNow(); <-c.Done() }()
	err = rtReadErrCtx(ctx, c)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "shutting down" {
		return "other end", fmt.Errorf("after a 101: got %v, want *CloseError 1001 \"shutting down\"", err)
	}
	return "1001", nil
}

// hijackHook runs before once, just before the handshake hijacks the
// connection: after the request was checked, before the 101 is written.
type hijackHook struct {
	http.ResponseWriter
	before func()
}

func (h hijackHook) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.before()
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

// TestShutdownDuringHandshake: a handshake that passed Accept's shutdown
// check and writes its 101 after Shutdown began (closing: another
// connection is still being waited for; stopped: Shutdown returned) gets
// Shutdown's close frame, not a dropped connection.
func TestShutdownDuringHandshake(t *testing.T) {
	for _, stopped := range []bool{false, true} {
		t.Run(map[bool]string{false: "closing", true: "stopped"}[stopped], func(t *testing.T) {
			rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
				testShutdownDuringHandshake(t, mode, stopped)
			})
		})
	}
}

func testShutdownDuringHandshake(t *testing.T, mode websocket.Mode, stopped bool) {
	srv := websocket.NewServer(websocket.Config{Mode: mode}, rtEcho())
	var before func()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			w = hijackHook{ResponseWriter: w, before: before}
		}
		_, _ = srv.Accept(w, r, nil) // the test checks what the client sees
	}))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
	defer cancel()
	shutdownErr := make(chan error, 1)
	var raw *rawClient
	if stopped {
		before = func() { shutdownErr <- srv.Shutdown(ctx, websocket.StatusGoingAway, "bye") }
	} else {
		// A client that does not answer the close keeps Shutdown waiting;
		// its close frame shows that Shutdown has begun.
		raw = dialRaw(t, hs)
		waitFor(t, "first connection registered", func() bool { return srv.Len() == 1 })
		before = func() {
			go func() { shutdownErr <- srv.Shutdown(ctx, websocket.StatusGoingAway, "bye") }()
			raw.expectCloseCode(uint16(websocket.StatusGoingAway))
		}
	}
	c, _, err := websocket.Dial(ctx, rtURL(hs)+"/late", nil, nil)
	if err != nil {
		t.Fatalf("dial: got %v, want the 101 written after Shutdown began", err)
	}
	defer func() { _ = c.CloseNow(); <-c.Done() }()
	var ce *websocket.CloseError
	if err := rtReadErrCtx(ctx, c); !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "bye" {
		t.Errorf("after the 101: got %v, want *CloseError 1001 \"bye\"", err)
	}
	if raw != nil {
		_ = raw.conn.Close() // lets Shutdown finish
	}
	if err := <-shutdownErr; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// rtReadErrCtx reads until the connection ends or ctx does.
func rtReadErrCtx(ctx context.Context, c *websocket.Conn) error {
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
	}
}
