package websocket_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

// TestInboxBackpressure: a connection whose OnMessage is stuck stops being
// read, and another connection's messages keep flowing meanwhile.
func TestInboxBackpressure(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		release := make(chan struct{})
		var mu sync.Mutex
		var slowGot []string
		_, url := rtServer(t, websocket.Config{Mode: mode, InboxLimit: 4, Workers: 4}, websocket.Handler{
			OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
				if strings.HasPrefix(string(data), "slow") {
					<-release
					mu.Lock()
					slowGot = append(slowGot, string(data))
					mu.Unlock()
					return
				}
				_ = c.WriteMessage(typ, data)
			},
		})
		slow := rtDial(t, url, nil)
		fast := rtDial(t, url, nil)
		const n = 500
		go func() {
			for i := range n {
				if err := slow.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "slow %d %s", i, strings.Repeat("s", 1000))); err != nil {
					t.Errorf("slow write %d: %v", i, err)
					return
				}
			}
		}()
		for i := range 20 {
			want := fmt.Sprintf("fast %d", i)
			if err := fast.WriteMessage(websocket.TextMessage, []byte(want)); err != nil {
				t.Fatalf("fast write: %v", err)
			}
			if _, got := rtRead(t, fast); string(got) != want {
				t.Fatalf("fast: got %q, want %q", got, want)
			}
		}
		close(release)
		waitFor(t, "all slow messages delivered", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(slowGot) == n
		})
		mu.Lock()
		defer mu.Unlock()
		for i, m := range slowGot {
			if want := fmt.Sprintf("slow %d ", i); !strings.HasPrefix(m, want) {
				t.Fatalf("slow message %d: got %.12q, want prefix %q", i, m, want)
			}
		}
	})
}

// TestCloseTimeoutWhileReadingPaused: a connection whose reading is paused
// because its handler is stuck still ends Config.CloseTimeout after Close
// when the peer never answers, not when the handler catches up.
func TestCloseTimeoutWhileReadingPaused(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		release := make(chan struct{})
		var releaseOnce sync.Once
		unblock := func() { releaseOnce.Do(func() { close(release) }) }
		entered := make(chan struct{}, 1)
		opened := make(chan *websocket.Conn, 1)
		closed := make(chan error, 1)
		srv := websocket.NewServer(websocket.Config{Mode: mode, InboxLimit: 2, CloseTimeout: 300 * time.Millisecond}, websocket.Handler{
			OnOpen: func(c *websocket.Conn) { opened <- c },
			OnMessage: func(*websocket.Conn, websocket.MessageType, []byte) {
				select {
				case entered <- struct{}{}:
				default:
				}
				select {
				case <-release:
				case <-time.After(rtLimit):
				}
			},
			OnClose: func(_ *websocket.Conn, err error) { closed <- err },
		})
		hs := rtServe(t, srv)
		t.Cleanup(unblock) // before the shutdown, also when the test failed early
		raw := dialRaw(t, hs)
		sc := <-opened
		var burst []frame
		for range 20 { // ten times InboxLimit: reading pauses
			burst = append(burst, text(strings.Repeat("x", 100)))
		}
		raw.send(burst...)
		<-entered // the handler is stuck on the first message
		if err := sc.Close(4000, "bye"); err != nil {
			t.Fatalf("close: %v", err)
		}
		raw.expectCloseCode(4000) // and never answer it
		raw.expectTCPClose()      // fails after ioLimit (10 s) if the handler holds the connection open
		unblock()
		select {
		case err := <-closed:
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4000 {
				t.Errorf("OnClose: got %v, want our close frame 4000", err)
			}
		case <-time.After(rtLimit):
			t.Fatal("OnClose not called after the handler was released")
		}
	})
}

// TestPullCloseTimeoutWithoutRead: a pull-mode connection whose program
// stopped calling Read (its read-ahead full, so the peer's answer to our
// close frame is never read) still ends Config.CloseTimeout after Close.
func TestPullCloseTimeoutWithoutRead(t *testing.T) {
	leakcheck.Check(t)
	srv, url := rtServer(t, websocket.Config{}, websocket.Handler{
		OnOpen: func(c *websocket.Conn) {
			for range 20 { // more than the client reads ahead
				_ = c.WriteMessage(websocket.TextMessage, []byte("hello")) // the client reads none of them
			}
		},
	})
	c := rtDial(t, url, &websocket.Config{CloseTimeout: 300 * time.Millisecond})
	waitFor(t, "server has sent everything", func() bool { return srv.Len() == 1 })
	time.Sleep(50 * time.Millisecond) // let the client's read-ahead fill (a shorter wait only makes the test weaker)
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(rtLimit):
		t.Fatalf("pull connection not done %v after Close without Read", rtLimit)
	}
}
