package websocket_test

// Connection lifecycle through the public API, in reactor and blocking mode:
// close from either side, callback order, pings, the bounded write queue,
// idle timeouts and panicking callbacks.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

func TestCloseFromServer(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		serverErr := make(chan error, 1)
		_, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnMessage: func(c *websocket.Conn, _ websocket.MessageType, _ []byte) {
				_ = c.Close(4001, "bye now")
				if err := c.WriteMessage(websocket.TextMessage, []byte("late")); !errors.Is(err, net.ErrClosed) {
					t.Errorf("write after Close: got %v, want an error wrapping net.ErrClosed", err)
				}
			},
			OnClose: func(_ *websocket.Conn, err error) { serverErr <- err },
		})
		c := rtDial(t, url, nil)
		if err := c.WriteMessage(websocket.TextMessage, []byte("close please")); err != nil {
			t.Fatalf("write: %v", err)
		}
		err := rtReadErr(t, c)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye now" {
			t.Fatalf("client read: got %v, want *CloseError 4001 %q", err, "bye now")
		}
		select {
		case err := <-serverErr:
			if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye now" {
				t.Errorf("server OnClose: got %v, want *CloseError 4001 (the close it started)", err)
			}
		case <-time.After(rtLimit):
			t.Fatal("server OnClose not called")
		}
		select {
		case <-c.Done():
		case <-time.After(rtLimit):
			t.Fatal("client not done after the close handshake")
		}
	})
}

func TestCloseFromClient(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		serverErr := make(chan error, 1)
		srv, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnClose: func(_ *websocket.Conn, err error) { serverErr <- err },
		})
		c := rtDial(t, url, nil)
		if err := c.Close(4002, "client leaving"); err != nil {
			t.Fatalf("close: %v", err)
		}
		err := rtReadErr(t, c)
		if got := websocket.CloseStatus(err); got != 4002 {
			t.Fatalf("client read after Close: got %v (status %d), want status 4002", err, got)
		}
		select {
		case err := <-serverErr:
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4002 || ce.Reason != "client leaving" {
				t.Errorf("server OnClose: got %v, want *CloseError 4002 %q", err, "client leaving")
			}
		case <-time.After(rtLimit):
			t.Fatal("server OnClose not called")
		}
		waitFor(t, "server Len 0", func() bool { return srv.Len() == 0 })
	})
}

func TestCloseStatusWithoutHandshake(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		serverErr := make(chan error, 1)
		_, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnClose: func(_ *websocket.Conn, err error) { serverErr <- err },
		})
		c := rtDial(t, url, nil)
		_ = c.CloseNow()
		select {
		case err := <-serverErr:
			if err == nil || websocket.CloseStatus(err) != -1 {
				t.Errorf("server OnClose after a dropped TCP: got %v, want a non-close error (CloseStatus -1)", err)
			}
		case <-time.After(rtLimit):
			t.Fatal("server OnClose not called")
		}
	})
}

// TestCallbackOrder checks OnOpen first, messages in order, OnClose once
// and last, never two callbacks of one connection at the same time.
func TestCallbackOrder(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		var mu sync.Mutex
		var events []string
		inside := 0
		enter := func(ev string) {
			mu.Lock()
			defer mu.Unlock()
			inside++
			if inside > 1 {
				t.Errorf("two callbacks of one connection ran at once (%s)", ev)
			}
			events = append(events, ev)
		}
		leave := func() { mu.Lock(); inside--; mu.Unlock() }
		closed := make(chan struct{})
		_, url := rtServer(t, websocket.Config{Mode: mode, Workers: 4}, websocket.Handler{
			OnOpen: func(*websocket.Conn) { enter("open"); time.Sleep(time.Millisecond); leave() },
			OnMessage: func(_ *websocket.Conn, _ websocket.MessageType, data []byte) {
				enter(string(data))
				leave()
			},
			OnClose: func(*websocket.Conn, error) { enter("close"); leave(); close(closed) },
		})
		c := rtDial(t, url, nil)
		const n = 100
		for i := range n {
			if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint(i))); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
		select {
		case <-closed:
		case <-time.After(rtLimit):
			t.Fatal("OnClose not called")
		}
		mu.Lock()
		defer mu.Unlock()
		want := []string{"open"}
		for i := range n {
			want = append(want, fmt.Sprint(i))
		}
		want = append(want, "close")
		if strings.Join(events, ",") != strings.Join(want, ",") {
			t.Errorf("got callbacks %v, want %v", events, want)
		}
	})
}

