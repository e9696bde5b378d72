package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/procstat"
	"github.com/wsgate/wsgate/websocket"
)

// PeerScenarios lists the peer scenarios in the order bench/peer/run.sh
// runs them.
var PeerScenarios = []string{"idle", "connect", "personal", "multi", "fanout", "busy"}

// PeerOptions tunes a peer scenario. Zero values take the defaults.
type PeerOptions struct {
	// Scenario is one of PeerScenarios:
	//   idle      N subscribed connections sit idle: RSS per connection,
	//             server CPU while idle
	//   connect   N handshakes (with the token; for Centrifugo also its
	//             connect command), Conc at a time
	//   personal  N connections; per round one push to each of Users users,
	//             one HTTP call each, PushConc calls in flight
	//   multi     N connections; per round one HTTP call to Users users
	//   fanout    N connections on one topic; per round one push to it
	//   busy      fanout while BusyRate pushes per second go to the other
	//             Topics topics (connection i is also on topic i mod Topics)
	Scenario     string
	N            int           // connections or handshakes; default 10000 (idle: 18000, connect: 5000)
	Conc         int           // handshakes in flight; default 100
	Procs        int           // processes holding the connections (needs Config.Spawn); default 1
	Users        int           // personal, multi: users pushed to per round; default 1000
	PushConc     int           // personal: push calls in flight; default 16
	Topics       int           // busy: busy topics; default 1000
	BusyRate     int           // busy: pushes per second to the busy topics; default 1000
	Repeats      int           // measured rounds; default 30 (personal, multi: 10)
	Warmup       int           // unmeasured rounds first; default 3
	Size         int           // payload bytes; default 64
	Gap          time.Duration // pause after each round; default 100 ms
	Settle       time.Duration // idle: time idle before the sample; default 5 s
	RoundTimeout time.Duration // how long a round may take; default 10 s
}

func (o PeerOptions) withDefaults() (PeerOptions, error) {
	if !slices.Contains(PeerScenarios, o.Scenario) {
		return o, fmt.Errorf("wsgate: bench peer: unknown scenario %q (want one of %v)", o.Scenario, PeerScenarios)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	switch o.Scenario {
	case "idle":
		def(&o.N, 18000)
	case "connect":
		def(&o.N, 5000)
	case "personal", "multi":
		def(&o.Repeats, 10)
	}
	def(&o.N, 10000)
	def(&o.Conc, 100)
	def(&o.Procs, 1)
	def(&o.Users, 1000)
	o.Users = min(o.Users, o.N)
	def(&o.PushConc, 16)
	def(&o.Topics, 1000)
	def(&o.BusyRate, 1000)
	def(&o.Repeats, 30)
	o.Warmup = max(o.Warmup, 0)
	def(&o.Size, 64)
	o.Size = max(o.Size, 24)
	if o.Gap <= 0 {
		o.Gap = 100 * time.Millisecond
	}
	if o.Settle <= 0 {
		o.Settle = 5 * time.Second
	}
	if o.RoundTimeout <= 0 {
		o.RoundTimeout = 10 * time.Second
	}
	if o.Warmup+o.Repeats > maxRounds {
		return o, fmt.Errorf("wsgate: bench peer: at most %d rounds", maxRounds)
	}
	return o, nil
}

// PeerScenario runs one peer scenario against the server pc names (see peer.go):
// the same load, over each server's own protocol, so that wsgate and
// Centrifugo can be compared figure by figure. Server figures come from
// /proc of Config.ServerPID; load-generator CPU from /proc of the
// processes that hold the connections.
func PeerScenario(ctx context.Context, cfg Config, pc PeerConfig, o PeerOptions) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if pc.Peer != PeerWsgate && pc.Peer != PeerCentrifugo {
		return Result{}, fmt.Errorf("wsgate: bench peer: unknown server protocol %q (want wsgate or centrifugo)", pc.Peer)
	}
	if o.Scenario == "busy" {
		pc.Topics = o.Topics
	} else {
		pc.Topics = 0
	}
	cfg.peer = pc
	params := fmt.Sprintf("peer=%s n=%d procs=%d", pc.Peer, o.N, o.Procs)
	switch o.Scenario {
	case "personal", "multi":
		params += fmt.Sprintf(" users=%d repeats=%d", o.Users, o.Repeats)
	case "fanout":
		params += fmt.Sprintf(" repeats=%d size=%d", o.Repeats, o.Size)
	case "busy":
		params += fmt.Sprintf(" repeats=%d topics=%d busy_rate=%d", o.Repeats, o.Topics, o.BusyRate)
	}
	r, err := newRun(cfg, "peer-"+o.Scenario, params)
	if err != nil {
		return Result{}, err
	}
	if o.Scenario == "connect" {
		cw := &connectWaiters{}
		d := websocket.NewDialer(clientConfig(), websocket.Handler{OnMessage: cw.onMessage(pc)})
		return r.finish(ctx, shutdownDialer(d), func() error { return r.peerConnect(ctx, d, cw, pc, o) })
	}
	rss0, err := r.proc.rss()
	if err != nil {
		return r.done(), err
	}
	g, err := newGroup(ctx, r.cfg, o.N, o.Procs, o.Conc, r.c)
	if err != nil {
		return r.done(), err
	}
	return r.finish(ctx, g.close, func() error {
		t0 := time.Now()
		opened, err := g.open(ctx)
		if err != nil {
			return err
		}
		if opened < o.N {
			return fmt.Errorf("wsgate: bench peer: opened %d of %d connections", opened, o.N)
		}
		r.res.add("conns", float64(opened), "", Info)
		r.res.add("open_rate", float64(opened)/time.Since(t0).Seconds(), "conns/s", Info)
		p := newPeerPusher(r.cfg, pc, o.RoundTimeout)
		defer p.close()
		if o.Scenario == "idle" {
			return r.peerIdle(ctx, g, p, o, rss0)
		}
		return r.peerRounds(ctx, g, p, o)
	})
}

