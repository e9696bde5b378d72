package websocket

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Mode selects how connections are driven.
type Mode int

const (
	// ModeAuto uses the reactor on Linux and blocking mode elsewhere.
	ModeAuto Mode = iota
	// ModeReactor drives plain-TCP connections from a few epoll goroutines
	// (Linux only; elsewhere it behaves as ModeBlocking). TLS connections are
	// always driven in blocking mode.
	ModeReactor
	// ModeBlocking gives every connection its own reader goroutine, and a
	// writer goroutine while it has data to send.
	ModeBlocking
)

// Config tunes a Server, a Dialer or a pull-mode Dial. The zero value works;
// every field documents its default. Constructors copy it.
type Config struct {
	// Mode picks the I/O model; default ModeAuto.
	Mode Mode
	// ReadLimit is the largest message accepted, after decompression; a
	// bigger one closes the connection with 1009. Default 16 MiB.
	ReadLimit int64
	// WriteQueueLimit bounds the bytes queued per connection beyond what the
	// kernel accepted; WriteMessage returns ErrWriteQueueFull past it. A
	// single message is always accepted into an empty queue, so the bound is
	// WriteQueueLimit plus one message. Default 4 MiB.
	WriteQueueLimit int
	// WriteQueueMessages bounds the same queue in frames, so that many
	// small messages to a peer that stopped reading are refused long before
	// their bytes reach WriteQueueLimit (a gateway bounds a client's backlog
	// in messages). Control frames count but are never refused. Writes of
	// a reactor connection go to the socket first and queue only what the
	// kernel refuses, so a fast reader never sees the bound; in blocking
	// mode every frame waits in the queue for the writer goroutine, so a
	// burst of more frames than this, written faster than the writer sends
	// them, is refused even when the peer keeps up (Write(ctx) waits
	// instead). Default 1024.
	WriteQueueMessages int
	// IdleTimeout closes a connection that received nothing for this long,
	// with IdleCloseCode and IdleCloseReason. 0 (default) means never. The
	// reactor checks it about once a second; more than a year counts as
	// 1.14 years (the reach of the connection's 32-bit activity stamps).
	IdleTimeout time.Duration
	// IdleCloseCode is the close code IdleTimeout sends, so that clients
	// can tell an idle close from a shutdown (a gateway uses one of its
	// 4000-4999 codes). It must be a code that may be sent (not 1005, 1006
	// or 1015). Default 1001 (going away).
	IdleCloseCode StatusCode
	// IdleCloseReason is the reason IdleTimeout sends. Default
	// "idle timeout".
	IdleCloseReason string
	// CloseTimeout is how long to wait for the peer's close frame (or its
	// TCP FIN) after a close frame was sent. Default 5 s.
	CloseTimeout time.Duration
	// Compression negotiates permessage-deflate (RFC 7692): a server accepts
	// a client's offer, a client makes one. Default off: it costs CPU on
	// every message (see the package doc, Compression cost).
	Compression bool
	// CompressionContextTakeover keeps the deflate window between messages:
	// better ratio, but each connection then holds its own compressor and
	// decompressor (hundreds of KiB) for its whole life. Default off.
	CompressionContextTakeover bool
	// CompressionThreshold: messages shorter than this are sent
	// uncompressed. Default 128 bytes.
	CompressionThreshold int
	// Workers bounds the executor goroutines that run Handler callbacks.
	// Up to GOMAXPROCS start as soon as there is work; more start only to
	// replace workers blocked in a callback for over a millisecond, so
	// callbacks that block (user code, I/O) don't stall other connections
	// while quick ones cost no extra goroutines. Idle workers exit. Default 64.
	Workers int
	// InboxLimit is how many received messages may wait for one
	// connection's OnMessage before reading from that connection pauses.
	// Default 32.
	InboxLimit int
	// Pollers is the number of reactor epoll goroutines. Default
	// GOMAXPROCS.
	Pollers int
	// DisableIOURing makes a Batch write to each connection with its own
	// write(2), as Conn.WritePrepared does, instead of handing the kernel
	// up to 64 writes in one io_uring submission. A Batch uses io_uring
	// only where it is there and works (Linux, not disabled by the
	// kernel.io_uring_disabled sysctl or a seccomp profile, such as
	// Docker's default one), checked once per process. Default false.
	DisableIOURing bool
	// Logger receives the engine's rare events worth a log line: a
	// recovered callback panic, with its value and stack (level Error).
	// nil discards them.
	Logger *slog.Logger
	// OnPanic, if set, is called after a Handler callback panicked, with
	// the recovered value and the stack of the panic, on the goroutine that
	// ran the callback, before the connection is closed with 1011 (for
	// error reporting; a panic in OnPanic itself is recovered and
	// ignored). Server.Panics and Dialer.Panics count these panics either
	// way.
	OnPanic func(c *Conn, value any, stack []byte)
}

