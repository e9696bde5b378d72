package loadgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// FanoutOptions tunes the fanout scenario. Zero values take the defaults.
type FanoutOptions struct {
	N            int           // connections; default 10000
	Conc         int           // handshakes in flight; default 100
	Repeats      int           // measured pushes; default 30
	Warmup       int           // unmeasured pushes before them; default 3
	Size         int           // push payload bytes (at least 8); default 64
	Gap          time.Duration // pause after each push has arrived everywhere; default 100 ms
	Procs        int           // processes holding the connections (needs Config.Spawn); default 1
	RoundTimeout time.Duration // how long one push may take to reach everybody; default 10 s
}

func (o FanoutOptions) withDefaults() FanoutOptions {
	if o.N <= 0 {
		o.N = 10000
	}
	if o.Conc <= 0 {
		o.Conc = 100
	}
	if o.Repeats <= 0 {
		o.Repeats = 30
	}
	o.Warmup = max(o.Warmup, 0)
	if o.Size <= 0 {
		o.Size = 64
	}
	o.Size = max(o.Size, 8)
	if o.Gap <= 0 {
		o.Gap = 100 * time.Millisecond
	}
	o.Procs = max(o.Procs, 1)
	if o.RoundTimeout <= 0 {
		o.RoundTimeout = 10 * time.Second
	}
	return o
}

// Fanout opens N connections and pushes to all of them through the HTTP
// API, one push at a time. Each push's time runs from just before the HTTP
// request to the arrival of the push at the last connection (every
// arrival is stamped where it happens, also in worker processes, on the
// machine's wall clock).
func Fanout(ctx context.Context, cfg Config, o FanoutOptions) (Result, error) {
	o = o.withDefaults()
	if o.Warmup+o.Repeats > maxRounds {
		return Result{}, fmt.Errorf("wsgate: bench fanout: at most %d pushes", maxRounds)
	}
	r, err := newRun(cfg, "fanout", fmt.Sprintf("n=%d size=%d repeats=%d procs=%d", o.N, o.Size, o.Repeats, o.Procs))
	if err != nil {
		return Result{}, err
	}
	g, err := newGroup(ctx, r.cfg, o.N, o.Procs, o.Conc, r.c)
	if err != nil {
		return r.done(), err
	}
	return r.finish(ctx, g.close, func() error { return r.fanout(ctx, g, o) })
}

func (r *run) fanout(ctx context.Context, g *group, o FanoutOptions) error {
	opened, err := g.open(ctx)
	if opened == 0 {
		return fmt.Errorf("wsgate: bench fanout: no connection opened: %w", err)
	}
	if _, err := g.echo(ctx, echoTimeout); err != nil && !errors.Is(err, errTimeout) {
		return err // the echo makes sure every connection is registered before the first push
	}
	p := &pusher{cfg: r.cfg, client: &http.Client{Timeout: o.RoundTimeout}}
	defer p.client.CloseIdleConnections()
	cpu0, err := r.proc.cpu()
	if err != nil {
		return err
	}
	var times, calls []time.Duration
	var missed int64
	for round := range o.Warmup + o.Repeats {
		last, call, got, err := r.pushRound(ctx, g, p, uint64(round), o)
		if err != nil {
			return err
		}
		missed += int64(opened - got)
		r.c.Errors.Add(int64(opened - got))
		if round >= o.Warmup {
			times, calls = append(times, last), append(calls, call)
		}
		if err := sleep(ctx, o.Gap); err != nil {
			return err
		}
	}
	cpu1, err := r.proc.cpu()
	if err != nil {
		return err
	}
	r.fanoutMetrics(opened, missed, times, calls, o)
	if r.proc.known() {
		r.res.addDuration("server_cpu_per_push", (cpu1-cpu0)/time.Duration(o.Warmup+o.Repeats), Lower)
	}
	return nil
}

// pushRound pushes round and waits until it reached every connection. It
// returns the time to the last arrival, the duration of the HTTP call and
// how many connections got it.
func (r *run) pushRound(ctx context.Context, g *group, p *pusher, round uint64, o FanoutOptions) (last, call time.Duration, got int, err error) {
	payload := make([]byte, o.Size)
	binary.BigEndian.PutUint64(payload, round)
	t0 := time.Now()
	if _, err := p.push(ctx, payload); err != nil {
		return 0, 0, 0, err
	}
	call = time.Since(t0)
	rr, err := g.waitRound(ctx, round, 0, o.RoundTimeout)
	if err != nil {
		return 0, 0, 0, err
	}
	if rr.Got == 0 {
		return 0, 0, 0, fmt.Errorf("wsgate: bench fanout: push %d reached no connection", round)
	}
	return time.Duration(rr.Last - t0.UnixNano()), call, rr.Got, nil
}

func (r *run) fanoutMetrics(opened int, missed int64, times, calls []time.Duration, o FanoutOptions) {
	slices.Sort(times)
	slices.Sort(calls)
	r.res.add("conns", float64(opened), "", Info)
	r.res.add("missed", float64(missed), "deliveries", Info)
	r.res.addDuration("p50", quantileOf(times, 0.5), Lower)
	r.res.addDuration("p99", quantileOf(times, 0.99), Lower)
	r.res.addDuration("max", quantileOf(times, 1), Lower)
	r.res.addDuration("api_call_p50", quantileOf(calls, 0.5), Lower)
	r.res.add("per_recipient", float64(quantileOf(times, 0.5))/float64(opened), "ns", Lower)
}

// quantileOf returns the nearest-rank quantile q of sorted.
func quantileOf(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// pusher calls the push API: every connection, the action ActionPush.
type pusher struct {
	cfg    Config
	client *http.Client
}

// push sends payload to every connection and returns the server's
// delivered count.
func (p *pusher) push(ctx context.Context, payload []byte) (int, error) {
	body, err := json.Marshal(map[string]any{"to": map[string]bool{"all": true}, "action": ActionPush, "data": payload})
	if err != nil {
		return 0, fmt.Errorf("wsgate: bench push: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.API+"/api/v1/push", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("wsgate: bench push: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if p.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("wsgate: bench push: %w", err)
	}
	defer func() { _ = resp.Body.Close() }() // read to the end below; nothing left to report
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, fmt.Errorf("wsgate: bench push: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("wsgate: bench push: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var out struct {
		Delivered int `json:"delivered"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("wsgate: bench push: answer %q: %w", b, err)
	}
	return out.Delivered, nil
}
