package loadgen

import (
	"context"
	"sync"
	"time"
)

// share is one part of a connection group: a holder in this process or a
// worker process running one.
type share interface {
	open(ctx context.Context) (int, error)
	echo(ctx context.Context, timeout time.Duration) (int, error)
	waitRound(ctx context.Context, r uint64, upto int, timeout time.Duration) (roundResult, error)
	cpu(ctx context.Context) (time.Duration, error)
	close(ctx context.Context) error
}

// group is the connections of one idle or fanout run, split into shares
// that run side by side.
type group struct{ shares []share }

// newGroup splits n connections over procs shares: in this process when
// procs is 1 (or cfg.Spawn is nil), else one worker process per share.
func newGroup(ctx context.Context, cfg Config, n, procs, conc int, c *Counters) (*group, error) {
	if procs <= 1 || cfg.Spawn == nil {
		hc := holderConfig{URL: cfg.URL, N: n, Conc: conc, DialTimeout: cfg.DialTimeout, Peer: cfg.peer}
		return &group{shares: []share{newHolder(hc, c)}}, nil
	}
	g := &group{}
	first := 0
	for i := range procs {
		k := n / procs
		if i < n%procs {
			k++
		}
		hc := holderConfig{URL: cfg.URL, First: first, N: k, Conc: max(conc/procs, 1), DialTimeout: cfg.DialTimeout, Peer: cfg.peer}
		first += k
		r, err := spawnRemote(ctx, cfg.Spawn, hc, c)
		if err != nil {
			_ = g.close(ctx) // the spawn error is the one to report
			return nil, err
		}
		g.shares = append(g.shares, r)
	}
	return g, nil
}

// each runs f on every share at once and returns the sum of the counts and
// the first error.
func (g *group) each(f func(s share) (int, error)) (int, error) {
	counts := make([]int, len(g.shares))
	errs := make([]error, len(g.shares))
	var wg sync.WaitGroup
	for i, s := range g.shares {
		wg.Go(func() { counts[i], errs[i] = f(s) })
	}
	wg.Wait()
	total := 0
	var first error
	for i := range counts {
		total += counts[i]
		if first == nil {
			first = errs[i]
		}
	}
	return total, first
}

func (g *group) open(ctx context.Context) (int, error) {
	return g.each(func(s share) (int, error) { return s.open(ctx) })
}

func (g *group) echo(ctx context.Context, timeout time.Duration) (int, error) {
	return g.each(func(s share) (int, error) { return s.echo(ctx, timeout) })
}

// waitRound combines the shares' views of round r: connections reached,
// and the latest arrival over all of them.
// With upto > 0 only the connections of users below upto count.
func (g *group) waitRound(ctx context.Context, r uint64, upto int, timeout time.Duration) (roundResult, error) {
	var mu sync.Mutex
	var res roundResult
	_, err := g.each(func(s share) (int, error) {
		rr, err := s.waitRound(ctx, r, upto, timeout)
		mu.Lock()
		res.Got += rr.Got
		res.Last = max(res.Last, rr.Last)
		mu.Unlock()
		return 0, err
	})
	return res, err
}

// cpu returns the CPU time of the processes holding the connections (this
// one, when it holds them itself).
func (g *group) cpu(ctx context.Context) (time.Duration, error) {
	var mu sync.Mutex
	var total time.Duration
	_, err := g.each(func(s share) (int, error) {
		d, err := s.cpu(ctx)
		mu.Lock()
		total += d
		mu.Unlock()
		return 0, err
	})
	return total, err
}

func (g *group) close(ctx context.Context) error {
	_, err := g.each(func(s share) (int, error) { return 0, s.close(ctx) })
	return err
}
