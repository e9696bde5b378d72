package wsgate

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/broker/memory"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// Server is a WebSocket gateway: it accepts client connections, routes their
// requests to handlers and pushes messages to users, topics and everyone.
// Create it with New; all methods are safe for concurrent use.
type Server struct {
	cfg      Config
	reg      *registry
	ids      *idGenerator
	ws       *websocket.Server // /ws
	echo     *websocket.Server // /echo; nil when DisableEcho
	ipLimit  *ipLimiter
	mux      http.Handler
	epoch    time.Time // base of the monotonic clock used by rate limits
	handlers atomic.Pointer[map[wire.Action]HandlerFunc]
	ctr      counters
	obs      *observer // breakdowns of ctr for metrics (observe.go)
	scratch  sync.Pool // *[]byte encode buffers for outgoing messages
	splitMin int       // subscribers from which a topic push is split (parallelFanoutMin; tests lower it)

	// broker numbers, keeps and carries pushes (package broker).
	broker broker.Broker
	syncs  *syncTable

	// tasks tracks the goroutines of replays so that
	// Shutdown can wait for them; handlerCtx is the parent of their ctx and
	// of handler calls', cancelled once Shutdown stops waiting.
	tasks          taskGroup
	handlerCtx     context.Context
	cancelHandlers context.CancelFunc
	deadlines      *deadlines // of handler calls

	rejectLog *logLimiter // rejected handshakes and net/http's errors
	echoSlots int64       // /echo connections EchoMemory allows

	draining atomic.Bool              // set by Shutdown: refuse handshakes, /readyz 503
	origins  atomic.Pointer[[]string] // Config.AllowedOrigins, replaced by SetAllowedOrigins

	mu            sync.Mutex // guards the fields below
	hmu           sync.Mutex // serialises Handle's copy-on-write
	httpServers   map[*http.Server]struct{}
	heartbeatStop chan struct{} // nil until the heartbeat goroutine starts
	heartbeatDone chan struct{}
	brokerStop    context.CancelFunc // ends the Broker's Run; nil until it starts
	brokerDone    chan struct{}
	shutdownDone  chan struct{} // non-nil once Shutdown has begun; closed when it ends
	shutdownErr   error
}

// New returns a Server for cfg. It validates cfg, fills defaults in its own
// copy and starts nothing: goroutines begin with the first connection.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ids, err := newIDGenerator()
	if err != nil {
		return nil, fmt.Errorf("wsgate: connection id prefix: %w", err)
	}
	s := &Server{
		cfg:         cfg,
		reg:         newRegistry(ids),
		ids:         ids,
		ipLimit:     newIPLimiter(cfg.HandshakeRate),
		epoch:       time.Now(),
		obs:         newObserver(cfg.CountActions),
		splitMin:    parallelFanoutMin,
		httpServers: make(map[*http.Server]struct{}),
	}
	s.rejectLog = newLogLimiter(cfg.Logger, slog.LevelInfo, rejectLogRate, rejectLogBurst)
	s.echoSlots = max(cfg.EchoMemory/cfg.echoCharge(), 1)
	s.handlerCtx, s.cancelHandlers = context.WithCancel(context.Background())
	s.deadlines = newDeadlines(s.handlerCtx, cfg.HandlerTimeout)
	s.handlers.Store(&map[wire.Action]HandlerFunc{})
	s.origins.Store(&cfg.AllowedOrigins)
	s.syncs = newSyncTable()
	s.broker = cfg.Broker
	if s.broker == nil {
		s.broker = memory.New(cfg.memoryOptions())
	}
	if err := s.broker.Bind(s.deliver); err != nil {
		return nil, err
	}
	s.ws = websocket.NewServer(s.wsEngineConfig(), websocket.Handler{
		OnOpen: s.onOpen, OnMessage: s.onMessage, OnClose: s.onClose,
	})
	if !cfg.DisableEcho {
		s.echo = websocket.NewServer(s.echoEngineConfig(), websocket.Handler{
			OnOpen: s.onEchoOpen, OnMessage: onEchoMessage, OnClose: s.onEchoClose,
		})
	}
	s.mux = s.newMux()
	return s, nil
}