// peerIdle samples the server with every connection subscribed and idle,
// then checks with one push that every connection is still served.
func (r *run) peerIdle(ctx context.Context, g *group, p *peerPusher, o PeerOptions, rss0 int64) error {
	cpu0, err := r.proc.cpu()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := sleep(ctx, o.Settle); err != nil {
		return err
	}
	cpu1, err := r.proc.cpu()
	if err != nil {
		return err
	}
	idle := time.Since(t0)
	rss1, err := r.proc.rss()
	if err != nil {
		return err
	}
	if err := p.topic(ctx, FanoutTopic, peerPayload(0, o.Size)); err != nil {
		return err
	}
	rr, err := g.waitRound(ctx, 0, 0, o.RoundTimeout)
	if err != nil {
		return err
	}
	r.res.add("alive", float64(rr.Got), "", Info)
	if r.proc.known() {
		r.res.add("rss_before", float64(rss0)/(1<<20), "MiB", Info)
		r.res.add("rss_after", float64(rss1)/(1<<20), "MiB", Info)
		r.res.add("rss_per_conn", float64(rss1-rss0)/float64(o.N)/1024, "KiB", Lower)
		r.res.add("idle_cpu", 100*float64(cpu1-cpu0)/float64(idle), "%", Lower)
	}
	return nil
}

