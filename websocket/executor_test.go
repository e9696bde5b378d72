package websocket

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const executorTestLimit = 10 * time.Second

// executorConns returns n socketless connections of an engine running h.
func executorConns(t *testing.T, cfg Config, h Handler, n int) (*engine, []*Conn) {
	t.Helper()
	e := newEngine(cfg, h, false, false)
	t.Cleanup(e.exec.stop)
	conns := make([]*Conn, n)
	for i := range conns {
		conns[i] = &Conn{eng: e, value: i, fd: -1, slot: -1}
	}
	return e, conns
}

func workerCount(e *executor) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.workers
}

func TestExecutorBoundsWorkers(t *testing.T) {
	const workers, conns = 3, 12
	release := make(chan struct{})
	var running, peak, delivered atomic.Int32
	e, cs := executorConns(t, Config{Workers: workers}, Handler{
		OnMessage: func(*Conn, MessageType, []byte) {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			delivered.Add(1)
		},
	}, conns)
	for _, c := range cs {
		_ = c.onMessage(BinaryMessage, []byte("x"))
	}
	waitUntil(t, "workers busy", func() bool { return running.Load() == workers })
	if got := workerCount(&e.exec); got != workers {
		t.Errorf("got %d worker goroutines, want %d", got, workers)
	}
	close(release)
	waitUntil(t, "every message delivered", func() bool { return delivered.Load() == conns })
	if got := peak.Load(); got > workers {
		t.Errorf("got %d callbacks at once, want at most Workers = %d", got, workers)
	}
}

// TestExecutorPerConnOrder: many connections, many messages each; each
// connection's callbacks run one at a time and in order, on few workers.
func TestExecutorPerConnOrder(t *testing.T) {
	const conns, msgs = 20, 200
	var mu sync.Mutex
	next := make([]int, conns)
	busy := make([]bool, conns)
	var total atomic.Int32
	_, cs := executorConns(t, Config{Workers: 4, InboxLimit: msgs + 1}, Handler{
		OnMessage: func(c *Conn, _ MessageType, data []byte) {
			id := c.value.(int)
			mu.Lock()
			if busy[id] {
				t.Errorf("conn %d: two callbacks at once", id)
			}
			busy[id] = true
			if want := fmt.Sprint(next[id]); string(data) != want {
				t.Errorf("conn %d: got message %s, want %s", id, data, want)
			}
			next[id]++
			mu.Unlock()
			runtime.Gosched()
			mu.Lock()
			busy[id] = false
			mu.Unlock()
			total.Add(1)
		},
	}, conns)
	var wg sync.WaitGroup
	for _, c := range cs { // one feeder per connection, like its I/O goroutine
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range msgs {
				_ = c.onMessage(TextMessage, []byte(fmt.Sprint(i)))
			}
		}()
	}
	wg.Wait()
	waitUntil(t, "every message delivered", func() bool { return total.Load() == conns*msgs })
}

func TestExecutorIdleWorkersExit(t *testing.T) {
	var delivered atomic.Int32
	e, cs := executorConns(t, Config{Workers: 8}, Handler{
		OnMessage: func(*Conn, MessageType, []byte) { time.Sleep(time.Millisecond); delivered.Add(1) },
	}, 8)
	e.exec.idleFor = 20 * time.Millisecond
	for _, c := range cs {
		_ = c.onMessage(BinaryMessage, nil)
	}
	waitUntil(t, "messages delivered", func() bool { return delivered.Load() == 8 })
	waitUntil(t, "idle workers exit", func() bool { return workerCount(&e.exec) == 0 })
	// Work after the pool emptied starts workers again.
	_ = cs[0].onMessage(BinaryMessage, nil)
	waitUntil(t, "message after idle exit delivered", func() bool { return delivered.Load() == 9 })
}