func (s *Server) wsEngineConfig() websocket.Config {
	return websocket.Config{
		Mode:               s.cfg.Mode,
		Workers:            s.cfg.MaxHandlers, // handlers run on the executor
		ReadLimit:          s.cfg.MaxMessageSize,
		WriteQueueLimit:    s.cfg.SendQueueBytes,
		WriteQueueMessages: s.cfg.SendQueueMessages,
		IdleTimeout:        s.cfg.IdleTimeout,
		IdleCloseCode:      websocket.StatusCode(wire.CloseIdleTimeout),
		IdleCloseReason:    "idle timeout",
		Logger:             s.cfg.Logger, // recovered callback panics, with their stack
		DisableIOURing:     s.cfg.DisableIOURing,

		Compression:                s.cfg.Compression,
		CompressionContextTakeover: s.cfg.CompressionContextTakeover,
	}
}

// echoEngineConfig differs from /ws in the read limit (the engine always
// queues one message into an empty queue, so even the largest echo fits a
// small send queue) and in the executor: echoing never blocks, so the
// engine's default pool is plenty.
func (s *Server) echoEngineConfig() websocket.Config {
	c := s.wsEngineConfig()
	c.ReadLimit = s.cfg.EchoMaxMessageSize
	c.Workers = 0
	c.InboxLimit = 1 // echoing is instant; what waits is memory (echoCharge)
	return c
}

// now is the clock of the rate limiters: monotonic nanoseconds, never 0.
func (s *Server) now() int64 {
	return int64(time.Since(s.epoch)) + 1
}

// Handle registers h for action. Actions 1–99 are reserved for wsgate's own
// system actions, and actions with the high bit set mark simple-form error
// replies. It may be called at any time; a later call for the same
// action replaces the handler.
func (s *Server) Handle(action wire.Action, h HandlerFunc) error {
	if !action.IsApp() {
		return fmt.Errorf("wsgate: action %d is reserved (application actions are %d–%d)", action, wire.MinAppAction, wire.SimpleErrorBit-1)
	}
	if h == nil {
		return fmt.Errorf("wsgate: nil handler for action %d", action)
	}
	s.hmu.Lock()
	defer s.hmu.Unlock()
	old := *s.handlers.Load()
	m := make(map[wire.Action]HandlerFunc, len(old)+1)
	for a, f := range old {
		m[a] = f
	}
	m[action] = h
	s.obs.actions.add(action)
	s.handlers.Store(&m)
	return nil
}

// Handler returns the gateway's HTTP handler, for mounting in your own
// http.Server (Run and Serve use it too). See Config.Page for the requests
// it does not handle itself.
func (s *Server) Handler() http.Handler { return s.mux }

// Run listens on Config.Addr and serves until ctx is done, then shuts down
// gracefully (bounded by Config.DrainPeriod + Config.ShutdownTimeout). It returns nil after a
// clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := ListenConfig().Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("wsgate: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// ListenConfig is how Run listens, for a program that opens the listener
// itself and hands it to Serve: TCP keep-alive off. The gateway's pings
// (Config.PingInterval) and timeouts already find dead peers, so the
// kernel's keep-alive probes would only add work, and turning them on
// costs four setsockopt calls on every accepted connection.
func ListenConfig() *net.ListenConfig {
	return &net.ListenConfig{KeepAlive: -1}
}

// Serve serves on ln until ctx is done or Shutdown is called, then shuts
// down gracefully. It closes ln. It returns nil after a clean shutdown and
// ErrServerClosed when the Server was already shut down.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	gl := newGuardedListener(s, s.tlsListener(ln)) // a refusal at the limit is answered over TLS too
	hs := s.newHTTPServer(gl)
	if !s.trackHTTP(hs) {
		_ = gl.Close() // never served; the caller handed ln over to us
		return ErrServerClosed
	}
	s.startBackground() // the broker connects now, so that a bad store is reported at start
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(gl) }() // hs.Serve closes gl, and so ln
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil // Shutdown was called directly
		}
		return fmt.Errorf("wsgate: serve: %w", err)
	case <-ctx.Done():
		if s.shutdownBegun() {
			// Shutdown was called directly and ctx ended before hs.Serve
			// returned: as above, the caller of Shutdown has its result.
			<-errc
			return nil
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DrainPeriod+s.cfg.ShutdownTimeout)
		defer cancel()
		err := s.Shutdown(sctx)
		<-errc
		return err
	}
}

