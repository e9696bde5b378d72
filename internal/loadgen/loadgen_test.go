package loadgen_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/api"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/internal/loadgen"
)

const testAPIKey = "bench-test-key"

// startGateway runs a real gateway configured as run.sh configures the
// binary: no auth, no rate limits, action 100 echoes, push API mounted.
// echo=false leaves action 100 unregistered.
func startGateway(t *testing.T, echo bool, tune func(*wsgate.Config)) *gatewaytest.Gateway {
	t.Helper()
	page := http.NewServeMux()
	cfg := wsgate.Config{InsecureNoAuth: true, HandshakeRate: -1, MessageRate: -1, Page: page}
	if tune != nil {
		tune(&cfg)
	}
	return gatewaytest.Start(t, cfg, func(s *wsgate.Server) {
		if echo {
			err := s.Handle(loadgen.ActionEcho, func(_ context.Context, r *wsgate.Request) ([]byte, error) {
				return append([]byte(nil), r.Payload...), nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		a, err := api.New(s, api.Config{APIKey: testAPIKey})
		if err != nil {
			t.Fatal(err)
		}
		page.Handle("/api/", a)
	})
}

func config(g *gatewaytest.Gateway, progress io.Writer) loadgen.Config {
	return loadgen.Config{
		URL:           g.WS + "/ws",
		APIKey:        testAPIKey,
		ServerPID:     os.Getpid(), // the gateway runs in this process
		Server:        "test",
		Progress:      progress,
		ProgressEvery: 50 * time.Millisecond,
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// metric returns a metric the result must have.
func metric(t *testing.T, r loadgen.Result, name string) float64 {
	t.Helper()
	v, ok := r.Metric(name)
	if !ok {
		t.Fatalf("%s result has no metric %q: %+v", r.Scenario, name, r.Metrics)
	}
	return v
}

func TestIdle(t *testing.T) {
	leakcheck.Check(t)
	g := startGateway(t, true, nil)
	var progress bytes.Buffer
	res, err := loadgen.Idle(testCtx(t), config(g, &progress), loadgen.IdleOptions{N: 60, Conc: 8, Settle: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("Idle: %v", err)
	}
	if got := metric(t, res, "conns"); got != 60 {
		t.Errorf("conns: got %v, want 60", got)
	}
	if got := metric(t, res, "alive"); got != 60 {
		t.Errorf("alive: got %v, want 60", got)
	}
	if res.Errors != 0 {
		t.Errorf("errors: got %d, want 0", res.Errors)
	}
	metric(t, res, "rss_per_conn")
	if !strings.Contains(progress.String(), "[idle test]  conns 60  msgs 120  errors 0") {
		t.Errorf("progress: got %q, want a final line with 60 conns and 120 replies", progress.String())
	}
}

// TestIdleRefused checks that connections the server refuses are counted
// as errors and not as held connections.
func TestIdleRefused(t *testing.T) {
	leakcheck.Check(t)
	g := startGateway(t, true, func(c *wsgate.Config) { c.MaxConns = 10 })
	res, err := loadgen.Idle(testCtx(t), config(g, nil), loadgen.IdleOptions{N: 25, Conc: 5, Settle: time.Millisecond})
	if err != nil {
		t.Fatalf("Idle: %v", err) // a partly refused run is a result with errors
	}
	if got := metric(t, res, "conns"); got != 10 {
		t.Errorf("conns: got %v, want 10", got)
	}
	if got := metric(t, res, "alive"); got != 10 {
		t.Errorf("alive: got %v, want 10", got)
	}
	if res.Errors != 15 {
		t.Errorf("errors: got %d, want 15", res.Errors)
	}
}

// pipeSpawner runs workers on goroutines connected by pipes, as the bench
// process runs "wsgate bench hold" subprocesses.
func pipeSpawner(t *testing.T) loadgen.Spawner {
	return func(ctx context.Context, args []string) (*loadgen.Worker, error) {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := loadgen.Hold(ctx, args, inR, outW)
			_ = outW.Close() // tells the bench side the worker ended
			done <- err
		}()
		return &loadgen.Worker{Stdin: inW, Stdout: outR, Wait: func() error { return <-done }}, nil
	}
}

func TestIdleWorkers(t *testing.T) {
	leakcheck.Check(t)
	g := startGateway(t, true, nil)
	cfg := config(g, nil)
	cfg.Spawn = pipeSpawner(t)
	res, err := loadgen.Idle(testCtx(t), cfg, loadgen.IdleOptions{N: 50, Conc: 9, Procs: 3, Settle: time.Millisecond})
	if err != nil {
		t.Fatalf("Idle: %v", err)
	}
	for name, want := range map[string]float64{"conns": 50, "alive": 50} {
		if got := metric(t, res, name); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	if got := g.Stats().Accepted; got != 50 {
		t.Errorf("server accepted: got %d, want 50", got)
	}
}

func TestFanout(t *testing.T) {
	for _, procs := range []int{1, 2} {
		t.Run(map[int]string{1: "one process", 2: "two workers"}[procs], func(t *testing.T) {
			leakcheck.Check(t)
			g := startGateway(t, true, nil)
			cfg := config(g, nil)
			cfg.Spawn = pipeSpawner(t)
			o := loadgen.FanoutOptions{N: 40, Conc: 8, Repeats: 5, Warmup: 1, Gap: time.Millisecond, Procs: procs}
			res, err := loadgen.Fanout(testCtx(t), cfg, o)
			if err != nil {
				t.Fatalf("Fanout: %v", err)
			}
			if got := metric(t, res, "missed"); got != 0 {
				t.Errorf("missed: got %v, want 0", got)
			}
			if got := metric(t, res, "conns"); got != 40 {
				t.Errorf("conns: got %v, want 40", got)
			}
			if p50, max := metric(t, res, "p50"), metric(t, res, "max"); p50 <= 0 || p50 > max {
				t.Errorf("p50 %v ms, max %v ms: want 0 < p50 ≤ max", p50, max)
			}
			if got := g.Stats().Delivered; got != 6*40 {
				t.Errorf("server delivered: got %d, want %d", got, 6*40)
			}
		})
	}
}

func TestFanoutWrongKey(t *testing.T) {
	leakcheck.Check(t)
	g := startGateway(t, true, nil)
	cfg := config(g, nil)
	cfg.APIKey = "wrong"
	_, err := loadgen.Fanout(testCtx(t), cfg, loadgen.FanoutOptions{N: 3, Repeats: 1})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Fanout with a wrong key: got %v, want a 401 error", err)
	}
}

func TestRPC(t *testing.T) {
	leakcheck.Check(t)
	g := startGateway(t, true, nil)
	o := loadgen.RPCOptions{Conns: 4, Window: 2, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond}
	res, err := loadgen.RPC(testCtx(t), config(g, nil), o)
	if err != nil {
		t.Fatalf("RPC: %v", err)
	}
	replies := metric(t, res, "replies")
	if replies == 0 {
		t.Error("replies: got 0, want some")
	}
	if got := float64(g.Stats().Requests); got < replies {
		t.Errorf("server requests: got %v, want at least the %v replies", got, replies)
	}
	if res.Errors != 0 {
		t.Errorf("errors: got %d, want 0", res.Errors)
	}
	metric(t, res, "msgs_per_cpu_s")
	if p50, p999 := metric(t, res, "p50"), metric(t, res, "p99.9"); p50 <= 0 || p50 > p999 {
		t.Errorf("p50 %v ms, p99.9 %v ms: want 0 < p50 ≤ p99.9", p50, p999)
	}
}

// TestRPCErrorReplies checks that error replies are counted as errors,
// not as answers: this gateway has no handler for the echo action.
func TestRPCErrorReplies(t *testing.T) {
	leakcheck.Check(t)
	g := startGateway(t, false, nil)
	o := loadgen.RPCOptions{Conns: 2, Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond}
	res, err := loadgen.RPC(testCtx(t), config(g, nil), o)
	if err != nil {
		t.Fatalf("RPC: %v", err)
	}
	if got := metric(t, res, "replies"); got != 0 {
		t.Errorf("replies: got %v, want 0", got)
	}
	if res.Errors == 0 {
		t.Error("errors: got 0, want the error replies counted")
	}
}

func TestConnect(t *testing.T) {
	leakcheck.Check(t)
	g := startGateway(t, true, nil)
	res, err := loadgen.Connect(testCtx(t), config(g, nil), loadgen.ConnectOptions{N: 30, Conc: 4})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if got := metric(t, res, "handshakes"); got != 30 {
		t.Errorf("handshakes: got %v, want 30", got)
	}
	// The server counts a connection when its executor opens it, a moment after
	// the 101 the load generator saw.
	gatewaytest.WaitFor(t, "the server to count 30 accepted connections", func() bool { return g.Stats().Accepted == 30 })
	metric(t, res, "handshakes_per_s")
}

func TestConnectRefused(t *testing.T) {
	leakcheck.Check(t)
	// Every client dials from its own address, so per-address handshake
	// limits do not refuse them: an authenticator refuses every other one.
	var calls atomic.Int64
	g := startGateway(t, true, func(c *wsgate.Config) {
		c.InsecureNoAuth = false
		c.Authenticate = func(context.Context, *http.Request) (wsgate.Identity, error) {
			if calls.Add(1)%2 == 0 {
				return wsgate.Identity{}, errors.New("wsgate: refused by the test")
			}
			return wsgate.Identity{UserID: "u"}, nil
		}
	})
	res, err := loadgen.Connect(testCtx(t), config(g, nil), loadgen.ConnectOptions{N: 10, Conc: 1})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if got := metric(t, res, "handshakes"); got+float64(res.Errors) != 10 || res.Errors == 0 {
		t.Errorf("got %v handshakes and %d errors, want some of each, 10 in all", got, res.Errors)
	}
}

func TestPushAllocs(t *testing.T) {
	leakcheck.Check(t)
	res, err := loadgen.PushAllocs(testCtx(t), loadgen.PushAllocsOptions{Small: 5, Large: 20, Pushes: 5})
	if err != nil {
		t.Fatalf("PushAllocs: %v", err)
	}
	if got := metric(t, res, "allocs_per_recipient"); got < 0 {
		t.Errorf("allocs_per_recipient: got %v, want ≥ 0", got)
	}
	metric(t, res, "allocs_per_push")
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"", "http://x/ws", "ws://"} {
		if _, err := loadgen.Connect(testCtx(t), loadgen.Config{URL: u}, loadgen.ConnectOptions{N: 1}); err == nil {
			t.Errorf("Connect(%q): got no error, want one", u)
		}
	}
}
