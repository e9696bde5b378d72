package wsgate_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

func TestRunReturnsNilAfterCleanShutdown(t *testing.T) {
	leakcheck.Check(t)
	// Find a free port, then let Run listen on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // Run binds it again
	cfg := anon()
	cfg.Addr = addr
	srv, err := wsgate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var c *websocket.Conn
	gatewaytest.WaitFor(t, "Run to listen", func() bool {
		var err error
		c, err = dialErr(t, "ws://"+addr+"/ws", nil)
		return err == nil
	})
	gatewaytest.WaitFor(t, "registration", func() bool { return srv.Stats().Conns == 1 })
	cancel()
	if got := readClose(t, c); got != websocket.StatusGoingAway {
		t.Errorf("close code: got %d, want 1001", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: got %v, want nil", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not return")
	}
	if err := srv.Serve(context.Background(), mustListen(t)); !errors.Is(err, wsgate.ErrServerClosed) {
		t.Errorf("Serve after shutdown: got %v, want ErrServerClosed", err)
	}
}

func mustListen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestHeartbeatKeepsConnectionsAlive: a client that sends nothing stays
// connected past IdleTimeout because it answers the heartbeat's pings; with
// pings too rare, the engine closes it.
func TestHeartbeatKeepsConnectionsAlive(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name      string
		ping      time.Duration
		wantAlive bool
	}{
		{"pinged", 100 * time.Millisecond, true},
		{"not pinged", time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := anon()
			cfg.PingInterval = tt.ping
			cfg.IdleTimeout = time.Second
			ts := startServer(t, cfg)
			c := dial(t, ts.wsURL("/ws"), nil)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, _, err := c.Read(ctx) // the server sends no message, only pings
			alive := ctx.Err() != nil
			if alive != tt.wantAlive {
				t.Errorf("alive after 3 s with IdleTimeout 1 s: got %v (%v), want %v", alive, err, tt.wantAlive)
			}
		})
	}
}

func TestHooks(t *testing.T) {
	leakcheck.Check(t)
	connected := make(chan wsgate.ConnInfo, 1)
	disconnected := make(chan int, 1)
	cfg := wsgate.Config{
		Authenticate: func(context.Context, *http.Request) (wsgate.Identity, error) {
			return wsgate.Identity{UserID: "alice"}, nil
		},
		OnConnect: func(ctx context.Context, c *wsgate.ConnInfo) {
			if info, ok := wsgate.ConnFrom(ctx); !ok || info != *c {
				t.Errorf("OnConnect ctx: got %+v %v, want %+v", info, ok, *c)
			}
			connected <- *c
		},
		OnDisconnect: func(c *wsgate.ConnInfo, code int) { disconnected <- code },
	}
	ts := startServer(t, cfg)
	c := dial(t, ts.wsURL("/ws"), &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolJSON}})
	info := <-connected
	if info.UserID != "alice" || info.Protocol != wire.SubprotocolJSON || info.ID == "" || !info.RemoteAddr.IsValid() {
		t.Errorf("OnConnect: got %+v", info)
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-disconnected:
		if code != 1000 {
			t.Errorf("OnDisconnect code: got %d, want 1000", code)
		}
	case <-time.After(testTimeout):
		t.Fatal("OnDisconnect not called")
	}
	if st := ts.Stats(); st.Conns != 0 || st.Accepted != 1 || st.Users != 0 {
		t.Errorf("Stats after disconnect: got %+v, want 0 conns, 1 accepted, 0 users", st)
	}
}