// Defaults applied by withDefaults.
const (
	defaultReadLimit       = 16 << 20
	defaultWriteQueueLimit = 4 << 20
	defaultWriteQueueMsgs  = 1024
	defaultCloseTimeout    = 5 * time.Second
	defaultIdleCloseCode   = StatusGoingAway
	defaultIdleCloseReason = "idle timeout"
	defaultCompressionMin  = 128
	defaultWorkers         = 64
	defaultInboxLimit      = 32
)

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = defaultReadLimit
	}
	if cfg.WriteQueueLimit <= 0 {
		cfg.WriteQueueLimit = defaultWriteQueueLimit
	}
	if cfg.WriteQueueMessages <= 0 {
		cfg.WriteQueueMessages = defaultWriteQueueMsgs
	}
	if cfg.IdleCloseCode == 0 {
		cfg.IdleCloseCode = defaultIdleCloseCode
	}
	if cfg.IdleCloseReason == "" {
		cfg.IdleCloseReason = defaultIdleCloseReason
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = defaultCloseTimeout
	}
	if cfg.CompressionThreshold <= 0 {
		cfg.CompressionThreshold = defaultCompressionMin
	}
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.InboxLimit <= 0 {
		cfg.InboxLimit = defaultInboxLimit
	}
	if cfg.Pollers <= 0 {
		cfg.Pollers = max(runtime.GOMAXPROCS(0), 1)
	}
	return cfg
}

// Handler holds the callbacks of event-mode connections. Callbacks run on
// the executor (a server's OnOpen on the goroutine that called Accept),
// never on an I/O goroutine; the calls for one connection are
// serialised and ordered: OnOpen, OnMessage..., OnClose (exactly once,
// last). A panicking callback closes its connection with 1011. Nil fields
// are skipped.
type Handler struct {
	// OnOpen runs before any OnMessage: the place to make the connection
	// reachable (register it for pushes) and to send a greeting. On the
	// server side it runs on the goroutine that called Accept, before the
	// connection's I/O starts, and the client gets its 101 only once it
	// has returned: a client whose handshake finished is reachable. What
	// is written to the connection meanwhile, from any goroutine, is sent
	// after the 101. Keep it short: the client's handshake waits for it.
	OnOpen func(c *Conn)
	// OnMessage receives one whole message; data is valid until it returns.
	OnMessage func(c *Conn, typ MessageType, data []byte)
	// OnClose reports why the connection ended: a *CloseError from the close
	// handshake (the close frame that started it, ours or the peer's), or
	// the I/O error.
	OnClose func(c *Conn, err error)
}

// errShutdown is returned by Accept and Dial once Shutdown has begun.
var errShutdown = fmt.Errorf("websocket: shut down: %w", net.ErrClosed)

// engine is what a Server, a Dialer and a pull-mode connection share: the
// configuration, the executor, the reactor and the set of live connections.
type engine struct {
	cfg    Config
	h      Handler
	client bool      // frames are masked, the parser expects unmasked frames
	pull   bool      // messages go to Conn.Read instead of a Handler
	epoch  time.Time // tick 0 of the activity clock (monotonic)
	exec   executor
	gen    atomic.Uint32 // connection generations, see Conn.gen
	panics atomic.Uint64 // recovered callback panics
	wg     sync.WaitGroup

	protocols atomic.Pointer[[]string] // negotiated subprotocols seen so far, see internProtocol
	protoMu   sync.Mutex               // serialises additions to protocols

	mu          sync.Mutex
	conns       connList
	closing     bool
	closeCode   StatusCode    // Shutdown's code and reason, for connections
	closeReason string        // that finish their handshake after it began
	drained     chan struct{} // made by shutdown, closed when conns is empty
	r           *reactor      // started by the first reactor connection
	stopped     bool          // the reactor may not start any more
}

func newEngine(cfg Config, h Handler, client, pull bool) *engine {
	e := &engine{cfg: cfg.withDefaults(), h: h, client: client, pull: pull, epoch: time.Now()}
	e.exec.init(e.cfg.Workers)
	return e
}