// newHTTPServer is the http.Server of Serve: the bounds of Config on what
// a peer can make it hold before the upgrade, and net/http's own error
// log through the Server's Logger, rate-limited.
func (s *Server) newHTTPServer(gl *guardedListener) *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ConnContext:       connContext,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          log.New(httpErrorLog{s}, "", 0),
		ConnState: func(c net.Conn, st http.ConnState) {
			switch st {
			case http.StateIdle:
				if wc, ok := c.(*watchedConn); ok {
					wc.idle()
				}
			case http.StateHijacked, http.StateClosed:
				gl.release(c)
			}
		},
	}
}

// httpErrorLog hands net/http's error lines to the Server's Logger through
// the rate limit of rejected handshakes.
type httpErrorLog struct{ s *Server }

func (h httpErrorLog) Write(p []byte) (int, error) {
	h.s.rejectLog.log(h.s.now(), "wsgate: http server", slog.String("err", strings.TrimSpace(string(p))))
	return len(p), nil
}

// shutdownBegun reports whether Shutdown has been called.
func (s *Server) shutdownBegun() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdownDone != nil
}

// trackHTTP records hs for Shutdown, or reports false when shut down.
func (s *Server) trackHTTP(hs *http.Server) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdownDone != nil {
		return false
	}
	s.httpServers[hs] = struct{}{}
	return true
}

// Shutdown stops accepting connections (/readyz answers 503), closes every
// connection with 1001 (going away), waits for them, for running handlers,
// for the heartbeat and for a shared Broker's Run, then stops the listeners
// of Run and Serve. ctx bounds the wait: when it expires, connections are
// dropped and running handlers see their ctx cancelled; Shutdown still
// returns only after those handlers did. Calling Shutdown again waits for
// the first call and returns its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if done := s.shutdownDone; done != nil {
		s.mu.Unlock()
		select {
		case <-done:
			return s.shutdownErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.shutdownDone = make(chan struct{})
	s.draining.Store(true)
	servers := make([]*http.Server, 0, len(s.httpServers))
	for hs := range s.httpServers {
		servers = append(servers, hs)
	}
	s.mu.Unlock()

	err := s.shutdown(ctx, servers)
	s.mu.Lock()
	s.shutdownErr = err
	close(s.shutdownDone)
	s.mu.Unlock()
	return err
}

// shutdown does Shutdown's work in order; it keeps going after a step fails
// so that everything that can be stopped is.
func (s *Server) shutdown(ctx context.Context, servers []*http.Server) error {
	// Handlers run on the engine's executor, and the engine waits for its
	// callbacks even after ctx ends: once it ends, cancel the handlers'
	// ctx so that they return.
	stop := context.AfterFunc(ctx, s.cancelHandlers)
	defer stop()
	s.drain(ctx)
	var errs []error
	errs = append(errs, s.ws.Shutdown(ctx, websocket.StatusGoingAway, "server shutting down"))
	if s.echo != nil {
		errs = append(errs, s.echo.Shutdown(ctx, websocket.StatusGoingAway, "server shutting down"))
	}
	errs = append(errs, s.stopHeartbeat(ctx), s.tasks.closeAndWait(ctx), s.stopBroker(ctx))
	s.cancelHandlers()
	for _, hs := range servers {
		errs = append(errs, hs.Shutdown(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wsgate: shutdown: %w", err)
	}
	return nil
}

// taskGroup is a WaitGroup that can be closed to new tasks and waited on
// with a deadline, which sync.WaitGroup cannot.
type taskGroup struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // made by a waiter; closed when n drops to 0
}

// add registers a task, or reports false once the group is closed.
func (g *taskGroup) add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *taskGroup) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// closeAndWait refuses new tasks and waits until running ones finish or ctx
// is done.
func (g *taskGroup) closeAndWait(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	if g.n == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for replays: %w", ctx.Err())
	}
}
