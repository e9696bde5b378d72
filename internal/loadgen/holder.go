package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/procstat"
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
	// Peer, when Peer.Peer is set, makes the connections speak that
	// server's own protocol with a token per user (the peer scenarios)
	// instead of the simple form.
	Peer PeerConfig
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
	readyN  atomic.Int64 // peer mode: hellos, connect and subscribe replies
	rounds  rounds
}

func newHolder(cfg holderConfig, c *Counters) *holder {
	h := &holder{cfg: cfg, c: c}
	onMessage := h.onMessage
	if cfg.Peer.Peer != "" {
		onMessage = func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
			cfg.Peer.handle(c, typ, data, h)
		}
	}
	h.d = websocket.NewDialer(clientConfig(), websocket.Handler{
		OnMessage: onMessage,
		OnClose:   h.onClose,
	})
	return h
}

// The peerEvents of a holder in peer mode.
func (h *holder) ready() { h.readyN.Add(1) }
func (h *holder) fail()  { h.c.Errors.Add(1) }
func (h *holder) arrive(r uint64) {
	h.rounds.arrive(r, time.Now().UnixNano())
	h.c.Msgs.Add(1)
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
	n, dialErr := len(h.conns), h.dialErr
	h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return n, err
	}
	if h.cfg.Peer.Peer != "" {
		// Subscribed everywhere before the first push, or the push would
		// miss some.
		want := int64(n) * h.cfg.Peer.readyPerConn()
		if err := waitFor(ctx, readyTimeout, func() bool { return h.readyN.Load() >= want }); err != nil {
			return n, fmt.Errorf("wsgate: bench: %d of %d connections ready: %w", h.readyN.Load()/h.cfg.Peer.readyPerConn(), n, err)
		}
	}
	return n, dialErr
}

// readyTimeout bounds waiting for every connection's subscriptions.
const readyTimeout = 60 * time.Second

func (h *holder) dialOne(ctx context.Context, user int) {
	dctx, cancel := context.WithTimeout(ctx, h.cfg.DialTimeout)
	c, err := h.dial(dctx, user)
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

// dial opens the connection of user number i, from its own source
// address; in peer mode with i's token, and it subscribes.
func (h *holder) dial(ctx context.Context, i int) (*websocket.Conn, error) {
	pc := h.cfg.Peer
	if pc.Peer == "" {
		c, _, err := h.d.Dial(ctx, userURL(h.cfg.URL, i), &websocket.DialOptions{NetDial: netDialFrom(i)})
		return c, err
	}
	token, err := pc.peerToken(i)
	if err != nil {
		return nil, err
	}
	c, _, err := h.d.Dial(ctx, h.cfg.URL, pc.peerDial(h.cfg.URL, i, token))
	if err != nil {
		return nil, err
	}
	if err := pc.start(c, i, token); err != nil {
		_ = c.CloseNow() // the error below is the one to report
		return nil, err
	}
	return c, nil
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
// With upto > 0 only the connections of users below upto are expected.
func (h *holder) waitRound(ctx context.Context, r uint64, upto int, timeout time.Duration) (roundResult, error) {
	h.mu.Lock()
	want := int64(len(h.conns))
	h.mu.Unlock()
	if upto > 0 {
		want = min(want, int64(max(upto-h.cfg.First, 0)))
	}
	err := waitFor(ctx, timeout, func() bool { return h.rounds.got(r) >= want })
	if errors.Is(err, errTimeout) {
		err = nil // a short round is reported by its count
	}
	return roundResult{Got: int(h.rounds.got(r)), Last: h.rounds.last(r)}, err
}

// cpu returns the CPU time this process has used: the share's cost on the
// load-generator side.
func (h *holder) cpu(context.Context) (time.Duration, error) {
	return procstat.CPU(os.Getpid())
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
