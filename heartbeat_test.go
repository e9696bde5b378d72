package wsgate_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/wire"
)

// pingCounter is a gorilla client (which, unlike ours, shows pings) that
// counts the server's pings and messages until its connection ends.
type pingCounter struct {
	conn     *gorilla.Conn
	pings    atomic.Int64
	messages atomic.Int64
	done     chan struct{}
	err      error // why reading ended; set before done closes
}

// dialPingCounter connects to url; answer says whether pings get a pong (a
// dead peer's do not). The reader goroutine ends when the connection does;
// the test's cleanup closes it and waits.
func dialPingCounter(t *testing.T, url string, answer bool) *pingCounter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, resp, err := gorilla.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	_ = resp.Body.Close() // a 101 has no body
	pc := &pingCounter{conn: conn, done: make(chan struct{})}
	conn.SetPingHandler(func(data string) error {
		pc.pings.Add(1)
		if !answer {
			return nil
		}
		return conn.WriteControl(gorilla.PongMessage, []byte(data), time.Now().Add(testTimeout))
	})
	go func() {
		defer close(pc.done)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				pc.err = err
				return
			}
			pc.messages.Add(1)
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close() // may be closed already
		select {
		case <-pc.done:
		case <-time.After(testTimeout):
			t.Error("ping counter's reader did not end")
		}
	})
	return pc
}

// ended reports whether the connection has ended, and with which close
// code (0 if without a close frame).
func (pc *pingCounter) ended() (bool, int) {
	select {
	case <-pc.done:
		var ce *gorilla.CloseError
		if errors.As(pc.err, &ce) {
			return true, ce.Code
		}
		return true, 0
	default:
		return false, 0
	}
}

// TestHeartbeatSkipsPingsOfWrittenConnections: the heartbeat skips the ping
// of a connection that was written to recently, but only while its peer
// also spoke within half the idle timeout. A client that only receives
// pushes (more often than the ping interval) is pinged about once per half
// idle timeout and outlives the idle timeout several times over; a silent
// client is pinged every interval; a dead peer that receives the same
// pushes but answers no ping is still closed by the idle timeout.
func TestHeartbeatSkipsPingsOfWrittenConnections(t *testing.T) {
	leakcheck.Check(t)
	const (
		interval = 200 * time.Millisecond
		idle     = 2 * time.Second
		pushEach = 40 * time.Millisecond // well within 7/8 of the interval
		runFor   = 5 * time.Second       // 2.5 idle timeouts
	)
	ids := make(chan string, 3)
	cfg := anon()
	cfg.PingInterval = interval
	cfg.IdleTimeout = idle
	cfg.OnConnect = func(_ context.Context, c *wsgate.ConnInfo) { ids <- c.ID }
	ts := startServer(t, cfg)
	connID := func() string {
		select {
		case id := <-ids:
			return id
		case <-time.After(testTimeout):
			t.Fatal("OnConnect not called")
			return ""
		}
	}
	pushed := dialPingCounter(t, ts.wsURL("/ws"), true)
	pushedID := connID()
	dead := dialPingCounter(t, ts.wsURL("/ws"), false)
	deadID := connID()
	silent := dialPingCounter(t, ts.wsURL("/ws"), true)
	connID()

	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the pusher; owned by this test, which waits for it
		defer wg.Done()
		tick := time.NewTicker(pushEach)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, id := range []string{pushedID, deadID} {
				_, _ = ts.Push(ctx, wsgate.Target{Conn: id}, 100, []byte("tick")) // the dead peer's fails once it is closed
			}
		}
	}()
	<-ctx.Done()
	wg.Wait()

	if ended, code := pushed.ended(); ended {
		t.Fatalf("pushed client closed (code %d, %v) after %v with IdleTimeout %v: want open", code, pushed.err, runFor, idle)
	}
	if ended, _ := silent.ended(); ended {
		t.Fatalf("silent client closed (%v): want open, it answers every ping", silent.err)
	}
	if ended, code := dead.ended(); !ended || code != int(wire.CloseIdleTimeout) {
		t.Errorf("dead peer receiving pushes: got ended %v with code %d, want closed with %d", ended, code, wire.CloseIdleTimeout)
	}
	p, s := pushed.pings.Load(), silent.pings.Load()
	t.Logf("over %v: pushed client %d pings and %d messages, silent client %d pings, dead peer %d pings", runFor, p, pushed.messages.Load(), s, dead.pings.Load())
	if p < 1 {
		t.Errorf("pushed client: got %d pings, want at least 1 (it sends nothing else, and IdleTimeout is %v)", p, idle)
	}
	if s < 4 || 2*p >= s {
		t.Errorf("pings: got %d for the pushed client and %d for the silent one, want the silent one pinged every %v (about %d) and the pushed one under half as often",
			p, s, interval, int(runFor/interval))
	}
	if d := dead.pings.Load(); d < 1 || d > s {
		t.Errorf("dead peer: got %d pings, want at least one before its idle close and no more than the silent client's %d", d, s)
	}
}
