package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// IdleOptions tunes the idle scenario. Zero values take the defaults.
type IdleOptions struct {
	N      int           // connections held; default 18000
	Conc   int           // handshakes in flight; default 100
	Settle time.Duration // wait between the last handshake and the RSS sample; default 3 s
	Procs  int           // processes holding the connections (needs Config.Spawn); default 1
}

func (o IdleOptions) withDefaults() IdleOptions {
	if o.N <= 0 {
		o.N = 18000
	}
	if o.Conc <= 0 {
		o.Conc = 100
	}
	if o.Settle <= 0 {
		o.Settle = 3 * time.Second
	}
	o.Procs = max(o.Procs, 1)
	return o
}

// Idle opens N connections, sends one request on each, lets them sit idle
// for Settle and samples the server's RSS, then checks with a second
// request that every connection is still served (a server that lost
// connections must not look cheap). The memory figure is
// (RSS with N idle connections − RSS before the first) / N.
func Idle(ctx context.Context, cfg Config, o IdleOptions) (Result, error) {
	o = o.withDefaults()
	r, err := newRun(cfg, "idle", fmt.Sprintf("n=%d procs=%d", o.N, o.Procs))
	if err != nil {
		return Result{}, err
	}
	rss0, err := r.proc.rss()
	if err != nil {
		return r.done(), err
	}
	g, err := newGroup(ctx, r.cfg, o.N, o.Procs, o.Conc, r.c)
	if err != nil {
		return r.done(), err
	}
	return r.finish(ctx, g.close, func() error { return r.idle(ctx, g, o, rss0) })
}

func (r *run) idle(ctx context.Context, g *group, o IdleOptions, rss0 int64) error {
	t0 := time.Now()
	opened, err := g.open(ctx)
	openTime := time.Since(t0)
	if opened == 0 {
		return fmt.Errorf("wsgate: bench idle: no connection opened: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if _, err := g.echo(ctx, echoTimeout); err != nil && !errors.Is(err, errTimeout) {
		return err
	}
	if err := sleep(ctx, o.Settle); err != nil {
		return err
	}
	rss1, err := r.proc.rss()
	if err != nil {
		return err
	}
	alive, err := g.echo(ctx, echoTimeout)
	if err != nil && !errors.Is(err, errTimeout) {
		return err
	}
	r.res.add("conns", float64(opened), "", Info)
	r.res.add("alive", float64(alive), "", Info)
	r.res.add("open_rate", float64(opened)/openTime.Seconds(), "conns/s", Info)
	if r.proc.known() {
		r.res.add("rss_before", float64(rss0)/(1<<20), "MiB", Info)
		r.res.add("rss_after", float64(rss1)/(1<<20), "MiB", Info)
		r.res.add("rss_per_conn", float64(rss1-rss0)/float64(opened)/1024, "KiB", Lower)
	}
	return nil
}