// tickShift makes the activity clock's tick 2^24 ns (about 16.8 ms): coarse
// enough for a 32-bit stamp to cover 2.28 years, fine enough for timeouts
// and ping intervals of a fraction of a second.
const tickShift = 24

// maxTickAge bounds the ages the activity clock tells apart: a stamp older
// than 2^31-1 ticks (1.14 years) may look newer than it is.
const maxTickAge = 1<<31 - 1

// ticks is the activity clock at now: engine ticks since e.epoch, modulo
// 2^32. Conn.lastRead and Conn.lastWrite hold such stamps.
func (e *engine) ticks(now time.Time) uint32 {
	return uint32(now.Sub(e.epoch) >> tickShift)
}

// tickAge is how long ago stamp was, at tick now; 0 for a stamp stored
// after now was read.
func tickAge(now, stamp uint32) time.Duration {
	return time.Duration(max(int32(now-stamp), 0)) << tickShift
}

// durationTicks is d in whole ticks rounded up, at most maxTickAge.
func durationTicks(d time.Duration) uint32 {
	return uint32(min((d+(1<<tickShift)-1)>>tickShift, maxTickAge))
}

// compression is what the handshake may negotiate.
func (e *engine) compression() compressionConfig {
	return compressionConfig{enabled: e.cfg.Compression, contextTakeover: e.cfg.CompressionContextTakeover}
}

// add registers c; it fails once shutdown has begun.
func (e *engine) add(c *Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return false
	}
	e.conns.push(c)
	return true
}

// refusal is the close frame for a connection that finished its handshake
// but could not start: Shutdown's code once it has begun (closing), else
// 1011 (the reactor failed to take the connection; a server answers 503
// instead, see Conn.refuse).
func (e *engine) refusal() (code StatusCode, reason string, closing bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return e.closeCode, e.closeReason, true
	}
	return StatusInternalError, "internal error", false
}

// remove forgets c after its OnClose returned.
func (e *engine) remove(c *Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conns.remove(c)
	if e.closing && e.conns.n == 0 && e.drained != nil {
		close(e.drained)
		e.drained = nil
	}
}

// len returns the number of live connections.
func (e *engine) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conns.n
}

// snapshot returns the live connections.
func (e *engine) snapshot() []*Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conns.all()
}

// shutdown closes every connection with code and reason, waits for them to
// finish (or ctx, after which they are dropped), then stops every goroutine.
func (e *engine) shutdown(ctx context.Context, code StatusCode, reason string) error {
	e.mu.Lock()
	if !e.closing {
		e.closing, e.closeCode, e.closeReason = true, code, reason
	}
	var drained chan struct{}
	if e.conns.n > 0 {
		if e.drained == nil {
			e.drained = make(chan struct{})
		}
		drained = e.drained
	}
	conns := e.conns.all()
	e.mu.Unlock()

	for _, c := range conns {
		_ = c.Close(code, reason) // an already closed conn needs nothing more
	}
	var err error
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			err = fmt.Errorf("websocket: shutdown: %w", ctx.Err())
			for _, c := range e.snapshot() {
				_ = c.CloseNow() // ctx is over: drop what is left
			}
			<-drained
		}
	}
	e.stop()
	return err
}

// stop ends the reactor and the executor and waits for every goroutine.
func (e *engine) stop() {
	e.mu.Lock()
	e.stopped = true
	r := e.r
	e.mu.Unlock()
	if r != nil {
		r.stop()
	}
	e.wg.Wait()
	e.exec.stop()
}

// reactor returns the running reactor, starting it on first use. It returns
// nil when the reactor is unavailable (not Linux, or stopped).
func (e *engine) reactor() (*reactor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.r != nil || e.stopped {
		return e.r, nil
	}
	r, err := startReactor(e)
	if err != nil {
		return nil, err
	}
	e.r = r
	return r, nil
}

// useReactor reports whether a connection of this engine should be driven
// by the reactor, if the platform and the connection allow it.
func (e *engine) useReactor() bool {
	return !e.pull && e.cfg.Mode != ModeBlocking && reactorSupported
}