// peerRounds runs the push rounds of personal, multi, fanout and busy.
func (r *run) peerRounds(ctx context.Context, g *group, p *peerPusher, o PeerOptions) error {
	var busy busyLoad
	if o.Scenario == "busy" {
		bctx, stop := context.WithCancel(ctx)
		defer busy.wait()
		defer stop()
		busy.start(bctx, p, o)
	}
	sp := newServerPushes(r.cfg, p.peer)
	// The window opens after the warm-up rounds, which are not measured:
	// what the servers still do about the connections' set-up, and their
	// first pushes (a user's first push creates its state), stay out of
	// the CPU per operation of both alike.
	var scpu0, ccpu0 time.Duration
	var t0 time.Time
	var busy0 int64
	var times []time.Duration
	var missed int64
	for round := range o.Warmup + o.Repeats {
		if round == o.Warmup {
			var err error
			sp.sample(ctx)
			if scpu0, ccpu0, err = r.cpus(ctx, g); err != nil {
				return err
			}
			t0, busy0 = time.Now(), busy.count.Load()
		}
		last, lost, err := r.peerRound(ctx, g, p, uint64(round), o)
		if err != nil {
			return err
		}
		missed += lost
		r.c.Errors.Add(lost)
		if round >= o.Warmup {
			times = append(times, last)
		}
		if err := sleep(ctx, o.Gap); err != nil {
			return err
		}
	}
	scpu1, ccpu1, err := r.cpus(ctx, g)
	if err != nil {
		return err
	}
	elapsed, busyN := time.Since(t0), busy.count.Load()-busy0
	if err := busy.err(); err != nil {
		return err
	}
	slices.Sort(times)
	r.res.add("missed", float64(missed), "deliveries", Info)
	r.res.addDuration("p50", quantileOf(times, 0.5), Lower)
	r.res.addDuration("p99", quantileOf(times, 0.99), Lower)
	r.res.addDuration("max", quantileOf(times, 1), Lower)
	ops, unit := float64(o.Repeats), "publish"
	switch o.Scenario {
	case "personal":
		ops, unit = ops*float64(o.Users), "push"
	case "multi":
		ops, unit = ops*float64(o.Users), "delivery"
	case "busy":
		r.res.add("busy_pushes_per_s", float64(busyN)/elapsed.Seconds(), "pushes/s", Info)
		if r.proc.known() {
			r.res.add("server_cpu", 100*float64(scpu1-scpu0)/float64(elapsed), "%", Lower)
		}
	}
	if r.proc.known() {
		r.res.add("server_cpu_per_"+unit, float64(scpu1-scpu0)/ops/1e3, "µs", Lower)
	}
	r.res.add("client_cpu_per_"+unit, float64(ccpu1-ccpu0)/ops/1e3, "µs", Lower)
	sp.sample(ctx)
	sp.report(&r.res, o.Scenario)
	return nil
}

// cpus samples the server's CPU time and the load generator's.
func (r *run) cpus(ctx context.Context, g *group) (server, client time.Duration, err error) {
	if server, err = r.proc.cpu(); err != nil {
		return 0, 0, err
	}
	client, err = g.cpu(ctx)
	return server, client, err
}

// peerRound pushes one round and waits until it reached every connection it
// was meant for. It returns the time from the first push call to the last
// arrival, and how many deliveries are missing.
func (r *run) peerRound(ctx context.Context, g *group, p *peerPusher, round uint64, o PeerOptions) (time.Duration, int64, error) {
	payload := peerPayload(round, o.Size)
	upto, want := 0, o.N
	t0 := time.Now()
	var err error
	switch o.Scenario {
	case "personal":
		upto, want = o.Users, o.Users
		err = pushEach(ctx, p, o.Users, o.PushConc, payload)
	case "multi":
		upto, want = o.Users, o.Users
		users := make([]string, o.Users)
		for i := range users {
			users[i] = peerUser(i)
		}
		err = p.users(ctx, users, payload)
	default:
		err = p.topic(ctx, FanoutTopic, payload)
	}
	if err != nil {
		return 0, 0, err
	}
	rr, err := g.waitRound(ctx, round, upto, o.RoundTimeout)
	if err != nil {
		return 0, 0, err
	}
	if rr.Got == 0 {
		return 0, 0, fmt.Errorf("wsgate: bench peer: round %d reached no connection", round)
	}
	return time.Duration(rr.Last - t0.UnixNano()), int64(want - rr.Got), nil
}

// pushEach pushes payload to users 0…n-1, one call each, conc at a time.
func pushEach(ctx context.Context, p *peerPusher, n, conc int, payload []byte) error {
	var next atomic.Int64
	errs := make([]error, conc)
	var wg sync.WaitGroup
	for k := range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := p.users(ctx, []string{peerUser(i)}, payload); err != nil {
					errs[k] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// busyLoad pushes to the busy topics at a steady rate in the background.
type busyLoad struct {
	wg    sync.WaitGroup
	count atomic.Int64
	mu    sync.Mutex
	first error
}

// start pushes BusyRate pushes per second, round-robin over the busy
// topics, from a few goroutines (one call each in flight), until ctx ends.
func (b *busyLoad) start(ctx context.Context, p *peerPusher, o PeerOptions) {
	const workers = 4
	payload := peerPayload(busyRound, o.Size)
	every := time.Second * workers / time.Duration(o.BusyRate)
	for w := range workers {
		b.wg.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for k := w; ; k += workers {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				err := p.topic(ctx, "t"+strconv.Itoa(k%o.Topics), payload)
				if err != nil && ctx.Err() == nil {
					b.mu.Lock()
					b.first = cmp.Or(b.first, err)
					b.mu.Unlock()
					return
				}
				b.count.Add(1)
			}
		})
	}
}

