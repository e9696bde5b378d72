package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// RPCOptions tunes the rpc scenario. Zero values take the defaults.
type RPCOptions struct {
	Conns    int           // connections; default 50
	Window   int           // requests in flight per connection; default 1
	Size     int           // request payload bytes (at least 8); default 64
	Warmup   time.Duration // load before measuring; default 1 s
	Duration time.Duration // measured time; default 10 s
}

func (o RPCOptions) withDefaults() RPCOptions {
	if o.Conns <= 0 {
		o.Conns = 50
	}
	o.Window = max(o.Window, 1)
	if o.Size <= 0 {
		o.Size = 64
	}
	o.Size = max(o.Size, 8)
	if o.Warmup <= 0 {
		o.Warmup = time.Second
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	return o
}

// Phases of an rpc run: replies count only while measuring, and a reply
// sends the next request until stopping.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// rpcRun is the state every connection's callbacks share. A request's
// payload starts with its send time (nanoseconds since base), which the
// reply echoes, so no per-connection state is needed to time it.
type rpcRun struct {
	r        *run
	o        RPCOptions
	base     time.Time
	phase    atomic.Int32
	inflight atomic.Int64
	hist     histogram
	bufs     sync.Pool
}

// RPC opens Conns connections; each keeps Window echo requests in flight,
// sending the next as soon as a reply arrives. After Warmup it measures
// for Duration: replies per second, their latency, and the server's CPU
// time over the same window (replies per server CPU-second is the figure
// that stays fair when the load generator shares the machine).
func RPC(ctx context.Context, cfg Config, o RPCOptions) (Result, error) {
	o = o.withDefaults()
	r, err := newRun(cfg, "rpc", fmt.Sprintf("conns=%d window=%d size=%d duration=%s", o.Conns, o.Window, o.Size, o.Duration))
	if err != nil {
		return Result{}, err
	}
	rr := &rpcRun{r: r, o: o, base: time.Now()}
	rr.bufs.New = func() any { b := make([]byte, 4+o.Size); return &b }
	d := websocket.NewDialer(clientConfig(), websocket.Handler{OnMessage: rr.onMessage, OnClose: rr.onClose})
	return r.finish(ctx, shutdownDialer(d), func() error {
		defer rr.phase.Store(phaseStop) // before the shutdown: its closes are not lost connections
		conns, err := openAll(ctx, d, r, o.Conns)
		if err != nil {
			return err
		}
		return rr.measure(ctx, conns)
	})
}

// openAll opens n connections one after the other; they are few.
func openAll(ctx context.Context, d *websocket.Dialer, r *run, n int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, 0, n)
	for i := range n {
		dctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
		c, _, err := d.Dial(dctx, userURL(r.cfg.URL, i), nil)
		cancel()
		if err != nil {
			r.c.Errors.Add(1)
			return conns, fmt.Errorf("wsgate: bench: dial: %w", err)
		}
		r.c.Opened.Add(1)
		conns = append(conns, c)
	}
	return conns, nil
}

func (rr *rpcRun) measure(ctx context.Context, conns []*websocket.Conn) error {
	for _, c := range conns {
		for range rr.o.Window {
			rr.inflight.Add(1)
			rr.send(c)
		}
	}
	if err := sleep(ctx, rr.o.Warmup); err != nil {
		return err
	}
	cpu0, err := rr.r.proc.cpu()
	if err != nil {
		return err
	}
	t0 := time.Now()
	rr.phase.Store(phaseMeasure)
	if err := sleep(ctx, rr.o.Duration); err != nil {
		return err
	}
	rr.phase.Store(phaseStop)
	elapsed := time.Since(t0)
	cpu1, err := rr.r.proc.cpu()
	if err != nil {
		return err
	}
	// Let the requests in flight come back so that the connections close
	// quietly; their replies are not counted.
	_ = waitFor(ctx, 5*time.Second, func() bool { return rr.inflight.Load() <= 0 }) // a straggler only delays the close
	rr.metrics(elapsed, cpu1-cpu0)
	return nil
}

func (rr *rpcRun) metrics(elapsed, cpu time.Duration) {
	res, h := &rr.r.res, &rr.hist
	n := float64(h.count())
	res.add("replies", n, "", Info)
	res.add("msgs_per_s", n/elapsed.Seconds(), "msgs/s", Higher)
	res.addDuration("p50", h.quantile(0.5), Lower)
	res.addDuration("p99", h.quantile(0.99), Lower)
	res.addDuration("p99.9", h.quantile(0.999), Lower)
	res.addDuration("max", h.quantile(1), Lower)
	if rr.r.proc.known() && cpu > 0 {
		res.add("server_cpu", cpu.Seconds(), "s", Info)
		res.add("msgs_per_cpu_s", n/cpu.Seconds(), "msgs/CPU-s", Higher)
		res.add("server_cpu_per_msg", float64(cpu.Microseconds())/n, "µs", Lower)
	}
}

// send writes one request stamped with the current time.
func (rr *rpcRun) send(c *websocket.Conn) {
	bp := rr.bufs.Get().(*[]byte)
	b := wire.AppendSimple((*bp)[:0], ActionEcho, nil)
	b = binary.BigEndian.AppendUint64(b, uint64(time.Since(rr.base)))
	b = b[:cap(b)]                                    // the rest of the payload: zeros from the pool's make
	err := c.WriteMessage(websocket.BinaryMessage, b) // copies b
	rr.bufs.Put(bp)
	if err != nil {
		rr.r.c.Errors.Add(1)
		rr.inflight.Add(-1)
	}
}

func (rr *rpcRun) onMessage(c *websocket.Conn, typ websocket.MessageType, data []byte) {
	now := time.Since(rr.base)
	phase := rr.phase.Load()
	a, payload, err := wire.DecodeSimple(data)
	switch {
	case typ != websocket.BinaryMessage || err != nil || a != ActionEcho || len(payload) < 8:
		rr.r.c.Errors.Add(1) // an error reply (rate limit, unknown action) still ends the request
	case phase == phaseMeasure:
		rr.hist.record(now - time.Duration(binary.BigEndian.Uint64(payload)))
		rr.r.c.Msgs.Add(1)
	default:
		rr.r.c.Msgs.Add(1)
	}
	if phase == phaseStop {
		rr.inflight.Add(-1)
		return
	}
	rr.send(c)
}

// onClose counts connections lost before the run ended.
func (rr *rpcRun) onClose(*websocket.Conn, error) {
	if rr.phase.Load() != phaseStop {
		rr.r.c.Errors.Add(1)
	}
}
