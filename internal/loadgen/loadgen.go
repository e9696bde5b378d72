// Package loadgen is the load generator behind "wsgate bench": scenarios
// (idle, fanout, rpc, connect, and the peer scenarios) that measure a gateway from the
// outside, so that wsgate and the gorilla baseline in bench/baseline are
// measured by the same client, over the same framing, in the same way.
//
// The peer scenarios (PeerScenario, peer.go) compare wsgate with Centrifugo,
// each over its own protocol with JWTs; every other scenario speaks the
// simple form of the action protocol on /ws (no subprotocol): a binary message is a big-endian uint32 action followed by
// the payload. Requests use ActionEcho, which both servers answer with the
// same action and payload (wsgate with --demo); pushes arrive as
// ActionPush. Server-side figures (RSS, CPU time) are read from /proc of
// the server process named by Config.ServerPID, identically for both.
//
// Client connections are event-mode connections of one websocket.Dialer:
// a few epoll goroutines and a bounded executor, no goroutine per
// connection, which is how one process holds 18,000 of them. The idle and
// fanout scenarios can spread their connections over several worker
// processes (Config.Spawn) to go past the per-process open-files limit.
//
// Every wait is bounded, every goroutine started here is waited for, and a
// scenario closes its connections before it returns, also on error.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

const (
	// ActionEcho is the request action: the reply repeats it and the payload.
	ActionEcho wire.Action = 100
	// ActionPush is the action of the fanout scenario's pushes. Payload: a
	// big-endian uint64 round number, then filler up to the push size.
	ActionPush wire.Action = 120
)

// Config says where the gateway is and how to report. Zero values of the
// optional fields work.
type Config struct {
	// URL of the WebSocket endpoint, e.g. "ws://127.0.0.1:8080/ws". Each
	// connection adds a query parameter user=u<N> (the baseline records it;
	// a gateway without authentication ignores it).
	URL string
	// API is the base URL of the HTTP push API, e.g. "http://127.0.0.1:8080";
	// default: the scheme-swapped host of URL.
	API string
	// APIKey is sent as "Authorization: Bearer KEY" on pushes when set.
	APIKey string
	// ServerPID is the gateway's process id on this machine, for RSS and CPU
	// figures; 0 leaves those figures out.
	ServerPID int
	// Server labels the results ("wsgate", "baseline").
	Server string
	// Round numbers the result when the same scenario runs several times.
	Round int

	// Progress receives the live progress line; nil prints none.
	Progress io.Writer
	// ProgressTTY rewrites the line in place instead of printing a line per
	// tick.
	ProgressTTY bool
	// ProgressEvery is the progress tick. Default 1 s.
	ProgressEvery time.Duration
	// DialTimeout bounds one handshake. Default 10 s.
	DialTimeout time.Duration
	// Spawn starts worker processes for Procs > 1; nil runs every
	// connection in this process.
	Spawn Spawner

	peer PeerConfig // set by the peer scenarios for their connections
}

func (c Config) withDefaults() (Config, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return c, fmt.Errorf("wsgate: bench url %q: want ws://host:port/path", c.URL)
	}
	if c.API == "" {
		scheme := "http"
		if u.Scheme == "wss" {
			scheme = "https"
		}
		c.API = scheme + "://" + u.Host
	}
	if c.Server == "" {
		c.Server = u.Host
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	return c, nil
}

// userURL returns base with the query parameter user=u<i>.
func userURL(base string, i int) string {
	sep := "?"
	if u, err := url.Parse(base); err == nil && u.RawQuery != "" {
		sep = "&"
	}
	return base + sep + "user=u" + strconv.Itoa(i)
}

// clientConfig is the engine configuration of every load connection:
// reactor mode so that idle connections cost no goroutine.
func clientConfig() websocket.Config {
	return websocket.Config{Mode: websocket.ModeReactor, ReadLimit: 1 << 20}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

const (
	// closeTimeout bounds closing a run's connections.
	closeTimeout = 15 * time.Second
	// echoTimeout bounds waiting for the replies of an echo check.
	echoTimeout = 15 * time.Second
)

// run is what every scenario shares: its result, counters and progress
// line.
type run struct {
	cfg   Config
	res   Result
	c     *Counters
	p     *progress
	proc  serverProc
	start time.Time
}

func newRun(cfg Config, scenario, params string) (*run, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, c: &Counters{}, proc: serverProc{pid: cfg.ServerPID}, start: time.Now()}
	r.res = Result{Scenario: scenario, Server: cfg.Server, Round: cfg.Round, Params: params}
	label := fmt.Sprintf("[%s %s]", scenario, cfg.Server)
	r.p = startProgress(cfg.Progress, cfg.ProgressTTY, cfg.ProgressEvery, label, r.c)
	return r, nil
}

// done stops the progress line and completes the result.
func (r *run) done() Result {
	r.p.stop()
	r.res.Errors = r.c.Errors.Load()
	r.res.Elapsed = time.Since(r.start).Seconds()
	return r.res
}

// closeCtx is a context for closing connections after ctx itself may have
// ended.
func closeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
}

// finish runs body, then closes the run's connections with closeAll (given
// closeCtx(ctx), also when body failed or ctx ended) and completes the
// result: the end every scenario shares once its connections can exist.
// The error joins body's and closeAll's.
func (r *run) finish(ctx context.Context, closeAll func(context.Context) error, body func() error) (res Result, err error) {
	defer func() {
		cctx, cancel := closeCtx(ctx)
		err = errors.Join(err, closeAll(cctx))
		cancel()
		res = r.done()
	}()
	return r.res, body()
}

// shutdownDialer is the closeAll of a scenario whose connections belong to
// d: each gets 1000 "bench done".
func shutdownDialer(d *websocket.Dialer) func(context.Context) error {
	return func(ctx context.Context) error {
		return d.Shutdown(ctx, websocket.StatusNormalClosure, "bench done")
	}
}