// open turns a finished handshake into a running connection: it picks the
// I/O mode, registers the connection, runs or queues OnOpen and starts I/O,
// in that order, so that OnOpen comes first and every method works at once.
// A server runs OnOpen here, on the accepting goroutine, and sends its 101
// (res.response) only then, with everything written to the connection
// meanwhile (Conn.openInline); a client queues OnOpen to its executor.
//
// A connection that cannot start is refused: after Shutdown began, with
// Shutdown's close frame after its 101; when the reactor could not take it
// (out of file descriptors), a server answers 503 instead of the 101 and a
// client sends 1011. Its peer must learn why instead of seeing TCP drop
// (1006).
func (e *engine) open(res handshakeResult, value any) (*Conn, error) {
	c := newConn(e, res, value)
	if err := e.bindReactor(c, res.conn); err != nil {
		c.refuse(res.conn, res.response)
		return nil, err
	}
	if c.poller == nil {
		c.ext().bio = newBlockingIO(res.conn, e.pull)
	}
	if !e.add(c) {
		c.refuse(res.conn, res.response)
		return nil, errShutdown
	}
	if res.response != nil {
		c.openInline(res.response)
	} else {
		c.pushOpen()
	}
	if c.poller != nil {
		c.poller.register(c, res.buffered)
	} else {
		c.startReader(res.buffered)
	}
	return c, nil
}

// bindReactor gives c to a poller when the engine and the connection allow
// it (plain TCP); otherwise c stays for blocking mode. Once the socket is
// taken, c.fd holds it and conn is closed, also on error.
func (e *engine) bindReactor(c *Conn, conn net.Conn) error {
	if !e.useReactor() {
		return nil
	}
	fd, ok, err := takeFD(conn)
	if err != nil || !ok {
		return err
	}
	c.fd = int32(fd)
	r, err := e.reactor()
	if err == nil && r == nil {
		err = errShutdown
	}
	if err != nil {
		return err
	}
	r.bind(c, fd)
	return nil
}

// Server accepts WebSocket connections and drives them with a Handler.
type Server struct {
	eng *engine
}

// NewServer returns a server for cfg and h. It starts no goroutines: the
// reactor starts with the first accepted connection.
func NewServer(cfg Config, h Handler) *Server {
	return &Server{eng: newEngine(cfg, h, false, false)}
}

// Accept performs the opening handshake and starts the connection. On a
// failed handshake the HTTP error (400, 403, 405, 426) has already been
// written and the error is returned. After Shutdown it answers 503, and
// so it does when the connection cannot be started for want of resources
// (out of file descriptors): never a 101 followed by 1011.
// opts may be nil. The 101 is sent once Handler.OnOpen has returned, maybe
// after Accept: the Conn can be written at once, and its output follows
// the 101.
func (s *Server) Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	if s.eng.isClosing() {
		http.Error(w, "websocket: server is shutting down", http.StatusServiceUnavailable)
		return nil, errShutdown
	}
	if opts == nil {
		opts = &AcceptOptions{}
	}
	res, err := serverHandshake(w, r, opts, s.eng.compression())
	if err != nil {
		return nil, err
	}
	return s.eng.open(res, opts.Value)
}

// isClosing reports whether shutdown has begun.
func (e *engine) isClosing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closing
}

// Shutdown stops accepting, sends a close frame with code and reason to
// every connection and waits until all have finished (their OnClose
// returned). When ctx ends first, the remaining connections are dropped and
// ctx's error is returned. It then stops every goroutine of the server.
// Accept answers 503 from now on; a handshake that finishes during
// Shutdown gets the same close frame after its 101.
func (s *Server) Shutdown(ctx context.Context, code StatusCode, reason string) error {
	return s.eng.shutdown(ctx, code, reason)
}

// Len returns the number of connections whose OnClose has not returned
// yet, closing ones included: a gauge for metrics and for waiting on
// Shutdown.
func (s *Server) Len() int { return s.eng.len() }

// Panics returns how many Handler callbacks have panicked (and were
// recovered) since the server was made: a counter for metrics.
func (s *Server) Panics() uint64 { return s.eng.panics.Load() }

// connList is an intrusive doubly linked list of connections: registering
// a connection costs no allocation and two pointers.
type connList struct {
	head *Conn
	n    int
}

func (l *connList) push(c *Conn) {
	c.lprev = nil
	c.lnext = l.head
	if l.head != nil {
		l.head.lprev = c
	}
	l.head = c
	l.n++
}

func (l *connList) remove(c *Conn) {
	if c.lprev != nil {
		c.lprev.lnext = c.lnext
	} else if l.head == c {
		l.head = c.lnext
	} else {
		return // not in the list
	}
	if c.lnext != nil {
		c.lnext.lprev = c.lprev
	}
	c.lprev, c.lnext = nil, nil
	l.n--
}

func (l *connList) all() []*Conn {
	out := make([]*Conn, 0, l.n)
	for c := l.head; c != nil; c = c.lnext {
		out = append(out, c)
	}
	return out
}
