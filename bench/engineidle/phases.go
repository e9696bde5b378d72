package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/wsgate/wsgate/internal/procstat"
)

const (
	// preSettle lets a fresh server finish starting before the baseline sample.
	preSettle = time.Second
	// connTimeout bounds one connection's setup or verification in the client.
	connTimeout = 10 * time.Second
)

// phaseTimeout bounds a whole client step over n items (connections or
// messages) at a pessimistic per-item cost.
func phaseTimeout(n int, per time.Duration) time.Duration {
	return time.Minute + time.Duration(n)*per
}

// idle measures what N idle connections cost the server: RSS, heap and
// goroutines after minus before, per connection.
func (d *driver) idle(ctx context.Context, t target, s *sample) (err error) {
	srv, err := d.startServer(ctx, t, fmt.Sprintf("r%d-%s-idle-server", s.round, t.key))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	if err := sleep(ctx, preSettle); err != nil {
		return err
	}
	before, err := sampleServer(ctx, srv)
	if err != nil {
		return err
	}
	n := d.cfg.conns
	start := time.Now()
	cl, err := d.startClient(srv, t, fmt.Sprintf("r%d-%s-idle-client", s.round, t.key), n, connTimeout)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cl.stop()) }() // runs before srv.stop
	if _, err := cl.expect(ctx, "ready", phaseTimeout(n, 5*time.Millisecond)); err != nil {
		return err
	}
	s.connectSecs = time.Since(start).Seconds()
	if s.idleCPU, err = d.cpuShare(ctx, srv, d.cfg.settle); err != nil {
		return err
	}
	after, err := sampleServer(ctx, srv)
	if err != nil {
		return err
	}
	s.setIdle(before, after, n)
	if err := cl.send("verify"); err != nil {
		return err
	}
	_, err = cl.expect(ctx, "verified", phaseTimeout(n, 5*time.Millisecond))
	return err
}

// cpu measures server CPU time per echoed message under a pipelined load.
func (d *driver) cpu(ctx context.Context, t target, s *sample) (err error) {
	srv, err := d.startServer(ctx, t, fmt.Sprintf("r%d-%s-cpu-server", s.round, t.key))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	timeout := phaseTimeout(d.cfg.msgs, 200*time.Microsecond)
	cl, err := d.startClient(srv, t, fmt.Sprintf("r%d-%s-cpu-client", s.round, t.key), d.cfg.loadConn, timeout)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cl.stop()) }()
	if _, err := cl.expect(ctx, "ready", phaseTimeout(d.cfg.loadConn, 5*time.Millisecond)); err != nil {
		return err
	}
	if err := sleep(ctx, preSettle); err != nil {
		return err
	}
	t0, err := procstat.CPU(srv.pid())
	if err != nil {
		return err
	}
	if err := cl.send("go"); err != nil {
		return err
	}
	line, err := cl.expect(ctx, "done", timeout)
	if err != nil {
		return err
	}
	t1, err := procstat.CPU(srv.pid())
	if err != nil {
		return err
	}
	var msgs int
	var secs float64
	if _, err := fmt.Sscanf(line, "done msgs=%d seconds=%g", &msgs, &secs); err != nil || msgs == 0 || secs <= 0 {
		return fmt.Errorf("engineidle: bad client report %q: %v", line, err)
	}
	s.cpuSecs = (t1 - t0).Seconds()
	s.cpuUsPerMsg = s.cpuSecs * 1e6 / float64(msgs)
	s.msgsPerSec = float64(msgs) / secs
	return nil
}

// cpuShare waits d and returns the server's CPU use meanwhile as a
// percentage of one core: an idle server should be near 0, whatever it holds.
func (d *driver) cpuShare(ctx context.Context, srv *server, wait time.Duration) (float64, error) {
	t0, err := procstat.CPU(srv.pid())
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := sleep(ctx, wait); err != nil {
		return 0, err
	}
	t1, err := procstat.CPU(srv.pid())
	if err != nil {
		return 0, err
	}
	return (t1 - t0).Seconds() / time.Since(start).Seconds() * 100, nil
}

// serverSample is one look at a server from outside (RSS) and inside (/stats).
type serverSample struct {
	rss   int64
	stats *serverStats // nil when the server has no /stats
}

// serverStats is the body of GET /stats.
type serverStats struct {
	Conns      int64  `json:"conns"`
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse"`
}

func sampleServer(ctx context.Context, srv *server) (serverSample, error) {
	st, err := srv.stats(ctx)
	if err != nil {
		return serverSample{}, err
	}
	// RSS after /stats, so the request's own garbage is in both samples.
	rss, err := procstat.RSS(srv.pid())
	return serverSample{rss: rss, stats: st}, err
}

// stats returns nil, nil when the server does not serve /stats.
func (srv *server) stats(ctx context.Context) (*serverStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.addr+"/stats", nil)
	if err != nil {
		return nil, fmt.Errorf("engineidle: %w", err)
	}
	resp, err := srv.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("engineidle: stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("engineidle: stats: %s", resp.Status)
	}
	var st serverStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("engineidle: stats: %w", err)
	}
	return &st, nil
}

// waitReady polls the server until it answers any HTTP request.
func (srv *server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.addr+"/stats", nil)
		if err != nil {
			return fmt.Errorf("engineidle: %w", err)
		}
		if resp, err := srv.http.Do(req); err == nil {
			return resp.Body.Close()
		}
		select {
		case <-srv.done:
			return fmt.Errorf("engineidle: %s exited during startup (%v)%s", srv.name, srv.err, srv.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("engineidle: %s not answering on %s after %v%s", srv.name, srv.addr, timeout, srv.logTail())
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// setIdle fills the idle part of s from samples before and after n connections.
func (s *sample) setIdle(before, after serverSample, n int) {
	s.rssBefore, s.rssAfter = before.rss, after.rss
	s.rssKiB = float64(after.rss-before.rss) / 1024 / float64(n)
	s.heapKiB, s.goroutines, s.statsConns = math.NaN(), math.NaN(), -1
	if before.stats != nil && after.stats != nil {
		s.heapKiB = (float64(after.stats.HeapInuse) - float64(before.stats.HeapInuse)) / 1024 / float64(n)
		s.goroutines = float64(after.stats.Goroutines-before.stats.Goroutines) / float64(n)
		s.statsConns = after.stats.Conns
	}
}
