package wsgate_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// closeTimes reads every connection until it closes, in the background,
// and returns a function that waits for them and reports each one's close
// code and when it arrived.
func closeTimes(conns []*websocket.Conn) func() ([]websocket.StatusCode, []time.Time) {
	codes := make([]websocket.StatusCode, len(conns))
	times := make([]time.Time, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = readCloseQuiet(c)
			times[i] = time.Now()
		}()
	}
	return func() ([]websocket.StatusCode, []time.Time) {
		wg.Wait()
		return codes, times
	}
}

// TestDrainSpreadsCloses: with DrainPeriod, Shutdown closes every
// connection with 4003, not all at once but over the period, while
// /readyz already reports the node as draining.
func TestDrainSpreadsCloses(t *testing.T) {
	leakcheck.Check(t)
	const period = 400 * time.Millisecond
	cfg := anon()
	cfg.DrainPeriod = period
	cfg.HandshakeRate = -1 // 41 handshakes from one IP
	ts := startServer(t, cfg)
	conns := make([]*websocket.Conn, 40)
	for i := range conns {
		conns[i] = dial(t, ts.wsURL("/ws"), nil)
	}
	wait := closeTimes(conns)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- ts.Shutdown(ctx) }()
	// While the drain runs, the node tells load balancers and clients to go
	// elsewhere.
	gatewaytest.WaitFor(t, "/readyz to report draining", func() bool {
		resp, err := http.Get("http://" + ts.addr + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close() // only the status matters
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if _, err := dialErr(t, ts.wsURL("/ws"), nil); statusOf(err) != http.StatusServiceUnavailable {
		t.Errorf("handshake during the drain: got %v, want HTTP 503", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	codes, times := wait()
	first, last := times[0], times[0]
	for i, code := range codes {
		if code != websocket.StatusCode(wire.CloseDraining) {
			t.Errorf("conn %d: got close %d, want 4003", i, code)
		}
		first, last = minTime(first, times[i]), maxTime(last, times[i])
	}
	// The last share is closed no sooner than (ticks-1) ticks after the
	// first: a lower bound that a slow machine only widens.
	if spread := last.Sub(first); spread < period/2 {
		t.Errorf("closes spread over %v (first %v after Shutdown), want at least %v", spread, first.Sub(start), period/2)
	}
}

// TestDrainFitsShutdownContext: a drain period longer than Shutdown's ctx
// shrinks to fit it, so every client still gets 4003 and Shutdown is clean.
func TestDrainFitsShutdownContext(t *testing.T) {
	leakcheck.Check(t)
	cfg := anon()
	cfg.DrainPeriod = time.Hour
	ts := startServer(t, cfg)
	conns := make([]*websocket.Conn, 10)
	for i := range conns {
		conns[i] = dial(t, ts.wsURL("/ws"), nil)
	}
	wait := closeTimes(conns)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	codes, _ := wait()
	for i, code := range codes {
		if code != websocket.StatusCode(wire.CloseDraining) {
			t.Errorf("conn %d: got close %d, want 4003", i, code)
		}
	}
}

// TestDrainPeriodNegative: a negative DrainPeriod is a configuration error.
func TestDrainPeriodNegative(t *testing.T) {
	if _, err := wsgate.New(wsgate.Config{InsecureNoAuth: true, DrainPeriod: -time.Second}); err == nil {
		t.Error("New with DrainPeriod -1s: got nil error, want one")
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
