package wsgate

import (
	"container/heap"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/wsgate/wsgate/wire"
)

// stormResult is how a reconnect storm went through the per-IP limit.
type stormResult struct {
	p50, p99, all time.Duration // when half, 99 % and all clients were back
	refused       int           // 429s answered
}

// simulateStorm runs clients that all lost their connection at time 0 (a
// node restart) and reconnect from one address with the SDK's schedule
// (wire.Backoff: attempt n waits Delay(n), a 429 counts as a failed
// attempt), through the real ipLimiter at rate, on a virtual clock.
func simulateStorm(clients int, rate float64, seed uint64) stormResult {
	rnd := rand.New(rand.NewPCG(seed, 1))
	lim := newIPLimiter(rate)
	var b wire.Backoff
	q := &attemptQueue{}
	for range clients {
		heap.Push(q, attempt{at: b.Delay(0, rnd.Float64()), n: 0})
	}
	var res stormResult
	back := 0
	for q.Len() > 0 {
		a := heap.Pop(q).(attempt)
		if ok, _ := lim.allow(netip.MustParseAddr("203.0.113.7"), int64(a.at)+1); ok {
			back++
			switch back {
			case clients / 2:
				res.p50 = a.at
			case clients * 99 / 100:
				res.p99 = a.at
			}
			res.all = a.at
			continue
		}
		res.refused++
		heap.Push(q, attempt{at: a.at + b.Delay(a.n+1, rnd.Float64()), n: a.n + 1})
	}
	return res
}

type attempt struct {
	at time.Duration
	n  int
}

type attemptQueue []attempt

func (q attemptQueue) Len() int           { return len(q) }
func (q attemptQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q attemptQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *attemptQueue) Push(x any)        { *q = append(*q, x.(attempt)) }
func (q *attemptQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	*q = old[:len(old)-1]
	return a
}

// TestReconnectStorm: with the default HandshakeRate, 18,000 clients
// behind one address (a carrier-grade NAT) that lose their node at once
// are back within about a minute (99 % of them), on the SDK's own
// backoff. docs/DEPLOYMENT.md explains the default with these figures.
func TestReconnectStorm(t *testing.T) {
	for seed := range uint64(5) {
		r := simulateStorm(18000, defaultHandshakeRate, seed)
		t.Logf("rate %d/s: half back at %v, 99%% at %v, all at %v; %d answered 429",
			defaultHandshakeRate, r.p50, r.p99, r.all, r.refused)
		if r.p99 > time.Minute || r.all > 90*time.Second {
			t.Errorf("99%% of 18,000 back after %v, all after %v; want within a minute and 90 s", r.p99, r.all)
		}
	}
}

// TestReconnectStormTable prints the storm for several rates (go test -v -run StormTable).
func TestReconnectStormTable(t *testing.T) {
	for _, rate := range []float64{20, 50, 100, 200, 300, 500, 1000} {
		r := simulateStorm(18000, rate, 1)
		t.Logf("rate %5.0f/s: half back at %8v, 99%% at %8v, all at %8v; %6d answered 429", rate, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.all.Round(time.Millisecond), r.refused)
	}
}