// TestOpenBeforeResponse: the client gets its 101 only once OnOpen has
// returned, so a server that makes a connection reachable in OnOpen (the
// gateway registers it for pushes) is never behind its client. What OnOpen
// and other goroutines write meanwhile follows the 101 in order.
func TestOpenBeforeResponse(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		var opened atomic.Bool
		conns := make(chan *websocket.Conn, 1)
		_, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnOpen: func(c *websocket.Conn) {
				conns <- c
				// Another goroutine writes while the 101 is held: it must queue.
				wrote := make(chan error, 1)
				go func() { wrote <- c.WriteMessage(websocket.TextMessage, []byte("from elsewhere")) }()
				if err := <-wrote; err != nil {
					t.Errorf("write while held: %v", err)
				}
				time.Sleep(20 * time.Millisecond) // widen the window a racing 101 would fall into
				if err := c.WriteMessage(websocket.TextMessage, []byte("from OnOpen")); err != nil {
					t.Errorf("write in OnOpen: %v", err)
				}
				opened.Store(true)
			},
		})
		c := rtDial(t, url, nil)
		if !opened.Load() {
			t.Fatal("Dial returned before the server's OnOpen finished")
		}
		for _, want := range []string{"from elsewhere", "from OnOpen"} {
			if _, got := rtRead(t, c); string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		<-conns
	})
}

// TestOpenCloses: a connection that OnOpen closes (or whose OnOpen panics)
// still gets its 101, then the close frame.
func TestOpenCloses(t *testing.T) {
	for _, tt := range []struct {
		name string
		open func(*websocket.Conn)
		want websocket.StatusCode
	}{
		{"close", func(c *websocket.Conn) { _ = c.Close(4001, "go away") }, 4001}, // the test reads the code
		{"panic", func(*websocket.Conn) { panic("open bug") }, websocket.StatusInternalError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
				_, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{OnOpen: tt.open})
				c := rtDial(t, url, nil)
				if got := websocket.CloseStatus(rtReadErr(t, c)); got != tt.want {
					t.Errorf("got close status %d, want %d", got, tt.want)
				}
			})
		})
	}
}

func TestServerPing(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		pinged := make(chan error, 1)
		_, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnOpen: func(c *websocket.Conn) { pinged <- c.Ping([]byte("are you there")) },
			OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
				_ = c.WriteMessage(typ, data)
			},
		})
		c := rtDial(t, url, nil)
		if err := <-pinged; err != nil {
			t.Fatalf("server ping: %v", err)
		}
		if err := c.Ping(bytes.Repeat([]byte("p"), 125)); err != nil {
			t.Fatalf("client ping: %v", err)
		}
		if err := c.Ping(make([]byte, 126)); err == nil {
			t.Error("ping with 126 bytes: got nil error, want one (control frames carry ≤ 125)")
		}
		// The connection still works after the pings and their pongs.
		if err := c.WriteMessage(websocket.TextMessage, []byte("after ping")); err != nil {
			t.Fatalf("write: %v", err)
		}
		if _, got := rtRead(t, c); string(got) != "after ping" {
			t.Errorf("got %q, want %q", got, "after ping")
		}
	})
}

