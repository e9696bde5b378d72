package loadgen_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/api"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/internal/loadgen"
)

const testSecret = "peer-test-secret-0123456789"

// startAuthGateway runs a real gateway as bench/peer/run.sh runs the
// binary: JWT authentication with testSecret, no rate limits, the push API.
func startAuthGateway(t *testing.T) *gatewaytest.Gateway {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	page := http.NewServeMux()
	cfg := wsgate.Config{Authenticate: v.Authenticate, HandshakeRate: -1, MessageRate: -1, Page: page}
	return gatewaytest.Start(t, cfg, func(s *wsgate.Server) {
		a, err := api.New(s, api.Config{APIKey: testAPIKey})
		if err != nil {
			t.Fatal(err)
		}
		page.Handle("/api/", a)
	})
}

func TestPeerWsgate(t *testing.T) {
	cases := []struct {
		o     loadgen.PeerOptions
		stats func(st wsgate.Stats) (got, want uint64) // server-side deliveries
		cpu   string                                   // the per-operation CPU metric
	}{
		{o: loadgen.PeerOptions{Scenario: "fanout", Repeats: 4},
			stats: func(st wsgate.Stats) (uint64, uint64) { return st.PushKinds.Topic.Delivered, 5 * 30 }, cpu: "server_cpu_per_publish"},
		{o: loadgen.PeerOptions{Scenario: "personal", Users: 7, PushConc: 3, Repeats: 4},
			stats: func(st wsgate.Stats) (uint64, uint64) { return st.PushKinds.User.Delivered, 5 * 7 }, cpu: "server_cpu_per_push"},
		{o: loadgen.PeerOptions{Scenario: "multi", Users: 9, Repeats: 4},
			stats: func(st wsgate.Stats) (uint64, uint64) { return st.PushKinds.User.Messages, 5 * 9 }, cpu: "server_cpu_per_delivery"},
		{o: loadgen.PeerOptions{Scenario: "busy", Topics: 4, BusyRate: 200, Repeats: 4}, cpu: "server_cpu_per_publish"},
		{o: loadgen.PeerOptions{Scenario: "idle", Settle: 20 * time.Millisecond}, cpu: "idle_cpu"},
		{o: loadgen.PeerOptions{Scenario: "connect", Conc: 4}, cpu: "server_cpu_per_handshake"},
	}
	for _, c := range cases {
		t.Run(c.o.Scenario, func(t *testing.T) {
			leakcheck.Check(t)
			g := startAuthGateway(t)
			cfg := config(g, nil)
			cfg.Spawn = pipeSpawner(t)
			o := c.o
			o.N, o.Conc, o.Procs, o.Warmup, o.Gap = 30, max(o.Conc, 8), 2, 1, time.Millisecond
			res, err := loadgen.PeerScenario(testCtx(t), cfg, loadgen.PeerConfig{Peer: loadgen.PeerWsgate, Secret: testSecret}, o)
			if err != nil {
				t.Fatalf("PeerScenario: %v", err)
			}
			if res.Errors != 0 {
				t.Errorf("errors: got %d, want 0 (%+v)", res.Errors, res.Metrics)
			}
			metric(t, res, c.cpu)
			switch o.Scenario {
			case "connect":
				if got := metric(t, res, "handshakes"); got != 30 {
					t.Errorf("handshakes: got %v, want 30", got)
				}
				return
			case "idle":
				if got := metric(t, res, "alive"); got != 30 {
					t.Errorf("alive: got %v, want 30", got)
				}
				return
			}
			if got := metric(t, res, "missed"); got != 0 {
				t.Errorf("missed: got %v, want 0", got)
			}
			if p50, max := metric(t, res, "p50"), metric(t, res, "max"); p50 <= 0 || p50 > max {
				t.Errorf("p50 %v ms, max %v ms: want 0 < p50 ≤ max", p50, max)
			}
			metric(t, res, "server_push_mean")
			if c.stats != nil {
				if got, want := c.stats(g.Stats()); got != want {
					t.Errorf("server deliveries: got %d, want %d", got, want)
				}
			}
		})
	}
}

func TestPeerWrongSecret(t *testing.T) {
	leakcheck.Check(t)
	g := startAuthGateway(t)
	o := loadgen.PeerOptions{Scenario: "fanout", N: 3, Repeats: 1}
	_, err := loadgen.PeerScenario(testCtx(t), config(g, nil), loadgen.PeerConfig{Peer: loadgen.PeerWsgate, Secret: "another-secret-0123456789"}, o)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("PeerScenario with the wrong secret: got %v, want a 401 refusal", err)
	}
}

func TestPeerBadOptions(t *testing.T) {
	cfg := loadgen.Config{URL: "ws://127.0.0.1:1/ws"}
	for _, c := range []struct {
		pc loadgen.PeerConfig
		o  loadgen.PeerOptions
	}{
		{loadgen.PeerConfig{Peer: loadgen.PeerWsgate}, loadgen.PeerOptions{Scenario: "dance"}},
		{loadgen.PeerConfig{Peer: "pusher"}, loadgen.PeerOptions{Scenario: "fanout"}},
	} {
		if _, err := loadgen.PeerScenario(testCtx(t), cfg, c.pc, c.o); err == nil || !strings.HasPrefix(err.Error(), "wsgate: ") {
			t.Errorf("%+v %+v: got %v, want a wsgate: error", c.pc, c.o, err)
		}
	}
}
