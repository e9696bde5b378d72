package wsgate_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// TestParallelBroadcast makes the server split broadcasts over several
// goroutines (as it does for thousands of connections) and checks that
// every connection, in both forms, gets each push exactly once and in
// order, and that Publish counts each delivery once.
func TestParallelBroadcast(t *testing.T) {
	leakcheck.Check(t)
	if runtime.GOMAXPROCS(0) < 4 {
		prev := runtime.GOMAXPROCS(4)
		t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	}
	cfg := anon()
	cfg.HandshakeRate = -1
	ts := startServer(t, cfg)
	const each = 32
	var simpleConns, fullConns []*websocket.Conn
	for range each {
		simpleConns = append(simpleConns, dial(t, ts.wsURL("/ws"), nil))
		c := dial(t, ts.wsURL("/ws"), fullForm)
		readFrame(t, c) // hello
		fullConns = append(fullConns, c)
	}
	gatewaytest.WaitFor(t, "registered conns", func() bool { return ts.Stats().Conns == 2*each })
	wsgate.AddOpenConns(ts.Server, wsgate.ParallelFanoutMin)
	defer wsgate.AddOpenConns(ts.Server, -wsgate.ParallelFanoutMin)
	pushesBefore := ts.Stats().Pushes
	for _, payload := range []string{"one", "two"} {
		n, err := ts.Push(context.Background(), wsgate.Target{All: true}, 140, []byte(payload))
		if n != 2*each || err != nil {
			t.Fatalf("Push %s: got %d, %v; want %d, nil", payload, n, err, 2*each)
		}
	}
	for i, c := range simpleConns {
		for _, want := range []string{"one", "two"} {
			if _, got := read(t, c); !bytes.Equal(got, simple(140, want)) {
				t.Errorf("simple conn %d: got %q, want %q", i, got, simple(140, want))
			}
		}
	}
	for i, c := range fullConns {
		for _, want := range []string{"one", "two"} {
			if f := readFrame(t, c); f.Type != wire.TypePush || f.Action != 140 || string(f.Payload) != want {
				t.Errorf("full-form conn %d: got %+v, want push 140 %q", i, f, want)
			}
		}
	}
	if got := ts.Stats().Pushes - pushesBefore; got != 2 {
		t.Errorf("Stats.Pushes: got %d more, want 2", got)
	}
}