func TestExecutorStopWaitsForWorkers(t *testing.T) {
	var delivered atomic.Int32
	e, cs := executorConns(t, Config{Workers: 4}, Handler{
		OnMessage: func(*Conn, MessageType, []byte) { delivered.Add(1) },
	}, 4)
	for _, c := range cs {
		_ = c.onMessage(BinaryMessage, nil)
	}
	waitUntil(t, "messages delivered", func() bool { return delivered.Load() == 4 })
	done := make(chan struct{})
	go func() { e.exec.stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(executorTestLimit):
		t.Fatal("stop did not return")
	}
	if got := workerCount(&e.exec); got != 0 {
		t.Errorf("got %d workers after stop, want 0", got)
	}
}

// TestExecutorQuickBurstFewWorkers: a burst of quick callbacks on many
// connections runs on at most GOMAXPROCS workers, however many Workers
// allows, when no callback blocks (growth for blocked workers is switched
// off here, so a descheduled test cannot make one look blocked).
func TestExecutorQuickBurstFewWorkers(t *testing.T) {
	const conns = 500
	var delivered atomic.Int32
	e, cs := executorConns(t, Config{Workers: 1024}, Handler{
		OnMessage: func(*Conn, MessageType, []byte) { delivered.Add(1) },
	}, conns)
	e.exec.mu.Lock()
	e.exec.slowAfter = time.Hour
	e.exec.mu.Unlock()
	for _, c := range cs {
		_ = c.onMessage(BinaryMessage, nil)
	}
	waitUntil(t, "every message delivered", func() bool { return delivered.Load() == conns })
	if got, want := workerCount(&e.exec), runtime.GOMAXPROCS(0); got > want {
		t.Errorf("got %d workers for quick callbacks, want at most GOMAXPROCS = %d", got, want)
	}
}

// TestExecutorGrowsForBlockedCallbacks: callbacks that block get workers
// beyond GOMAXPROCS, up to Workers, so that every connection runs.
func TestExecutorGrowsForBlockedCallbacks(t *testing.T) {
	workers := runtime.GOMAXPROCS(0) + 6
	release := make(chan struct{})
	var running atomic.Int32
	e, cs := executorConns(t, Config{Workers: workers}, Handler{
		OnMessage: func(*Conn, MessageType, []byte) {
			running.Add(1)
			<-release
		},
	}, workers+2)
	for _, c := range cs {
		_ = c.onMessage(BinaryMessage, nil)
	}
	waitUntil(t, "a worker for every blocked callback", func() bool { return running.Load() == int32(workers) })
	if got := workerCount(&e.exec); got != workers {
		t.Errorf("got %d workers, want Workers = %d", got, workers)
	}
	close(release)
	waitUntil(t, "the waiting connections run", func() bool { return running.Load() == int32(workers+2) })
}

// TestExecutorRunQueueRing drives the run queue's ring against a plain
// FIFO: order kept across wrap-around and growth, and the ring dropped
// once a burst has drained.
func TestExecutorRunQueueRing(t *testing.T) {
	var e executor
	conns := make([]*Conn, 2000)
	for i := range conns {
		conns[i] = &Conn{inN: int32(i)}
	}
	var want []*Conn
	next := 0
	push := func(n int) {
		for range n {
			e.appendLocked(conns[next%len(conns)])
			want = append(want, conns[next%len(conns)])
			next++
		}
	}
	pop := func(n int) {
		for range n {
			got := e.popLocked()
			if len(want) == 0 {
				if got != nil {
					t.Fatalf("pop from an empty queue: got conn %d", got.inN)
				}
				return
			}
			if got != want[0] {
				t.Fatalf("pop: got conn %d, want %d", got.inN, want[0].inN)
			}
			want = want[1:]
		}
	}
	for _, step := range [][2]int{{10, 7}, {12, 3}, {30, 20}, {5, 40}, {1500, 1000}, {700, 1300}, {3, 1}} {
		push(step[0])
		pop(step[1])
		if e.queued != len(want) {
			t.Fatalf("queued = %d, want %d", e.queued, len(want))
		}
	}
	pop(len(want) + 1)
	if e.queued != 0 || len(e.runq) > runqKeep {
		t.Fatalf("after draining: queued %d, ring of %d kept, want 0 and at most %d", e.queued, len(e.runq), runqKeep)
	}
}
