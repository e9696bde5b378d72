package websocket_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

// batchEachWay runs f with Batch on io_uring (where this kernel allows
// it; websocket_internal tests check that it does here) and with
// Config.DisableIOURing.
func batchEachWay(t *testing.T, f func(t *testing.T, cfg websocket.Config)) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableIOURing=%v", off), func(t *testing.T) {
			f(t, websocket.Config{Mode: websocket.ModeReactor, DisableIOURing: off})
		})
	}
}

// batchFixture opens n pull-mode clients to a server with cfg and returns
// them with the server's side of each, in the same order.
func batchFixture(t *testing.T, cfg websocket.Config, n int) (servers, clients []*websocket.Conn) {
	t.Helper()
	opened := make(chan *websocket.Conn, n)
	_, url := rtServer(t, cfg, websocket.Handler{OnOpen: func(c *websocket.Conn) { opened <- c }})
	for range n {
		clients = append(clients, rtDial(t, url, nil))
		select {
		case c := <-opened:
			servers = append(servers, c)
		case <-time.After(rtLimit):
			t.Fatal("server side of a connection not opened")
		}
	}
	return servers, clients
}

func prepared(t testing.TB, s string) *websocket.PreparedMessage {
	t.Helper()
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

// TestBatchDelivers: messages written through batches longer than one
// submission, between direct writes to the same connections, reach every
// peer once and in order.
func TestBatchDelivers(t *testing.T) {
	batchEachWay(t, func(t *testing.T, cfg websocket.Config) {
		const n = 300 // several batches of 64
		servers, clients := batchFixture(t, cfg, n)
		var b websocket.Batch
		for round := range 3 {
			pm := prepared(t, fmt.Sprintf("batch %d", round))
			for _, c := range servers {
				if err := b.WritePrepared(c, pm); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if failed := b.Send(); failed != 0 {
				t.Fatalf("round %d: %d writes refused", round, failed)
			}
			for i, c := range servers {
				if err := c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "direct %d %d", round, i)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i, c := range clients {
			for round := range 3 {
				for _, want := range []string{fmt.Sprintf("batch %d", round), fmt.Sprintf("direct %d %d", round, i)} {
					if _, got := rtRead(t, c); string(got) != want {
						t.Fatalf("client %d: got %q, want %q", i, got, want)
					}
				}
			}
		}
	})
}

// TestBatchPartialWrites: a peer that does not read gets messages larger
// than the kernel takes at once, through batches and direct writes mixed;
// what the kernel refused waits in the connection's queue and arrives,
// complete and in order, once the peer reads.
func TestBatchPartialWrites(t *testing.T) {
	batchEachWay(t, func(t *testing.T, cfg websocket.Config) {
		cfg.WriteQueueLimit = 64 << 20
		servers, clients := batchFixture(t, cfg, 2)
		// 16 MiB in all: beyond what a loopback connection buffers (up to
		// tcp_wmem's 4 MiB and tcp_rmem's 6 MiB, by default).
		const size, count = 2 << 20, 8
		var want []string
		var b websocket.Batch
		for i := range count {
			msg := fmt.Sprintf("%d:", i) + strings.Repeat(string(rune('a'+i)), size)
			want = append(want, msg)
			if i%2 == 0 {
				pm := prepared(t, msg)
				for _, c := range servers {
					if err := b.WritePrepared(c, pm); err != nil {
						t.Fatal(err)
					}
				}
				if failed := b.Send(); failed != 0 {
					t.Fatalf("%d writes refused", failed)
				}
				continue
			}
			for _, c := range servers {
				if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if servers[0].Buffered() == 0 || servers[1].Buffered() == 0 {
			t.Fatal("nothing is queued: the test did not fill the socket")
		}
		for i, c := range clients {
			for j, w := range want {
				if _, got := rtRead(t, c); string(got) != w {
					t.Fatalf("client %d, message %d: got %.12q… (%d bytes), want %.12q… (%d bytes)", i, j, got, len(got), w, len(w))
				}
			}
		}
	})
}

// TestBatchRefusedWrite: a batched write to a connection whose peer reset
// it either fails at once or is counted by Send, and the connection ends;
// the other connections of the batch get the message.
func TestBatchRefusedWrite(t *testing.T) {
	batchEachWay(t, func(t *testing.T, cfg websocket.Config) {
		servers, clients := batchFixture(t, cfg, 3)
		if err := clients[1].CloseNow(); err != nil {
			t.Fatal(err)
		}
		<-clients[1].Done()
		var b websocket.Batch
		pm := prepared(t, "after the reset")
		refused := 0
		for i := range 20 { // until the kernel has seen the reset
			for j, c := range servers {
				if err := b.WritePrepared(c, pm); err != nil {
					if j != 1 {
						t.Fatalf("write %d to connection %d: %v", i, j, err)
					}
					refused++
				}
			}
			refused += b.Send()
			if refused > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if refused == 0 {
			t.Fatal("writes to a reset connection never failed")
		}
		select {
		case <-servers[1].Done():
		case <-time.After(rtLimit):
			t.Fatal("the refused connection did not end")
		}
		for _, i := range []int{0, 2} {
			if _, got := rtRead(t, clients[i]); string(got) != "after the reset" {
				t.Fatalf("client %d: got %q", i, got)
			}
		}
	})
}

// TestBatchesCrossing: batches over the same connections in opposite
// orders, and direct writes, at the same time, neither deadlock (a batch
// never waits for a connection's lock while holding others) nor reorder
// any writer's messages.
func TestBatchesCrossing(t *testing.T) {
	batchEachWay(t, func(t *testing.T, cfg websocket.Config) {
		const n, rounds = 200, 30
		servers, clients := batchFixture(t, cfg, n)
		reversed := make([]*websocket.Conn, n)
		for i, c := range servers {
			reversed[n-1-i] = c
		}
		var wg sync.WaitGroup
		for w, order := range [][]*websocket.Conn{servers, reversed} {
			wg.Go(func() {
				var b websocket.Batch
				for r := range rounds {
					pm := prepared(t, fmt.Sprintf("%d %d", w, r))
					for _, c := range order {
						if err := b.WritePrepared(c, pm); err != nil {
							t.Errorf("writer %d: %v", w, err)
						}
					}
					if failed := b.Send(); failed != 0 {
						t.Errorf("writer %d: %d refused", w, failed)
					}
				}
			})
		}
		wg.Go(func() {
			for r := range rounds {
				for _, c := range servers {
					if err := c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "2 %d", r)); err != nil {
						t.Errorf("direct writer: %v", err)
					}
				}
			}
		})
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(rtLimit):
			t.Fatal("writers did not finish: deadlock")
		}
		for i, c := range clients {
			next := [3]int{}
			for range 3 * rounds {
				_, got := rtRead(t, c)
				var w, r int
				if _, err := fmt.Sscanf(string(got), "%d %d", &w, &r); err != nil || w < 0 || w > 2 {
					t.Fatalf("client %d: unexpected message %q", i, got)
				}
				if r != next[w] {
					t.Fatalf("client %d: writer %d's message %d arrived when %d was due", i, w, r, next[w])
				}
				next[w]++
			}
		}
	})
}
