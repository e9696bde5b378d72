package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// holderConfig describes one share of the idle or fanout connections.
type holderConfig struct {
	URL         string
	First       int // user number of the first connection
	N           int // connections to open
	Conc        int // handshakes in flight
	DialTimeout time.Duration
}

// holder opens and keeps a share of many connections: it checks them with
// an echo on every one and notes when each push round has reached all of
// them. It runs in the bench process or in a worker process (Hold).
type holder struct {
	cfg holderConfig
	c   *Counters
	d   *websocket.Dialer

	mu      sync.Mutex
	conns   []*websocket.Conn
	dialErr error // first failed handshake

	closing atomic.Bool
	replies atomic.Int64
	rounds  rounds
}

func newHolder(cfg holderConfig, c *Counters) *holder {
	h := &holder{cfg: cfg, c: c}
	h.d = websocket.NewDialer(clientConfig(), websocket.Handler{
		OnMessage: h.onMessage,
		OnClose:   h.onClose,
	})
	return h
}

func (h *holder) onMessage(_ *websocket.Conn, typ websocket.MessageType, data []byte) {
	a, payload, err := wire.DecodeSimple(data)
	if typ != websocket.BinaryMessage || err != nil {
		h.c.Errors.Add(1)
		return
	}
	switch {
	case a == ActionPush && len(payload) >= 8:
		h.rounds.arrive(binary.BigEndian.Uint64(payload), time.Now().UnixNano())
	case a == ActionEcho:
		h.replies.Add(1)
	case a&wire.SimpleErrorBit != 0:
		h.c.Errors.Add(1)
		return
	}
	h.c.Msgs.Add(1)
}

// onClose counts connections the server dropped while the run still needed
// them.
func (h *holder) onClose(*websocket.Conn, error) {
	if !h.closing.Load() {
		h.c.Errors.Add(1)
	}
}

// open dials the share with at most Conc handshakes in flight and returns
// how many connections it opened. Failed handshakes are counted, not fatal;
// the first one's error is returned with the count.
func (h *holder) open(ctx context.Context) (int, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(h.cfg.Conc, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= h.cfg.N {
					return
				}
				h.dialOne(ctx, h.cfg.First+i)
			}
		})
	}
	wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return len(h.conns), err
	}
	return len(h.conns), h.dialErr
}

func (h *holder) dialOne(ctx context.Context, user int) {
	dctx, cancel := context.WithTimeout(ctx, h.cfg.DialTimeout)
	c, _, err := h.d.Dial(dctx, userURL(h.cfg.URL, user), nil)
	cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.c.Errors.Add(1)
		if h.dialErr == nil {
			h.dialErr = err
		}
		return
	}
	h.conns = append(h.conns, c)
	h.c.Opened.Add(1)
}

// echo sends one request on every open connection and waits, at most
// timeout, for the replies; it returns how many came back. A connection
// the server lost cannot answer, so the count is the number of live ones.
func (h *holder) echo(ctx context.Context, timeout time.Duration) (int, error) {
	h.mu.Lock()
	conns := h.conns
	h.mu.Unlock()
	msg := wire.AppendSimple(nil, ActionEcho, []byte("are you there"))
	before := h.replies.Load()
	sent := int64(0)
	for _, c := range conns {
		// A write fails only on a connection already lost, which onClose
		// has counted.
		if c.WriteMessage(websocket.BinaryMessage, msg) == nil {
			sent++
		}
	}
	err := waitFor(ctx, timeout, func() bool { return h.replies.Load()-before >= sent })
	return int(h.replies.Load() - before), err
}

// waitRound waits, at most timeout, until push round r reached every
// connection of the share.
func (h *holder) waitRound(ctx context.Context, r uint64, timeout time.Duration) (roundResult, error) {
	h.mu.Lock()
	want := int64(len(h.conns))
	h.mu.Unlock()
	err := waitFor(ctx, timeout, func() bool { return h.rounds.got(r) >= want })
	if errors.Is(err, errTimeout) {
		err = nil // a short round is reported by its count
	}
	return roundResult{Got: int(h.rounds.got(r)), Last: h.rounds.last(r)}, err
}

// close closes every connection with 1000 and waits, bounded by ctx.
func (h *holder) close(ctx context.Context) error {
	h.closing.Store(true)
	return h.d.Shutdown(ctx, websocket.StatusNormalClosure, "bench done")
}

// maxRounds bounds the push rounds of one fanout run.
const maxRounds = 1024

// rounds counts the arrivals of each push round and keeps the time of the
// latest one.
type rounds struct {
	count  [maxRounds]atomic.Int64
	latest [maxRounds]atomic.Int64 // unix nanoseconds
}

// roundResult is one share's view of one push round.
type roundResult struct {
	Got  int   `json:"got"`  // connections that received it
	Last int64 `json:"last"` // unix nanoseconds of the last arrival; 0 if none
}

func (r *rounds) arrive(round uint64, now int64) {
	if round >= maxRounds {
		return
	}
	r.count[round].Add(1)
	for {
		l := r.latest[round].Load()
		if now <= l || r.latest[round].CompareAndSwap(l, now) {
			return
		}
	}
}

func (r *rounds) got(round uint64) int64 {
	if round >= maxRounds {
		return 0
	}
	return r.count[round].Load()
}

func (r *rounds) last(round uint64) int64 {
	if round >= maxRounds {
		return 0
	}
	return r.latest[round].Load()
}

// errTimeout is waitFor's error when cond stayed false.
var errTimeout = errors.New("wsgate: bench: timed out")

// waitFor polls cond every millisecond until it holds, timeout passes
// (errTimeout) or ctx ends. Arrival times are stamped where they happen,
// so the polling interval does not change any measured figure.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return errTimeout
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