func TestConcurrentWriters(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		const writers, perWriter = 8, 200
		start := make(chan *websocket.Conn, 1)
		_, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnOpen: func(c *websocket.Conn) { start <- c },
		})
		c := rtDial(t, url, nil)
		sc := <-start
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					msg := fmt.Appendf(nil, "%d/%d/%s", w, i, strings.Repeat("z", (w*31+i)%700))
					if err := sc.Write(context.Background(), websocket.BinaryMessage, msg); err != nil {
						t.Errorf("writer %d message %d: %v", w, i, err)
						return
					}
				}
			}()
		}
		next := make([]int, writers)
		for range writers * perWriter {
			_, data := rtRead(t, c)
			parts := strings.SplitN(string(data), "/", 3)
			if len(parts) != 3 {
				t.Fatalf("malformed message %.40q", data)
			}
			w, _ := strconv.Atoi(parts[0])
			i, _ := strconv.Atoi(parts[1])
			pad := parts[2]
			if w < 0 || w >= writers || i != next[w] {
				t.Fatalf("got message %d from writer %d, want message %d", i, w, next[w])
			}
			if want := strings.Repeat("z", (w*31+i)%700); pad != want {
				t.Fatalf("message %d/%d corrupted", w, i)
			}
			next[w]++
		}
		wg.Wait()
	})
}

// TestWriteQueueFull writes to a peer that never reads until the bounded
// queue refuses, then checks Write(ctx) waits and gives up with ctx.
func TestWriteQueueFull(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		const limit = 256 << 10
		start := make(chan *websocket.Conn, 1)
		_, url := rtServer(t, websocket.Config{Mode: mode, WriteQueueLimit: limit}, websocket.Handler{
			OnOpen: func(c *websocket.Conn) { start <- c },
		})
		_ = rtDial(t, url, nil) // reads ahead only pullQueue messages, then TCP pushes back
		sc := <-start
		msg := make([]byte, 64<<10)
		// Fill the kernel buffers and the queue: Write(ctx) gives up once the
		// queue stayed full for the whole of its short ctx.
		var err error
		deadline := time.Now().Add(rtLimit)
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			err = sc.Write(ctx, websocket.BinaryMessage, msg)
			cancel()
			if err != nil {
				break
			}
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write(ctx) on a full queue: got %v, want context.DeadlineExceeded", err)
		}
		if err := sc.WriteMessage(websocket.BinaryMessage, msg); !errors.Is(err, websocket.ErrWriteQueueFull) {
			t.Fatalf("WriteMessage on a full queue: got %v, want ErrWriteQueueFull", err)
		}
		if b := sc.Buffered(); b <= 0 || b > limit+len(msg)+16 {
			t.Errorf("Buffered: got %d, want between 1 and %d", b, limit+len(msg)+16)
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		_, url := rtServer(t, websocket.Config{Mode: mode, IdleTimeout: 200 * time.Millisecond}, rtEcho())
		c := rtDial(t, url, nil)
		err := rtReadErr(t, c)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "idle timeout" {
			t.Errorf("got %v, want *CloseError 1001 \"idle timeout\"", err)
		}
	})
}

// TestIdleCloseCode: Config.IdleCloseCode and IdleCloseReason replace
// 1001 "idle timeout", on the wire and in the server's OnClose.
func TestIdleCloseCode(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		serverErr := make(chan error, 1)
		_, url := rtServer(t, websocket.Config{
			Mode: mode, IdleTimeout: 200 * time.Millisecond, IdleCloseCode: 4001, IdleCloseReason: "no heartbeat",
		}, websocket.Handler{OnClose: func(_ *websocket.Conn, err error) { serverErr <- err }})
		c := rtDial(t, url, nil)
		var ce *websocket.CloseError
		if err := rtReadErr(t, c); !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "no heartbeat" {
			t.Errorf("client: got %v, want *CloseError 4001 \"no heartbeat\"", err)
		}
		select {
		case err := <-serverErr:
			if got := websocket.CloseStatus(err); got != 4001 {
				t.Errorf("server OnClose: got %v (code %d), want code 4001", err, got)
			}
		case <-time.After(rtLimit):
			t.Fatalf("server OnClose not called within %v", rtLimit)
		}
	})
}

func TestPanicClosesWith1011(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		_, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnMessage: func(*websocket.Conn, websocket.MessageType, []byte) { panic("handler bug") },
		})
		c := rtDial(t, url, nil)
		if err := c.WriteMessage(websocket.TextMessage, []byte("boom")); err != nil {
			t.Fatalf("write: %v", err)
		}
		if got := websocket.CloseStatus(rtReadErr(t, c)); got != websocket.StatusInternalError {
			t.Errorf("got close status %d, want 1011", got)
		}
	})
}

