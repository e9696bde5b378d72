package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

// ConnectOptions tunes the connect scenario. Zero values take the defaults.
type ConnectOptions struct {
	N    int // handshakes; default 5000
	Conc int // handshakes in flight; default 32
}

func (o ConnectOptions) withDefaults() ConnectOptions {
	if o.N <= 0 {
		o.N = 5000
	}
	if o.Conc <= 0 {
		o.Conc = 32
	}
	return o
}

// Connect performs N opening handshakes, Conc at a time, and drops each
// connection as soon as it is open: the rate at which a server takes new
// connections (a reconnect storm), with the cost of registering and
// unregistering them.
func Connect(ctx context.Context, cfg Config, o ConnectOptions) (Result, error) {
	o = o.withDefaults()
	r, err := newRun(cfg, "connect", fmt.Sprintf("n=%d conc=%d", o.N, o.Conc))
	if err != nil {
		return Result{}, err
	}
	d := websocket.NewDialer(clientConfig(), websocket.Handler{})
	return r.finish(ctx, shutdownDialer(d), func() error { return r.connect(ctx, d, o) })
}

func (r *run) connect(ctx context.Context, d *websocket.Dialer, o ConnectOptions) error {
	cpu0, err := r.proc.cpu()
	if err != nil {
		return err
	}
	var h histogram
	elapsed, firstErr := handshakes(ctx, o.N, o.Conc, func(i int) error { return r.handshake(ctx, d, i+1, &h) })
	cpu1, err := r.proc.cpu()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := r.reportHandshakes("connect", &h, elapsed, firstErr)
	if err != nil {
		return err
	}
	if cpu := cpu1 - cpu0; r.proc.known() && cpu > 0 {
		r.res.add("handshakes_per_cpu_s", n/cpu.Seconds(), "conns/CPU-s", Higher)
		r.res.add("server_cpu_per_handshake", float64(cpu.Microseconds())/n, "µs", Lower)
	}
	return nil
}

// handshakes runs one(i) for i in 0 … n-1, conc at a time, until done or
// ctx ends, and returns the time it took and the first error any call
// returned.
func handshakes(ctx context.Context, n, conc int, one func(i int) error) (time.Duration, error) {
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	t0 := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := one(i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		return time.Since(t0), *err
	}
	return time.Since(t0), nil
}

// reportHandshakes adds the figures every connect scenario reports
// (count, rate, p50, p99) and returns the count; none succeeding is an
// error carrying the first failure.
func (r *run) reportHandshakes(scenario string, h *histogram, elapsed time.Duration, firstErr error) (float64, error) {
	n := float64(h.count())
	if n == 0 {
		return 0, fmt.Errorf("wsgate: bench %s: no handshake succeeded: %w", scenario, firstErr)
	}
	r.res.add("handshakes", n, "", Info)
	r.res.add("handshakes_per_s", n/elapsed.Seconds(), "conns/s", Higher)
	r.res.addDuration("p50", h.quantile(0.5), Lower)
	r.res.addDuration("p99", h.quantile(0.99), Lower)
	return n, nil
}

// handshake opens the i-th connection, from its own source address, times
// its handshake and drops it.
func (r *run) handshake(ctx context.Context, d *websocket.Dialer, i int, h *histogram) error {
	dctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	t := time.Now()
	c, _, err := d.Dial(dctx, userURL(r.cfg.URL, 0), &websocket.DialOptions{NetDial: netDialFrom(i)})
	if err != nil {
		r.c.Errors.Add(1)
		return err
	}
	h.record(time.Since(t))
	r.c.Opened.Add(1)
	_ = c.CloseNow() // dropping it is the point; it is gone either way
	return nil
}
