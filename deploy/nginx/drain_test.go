package nginx_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/redistest"
)

// received collects the sequence numbers of one client's pushes.
type received struct {
	mu   sync.Mutex
	seqs []uint64
}

func (r *received) add(p client.Push) {
	r.mu.Lock()
	r.seqs = append(r.seqs, p.Seq)
	r.mu.Unlock()
}

func (r *received) snapshot() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seqs)
}

// TestDrainBehindNginx is the deployment the docs describe: two nodes share
// Redis behind the documented nginx config, with no sticky sessions. Node A
// drains (--drain-period) while node B pushes to every user. The clients on A
// are moved to B — nginx passes their reconnects to B, A's 503 included — and
// every client gets every push to its user exactly once, in order.
func TestDrainBehindNginx(t *testing.T) {
	r := redistest.Start(t)
	bo := redisbroker.Options{FlushInterval: 50 * time.Millisecond}
	a := r.StartNode(t, bo, wsgate.Config{DrainPeriod: time.Second, HandshakeRate: -1, MessageRate: -1})
	b := r.StartNode(t, bo, wsgate.Config{HandshakeRate: -1, MessageRate: -1})
	via := "ws://" + startNginx(t, a.Addr, b.Addr) + "/ws?user="

	const users, pushes = 12, 40
	ctx, cancel := context.WithTimeout(context.Background(), 3*gatewaytest.Timeout)
	defer cancel()
	got := make([]*received, users)
	clients := make([]*client.Client, users)
	for i := range users {
		got[i] = &received{}
		c, err := client.Dial(ctx, via+"u"+strconv.Itoa(i), client.Options{OnPush: got[i].add})
		if err != nil {
			t.Fatalf("Dial through nginx: %v", err)
		}
		defer func() { _ = c.Close() }() // before the nodes stop
		clients[i] = c
	}
	onA := a.Stats().Conns
	if onA == 0 || onA == users {
		t.Fatalf("nginx put %d of %d clients on node A, want some on each node", onA, users)
	}
	firstConn := make([]string, users)
	for i, c := range clients {
		firstConn[i] = string(c.Hello().ConnID)
	}

	// Pushes flow from B for about a second; A starts draining a quarter of
	// the way in and takes its whole drain period.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	drainNow := make(chan struct{})
	go func() {
		defer wg.Done()
		<-drainNow
		if err := a.Shutdown(ctx); err != nil {
			errs <- fmt.Errorf("node A Shutdown: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		defer close(errs)
		for k := 1; k <= pushes; k++ {
			if k == pushes/4 {
				close(drainNow)
			}
			for i := range users {
				to := wsgate.Target{User: "u" + strconv.Itoa(i)}
				if _, err := b.Publish(ctx, to, 120, []byte(strconv.Itoa(k))); err != nil {
					errs <- fmt.Errorf("Publish %d: %w", k, err)
					return
				}
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	wg.Wait()
	for err := range errs {
		t.Fatal(err)
	}

	want := make([]uint64, pushes)
	for k := range want {
		want[k] = uint64(k + 1)
	}
	gatewaytest.WaitFor(t, "every push at every client", func() bool {
		for _, g := range got {
			if len(g.snapshot()) < pushes {
				return false
			}
		}
		return true
	})
	moved := 0
	for i, g := range got {
		if seqs := g.snapshot(); !slices.Equal(seqs, want) {
			t.Errorf("u%d received sequences %v, want 1..%d once each, in order", i, seqs, pushes)
		}
		if string(clients[i].Hello().ConnID) != firstConn[i] {
			moved++
		}
		if s := clients[i].State(); s != client.StateConnected {
			t.Errorf("u%d: state %v after the drain, want connected", i, s)
		}
	}
	if moved != onA {
		t.Errorf("%d clients reconnected, want the %d that were on node A", moved, onA)
	}
	if n := b.Stats().Conns; n != users {
		t.Errorf("node B holds %d connections after the drain, want all %d", n, users)
	}
}