func TestWritePrepared(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
				conns := make(chan *websocket.Conn, 3)
				_, url := rtServer(t, websocket.Config{Mode: mode, Compression: compress}, websocket.Handler{
					OnOpen: func(c *websocket.Conn) { conns <- c },
				})
				payload := bytes.Repeat([]byte("broadcast "), 100)
				pm, err := websocket.NewPreparedMessage(websocket.TextMessage, payload)
				if err != nil {
					t.Fatalf("prepare: %v", err)
				}
				var clients []*websocket.Conn
				for range 3 {
					clients = append(clients, rtDial(t, url, &websocket.Config{Compression: compress}))
				}
				for range 3 {
					if err := (<-conns).WritePrepared(pm); err != nil {
						t.Fatalf("WritePrepared: %v", err)
					}
				}
				for i, c := range clients {
					if typ, got := rtRead(t, c); typ != websocket.TextMessage || !bytes.Equal(got, payload) {
						t.Errorf("client %d: got type %d %.20q, want the prepared text", i, typ, got)
					}
					// A client connection (masked) frames the prepared message itself.
					if err := c.WritePrepared(pm); err != nil {
						t.Errorf("client WritePrepared: %v", err)
					}
				}
			})
		})
	}
}

func TestReadOnHandlerConn(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		start := make(chan *websocket.Conn, 1)
		_, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnOpen: func(c *websocket.Conn) { start <- c },
		})
		_ = rtDial(t, url, nil)
		sc := <-start
		if _, _, err := sc.Read(context.Background()); !errors.Is(err, websocket.ErrReadNotSupported) {
			t.Errorf("Read on a Handler conn: got %v, want ErrReadNotSupported", err)
		}
		if sc.RemoteAddr() == nil || !strings.HasPrefix(sc.RemoteAddr().String(), "127.0.0.1:") {
			t.Errorf("RemoteAddr: got %v, want 127.0.0.1:port", sc.RemoteAddr())
		}
		if got := sc.RemoteAddrPort(); got.String() != sc.RemoteAddr().String() {
			t.Errorf("RemoteAddrPort: got %v, want %v", got, sc.RemoteAddr())
		}
		if err := sc.WriteMessage(websocket.MessageType(9), nil); err == nil {
			t.Error("WriteMessage with type 9: got nil error, want one")
		}
	})
}

// waitFor polls cond until it holds or rtLimit passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(rtLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestActivity: Conn.Activity tells when the peer last sent something and
// when we last wrote, each on its own: a write does not move the read time.
func TestActivity(t *testing.T) {
	const slack = 40 * time.Millisecond // the activity clock ticks every 16.8 ms
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		conns := make(chan *websocket.Conn, 1)
		_, url := rtServer(t, websocket.Config{Mode: mode}, websocket.Handler{
			OnOpen: func(c *websocket.Conn) { conns <- c },
			OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
				_ = c.WriteMessage(typ, data)
			},
		})
		c := rtDial(t, url, nil)
		sc := <-conns
		inside := func(what string, got, from, to time.Time) {
			t.Helper()
			if got.Before(from.Add(-slack)) || got.After(to.Add(slack)) {
				t.Errorf("%s: got %v, want between %v and %v (± %v)", what, got.Format(time.StampMicro), from.Format(time.StampMicro), to.Format(time.StampMicro), slack)
			}
		}

		t0 := time.Now()
		if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatalf("write: %v", err)
		}
		rtRead(t, c) // the echo: the server has read and written
		t1 := time.Now()
		read, write := sc.Activity()
		inside("read after a message", read, t0, t1)
		inside("write after the echo", write, t0, t1)

		time.Sleep(5 * slack) // let the clock move well past the slack
		t2 := time.Now()
		if err := sc.WriteMessage(websocket.TextMessage, []byte("push")); err != nil {
			t.Fatalf("server write: %v", err)
		}
		rtRead(t, c)
		t3 := time.Now()
		read2, write2 := sc.Activity()
		inside("read after a server write", read2, t0, t1)
		inside("write after a server write", write2, t2, t3)
	})
}