func (b *busyLoad) wait() { b.wg.Wait() }

func (b *busyLoad) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.first
}

// peerConnect performs N handshakes, Conc at a time: each connection is
// dropped once the server has accepted its token (wsgate: hello;
// Centrifugo: the connect reply).
func (r *run) peerConnect(ctx context.Context, d *websocket.Dialer, cw *connectWaiters, pc PeerConfig, o PeerOptions) error {
	tokens := make([]string, o.N)
	for i := range tokens {
		t, err := pc.peerToken(i)
		if err != nil {
			return err
		}
		tokens[i] = t
	}
	scpu0, err := r.proc.cpu()
	if err != nil {
		return err
	}
	ccpu0, err := procstat.CPU(os.Getpid())
	if err != nil {
		return err
	}
	var h histogram
	elapsed, firstErr := handshakes(ctx, o.N, o.Conc, func(i int) error { return r.peerHandshake(ctx, d, cw, pc, i, tokens[i], &h) })
	scpu1, err := r.proc.cpu()
	if err != nil {
		return err
	}
	ccpu1, err := procstat.CPU(os.Getpid())
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := r.reportHandshakes("peer connect", &h, elapsed, firstErr)
	if err != nil {
		return err
	}
	if r.proc.known() {
		r.res.add("server_cpu_per_handshake", float64((scpu1-scpu0).Microseconds())/n, "µs", Lower)
	}
	r.res.add("client_cpu_per_handshake", float64((ccpu1-ccpu0).Microseconds())/n, "µs", Lower)
	return nil
}

// connectWaiters maps a connect scenario's connection to the channel its
// first answer closes. Either side may come first: the answer can arrive
// before Dial has returned.
type connectWaiters struct{ m sync.Map } // *websocket.Conn → *connectWaiter

type connectWaiter struct {
	once sync.Once
	ch   chan struct{}
}

func (cw *connectWaiters) of(c *websocket.Conn) *connectWaiter {
	v, _ := cw.m.LoadOrStore(c, &connectWaiter{ch: make(chan struct{})})
	return v.(*connectWaiter)
}

// connectEvents closes the waiter on the first ready event.
type connectEvents struct{ w *connectWaiter }

func (e connectEvents) ready()        { e.w.once.Do(func() { close(e.w.ch) }) }
func (e connectEvents) arrive(uint64) {}
func (e connectEvents) fail()         {}

func (cw *connectWaiters) onMessage(pc PeerConfig) func(*websocket.Conn, websocket.MessageType, []byte) {
	return func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
		pc.handle(c, typ, data, connectEvents{cw.of(c)})
	}
}

// peerHandshake opens connection i, waits for the server to accept its
// token, and drops it.
func (r *run) peerHandshake(ctx context.Context, d *websocket.Dialer, cw *connectWaiters, pc PeerConfig, i int, token string, h *histogram) error {
	dctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	t := time.Now()
	c, _, err := d.Dial(dctx, r.cfg.URL, pc.peerDial(r.cfg.URL, i, token))
	if err != nil {
		r.c.Errors.Add(1)
		return err
	}
	w := cw.of(c)
	defer cw.m.Delete(c)
	defer func() { _ = c.CloseNow() }() // dropping it is the point
	if pc.Peer == PeerCentrifugo {
		msg := fmt.Appendf(nil, `{"id":1,"connect":{"token":%q}}`, token)
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			r.c.Errors.Add(1)
			return err
		}
	}
	select {
	case <-w.ch:
	case <-dctx.Done():
		r.c.Errors.Add(1)
		return fmt.Errorf("wsgate: bench peer connect: no answer: %w", dctx.Err())
	}
	h.record(time.Since(t))
	r.c.Opened.Add(1)
	return nil
}
