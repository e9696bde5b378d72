package wsgate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/broker/memory"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// Identity is who is on a connection, decided by Config.Authenticate before the
// upgrade and fixed for the connection's lifetime.
type Identity struct {
	// UserID names the user; several connections (devices) may share it.
	// "" means anonymous, which only InsecureNoAuth produces.
	UserID string
	// Topics lists the topics the user may subscribe to. nil allows any topic;
	// an empty non-nil slice allows none. Each pattern is either an exact topic
	// or a prefix ending in "*" ("news.*" allows "news.sport").
	Topics []string
	// Expires is when the credentials behind this identity run out; zero
	// means never. A connection past it that has not sent a refresh frame
	// with a newer token is closed with wire.CloseTokenExpired (see
	// docs/PROTOCOL.md, token refresh).
	Expires time.Time
}

// Config configures a Server. The zero value is usable except that it must say
// how clients authenticate: set Authenticate or, for demos and tests,
// InsecureNoAuth. New copies the Config and never modifies the caller's value.
type Config struct {
	// Addr is the address Run listens on. Default "127.0.0.1:8080".
	Addr string
	// Logger receives the few events worth logging (handler failures). nil discards.
	Logger *slog.Logger

	// Authenticate is called before every upgrade on /ws. A non-nil error
	// rejects the handshake with HTTP 401 and the error's message as body, so
	// the message must not leak secrets.
	Authenticate func(ctx context.Context, r *http.Request) (Identity, error)
	// InsecureNoAuth allows /ws without Authenticate; every connection is
	// anonymous and may subscribe to any topic.
	InsecureNoAuth bool
	// AllowedOrigins lists extra Origin header values accepted on /ws, such
	// as "https://app.example.com"; "*" accepts any origin. Requests without
	// an Origin header (non-browser clients) and same-origin requests are
	// always accepted; anything else gets HTTP 403.
	AllowedOrigins []string
	// TrustedProxies lists the networks of reverse proxies (nginx) in front
	// of the gateway. For a request whose TCP peer is in one of them, the
	// client address used by the per-IP handshake limit comes from X-Real-IP
	// or, failing that, the right-most X-Forwarded-For entry that is not
	// itself a trusted proxy. Default none: proxy headers are ignored, since
	// any client can send them.
	TrustedProxies []netip.Prefix

	// MaxConns bounds open WebSocket connections (/ws and /echo together).
	// Default 100000; beyond it handshakes get HTTP 503.
	MaxConns int
	// MaxConnsPerUser bounds one user's open connections on this node, so
	// that one token (leaked, or shared by a misbehaving program) cannot
	// take the node's MaxConns. Default 1000; negative: unlimited. Beyond
	// it the user's handshakes get HTTP 429 with Retry-After until one of
	// its connections closes. Handshakes of the user that pass the check
	// at the same moment may each open one connection more.
	MaxConnsPerUser int
	// MaxMessageSize is the largest message read on /ws. Default 64 KiB;
	// larger messages close the connection with 1009.
	MaxMessageSize int64
	// EchoMaxMessageSize is the largest message read on /echo. Default
	// 64 KiB, as on /ws: /echo needs no token, so what it may hold is kept
	// small (see EchoMemory). Conformance suites that send 16 MiB messages
	// (Autobahn) need it raised, with EchoMemory.
	EchoMaxMessageSize int64
	// DisableEcho turns off /echo and WebSocket upgrades on "/".
	DisableEcho bool

	// PingInterval is how often every connection hears from the server at
	// least: a ping, skipped when a push or reply went out recently (see
	// the package doc's Heartbeat section). Default 30 s.
	PingInterval time.Duration
	// IdleTimeout closes a connection that sent nothing (not even a pong)
	// for this long, with 4001. Default 3600 s.
	IdleTimeout time.Duration

	// SendQueueMessages bounds a connection's outbound queue in messages.
	// Default 1024. Overflow is handled like SendQueueBytes.
	SendQueueMessages int
	// SendQueueBytes bounds a connection's outbound queue in bytes. Default
	// 1 MiB. A push or reply that does not fit closes the connection with
	// 4000 (slow consumer) and is counted in Stats.SlowConsumers.
	SendQueueBytes int

	// MaxHandlers bounds the handler calls running at once, server-wide.
	// Handlers run on the engine's executor, one call at a time per
	// connection in arrival order, on at most MaxHandlers goroutines that
	// start on demand and exit when idle. Default 1024. When all of them
	// are busy, further messages wait in their connection's bounded inbox
	// and the engine stops reading those connections until there is room:
	// backpressure, nothing is dropped.
	MaxHandlers int
	// HandlerTimeout is the deadline of the ctx handed to handlers. Default
	// 10 s. Calls that start close together share one timer, so a call's
	// deadline comes between HandlerTimeout and HandlerTimeout plus a tenth
	// of it after the call started.
	HandlerTimeout time.Duration
	// MessageRate is the inbound message rate allowed per connection, in
	// messages per second, with a burst of twice the rate. 0 means the default
	// 100; a negative value disables the limit. Exceeding it closes the
	// connection with 4002.
	MessageRate float64
	// HandshakeRate is the upgrade rate allowed per client IP (for IPv6,
	// per /64), per second, with a burst of twice the rate. 0 means the
	// default 500; negative disables it. Exceeding it gets HTTP 429 with
	// Retry-After. The default brings 18,000 clients behind one NAT back
	// within about a minute after their node restarts, and keeps one
	// address from sending more than 500 handshakes a second on to
	// Authenticate, OnConnect and the Broker (docs/DEPLOYMENT.md,
	// "Handshake rate").
	HandshakeRate float64

	// Broker numbers, keeps and carries pushes, and shares them, per-user
	// epochs and sequences, history, acks and presence between gateway
	// nodes (package broker/redis). nil keeps them in this Server's memory
	// (package broker/memory): a single node. With a Broker the History*
	// settings below are the broker's business and are ignored here.
	Broker broker.Broker
	// HistorySize bounds the pushes kept per user for clients that resume
	// after a reconnect (see Publish). Default 256; negative keeps none
	// (pushes to users are still numbered, and a resume then only learns
	// what it lost).
	HistorySize int
	// HistoryBytes bounds the payload bytes kept per user. Default 512 KiB.
	// Keep it below SendQueueBytes: a replay that does not fit the send
	// queue closes the connection as a slow consumer.
	HistoryBytes int64
	// HistoryTTL is how long a push is kept for resuming clients. Default
	// 24 hours (HistoryMemory still bounds the total).
	HistoryTTL time.Duration
	// HistoryMemory bounds the history of all users together, in bytes
	// (payloads plus about 64 bytes per push and 192 per user); beyond it
	// the users pushed to least recently lose their history first. Default
	// 128 MiB. A user's epoch, sequence and ack outlive its history while
	// the user is connected here; the state of others is forgotten with it,
	// and their next push starts a new epoch (resuming clients are told).
	HistoryMemory int64

	// Fallback handles actions that have no registered handler. nil replies
	// "unknown action N".
	Fallback HandlerFunc
	// OnConnect is called once a connection is registered and can receive
	// pushes, before the client's handshake completes (the 101 waits for
	// it): keep it short.
	OnConnect func(ctx context.Context, c *ConnInfo)
	// OnDisconnect is called once per connection after it is unregistered,
	// with the close code (1006 when the connection dropped without one).
	OnDisconnect func(c *ConnInfo, code int)

	// Page serves every request the library does not: plain GETs on "/" and
	// any path other than /ws, /echo, /healthz and /readyz. The binary puts
	// its web page here. nil answers 404.
	Page http.Handler
	// ShutdownTimeout bounds the graceful shutdown Run and Serve perform
	// after their ctx is done, on top of DrainPeriod. Default 10 s.
	ShutdownTimeout time.Duration
	// DrainPeriod, when positive, spreads Shutdown's closes: every /ws
	// connection is closed with 4003 (draining: reconnect elsewhere at
	// once, without backoff), in equal shares over this period, so that
	// the nodes taking the clients over see a steady stream of handshakes
	// instead of a burst. Set it when other nodes share the load. Default
	// 0: every connection gets 1001 at once, and clients come back with
	// jittered backoff (a single node has nowhere else to send them).
	DrainPeriod time.Duration
	// Mode selects the engine's I/O model (default: epoll reactor on Linux).
	// TLS connections always use the blocking mode (see TLSConfig).
	Mode websocket.Mode
	// DisableIOURing makes pushes to many connections (topics, broadcasts)
	// write to each with its own write(2) instead of handing the kernel
	// up to 64 writes per io_uring submission. io_uring is used only where
	// it is there and works (Linux; not disabled by the
	// kernel.io_uring_disabled sysctl or a seccomp profile such as
	// Docker's default one, in which case the writes fall back by
	// themselves); it takes about a third less CPU per recipient.
	DisableIOURing bool

	// CountActions lists actions that get their own entry in Stats.Actions
	// (and so their own metrics series) although no handler is registered
	// for them: the actions a Fallback such as a backend answers. Registered
	// actions always have one; all others share the entry of action 0. At
	// most maxCountActions.
	CountActions []wire.Action

	// The settings below bound what a peer can make the server hold before
	// it has authenticated. They apply to the http.Server of Run and Serve;
	// a program that mounts Handler in its own server sets its own.

	// ReadHeaderTimeout bounds reading a request's line and headers, an
	// upgrade's included (slowloris). Default 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included (the HTTP
	// API). Default 30 s. A WebSocket is not affected once upgraded.
	ReadTimeout time.Duration
	// HTTPIdleTimeout closes a keep-alive HTTP connection that waits this
	// long for its next request. Default 30 s.
	HTTPIdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's line and headers together, a token
	// in the query or a cookie included. Default 16 KiB; beyond it net/http
	// answers 431.
	MaxHeaderBytes int
	// MaxPendingConns bounds the TCP connections that are not (yet)
	// WebSockets: handshakes in flight, API requests and idle keep-alive
	// connections. Default 1024. Beyond it, and when the process is out of
	// file descriptors, a new connection gets HTTP 503 before its request
	// is read, and is closed; established connections are not affected.
	MaxPendingConns int
	// MaxPendingConnsPerIP bounds the connections of MaxPendingConns from
	// one client address (an IPv6 /64), so that one peer holding silent
	// connections cannot take the slots of everyone else until
	// ReadHeaderTimeout frees them. Default MaxPendingConns/8 (128 with its
	// default). The excess gets HTTP 503 before its request is read, like
	// MaxPendingConns's. Connections from TrustedProxies are exempt (they
	// carry many clients): MaxPendingConns alone bounds them.
	MaxPendingConnsPerIP int
	// EchoMemory bounds what /echo connections may hold together: each is
	// charged its worst case, SendQueueBytes plus four EchoMaxMessageSize
	// (one being read, one waiting, one being echoed, one past the queue's
	// bound), and a handshake that would go beyond EchoMemory gets 503;
	// one connection is always allowed. Default 64 MiB: 51 connections
	// with the other defaults.
	EchoMemory int64

	// TLSConfig, when set, makes Run and Serve speak TLS: https:// and
	// wss:// on Addr. It needs a certificate (Certificates, GetCertificate
	// or GetConfigForClient); use GetCertificate to replace certificates
	// while connections stay open. New clones it, and offers HTTP/1.1 only
	// (ALPN) when NextProtos is empty: WebSocket over HTTP/2 (RFC 8441) is
	// not supported. A TLS connection is driven by the engine's blocking
	// mode whatever Mode says, since the reactor reads raw sockets: see
	// package websocket, "Two I/O modes", and DEPLOYMENT.md for its memory
	// cost. nil: plain TCP. Handler users configure TLS on their own
	// http.Server instead.
	TLSConfig *tls.Config

	// Compression negotiates permessage-deflate (RFC 7692) on /ws and /echo
	// with clients that offer it (browsers do), every window size included.
	// Messages of 128 bytes or more are then compressed, each on its own:
	// chatty JSON shrinks to a quarter or so, for some CPU per message (see
	// docs/DEPLOYMENT.md) and no memory while a connection is idle. Default
	// off.
	Compression bool
	// CompressionContextTakeover, with Compression, keeps each connection's
	// compression window between messages: better ratios for streams of
	// similar messages, but every connection that sent or received a
	// compressed message then holds its compressor (about 1.2 MB once it
	// has sent one) and a 32 KiB window per direction while idle; see
	// docs/DEPLOYMENT.md. Default off.
	CompressionContextTakeover bool
}

// Defaults applied by New for zero fields.
const (
	defaultAddr               = "127.0.0.1:8080"
	defaultMaxConns           = 100000
	defaultMaxConnsPerUser    = 1000
	defaultMaxMessageSize     = 64 << 10
	defaultEchoMaxMessageSize = 64 << 10
	defaultPingInterval       = 30 * time.Second
	defaultIdleTimeout        = 3600 * time.Second
	defaultSendQueueMessages  = 1024
	defaultSendQueueBytes     = 1 << 20
	defaultMaxHandlers        = 1024
	defaultHandlerTimeout     = 10 * time.Second
	defaultMessageRate        = 100
	defaultHandshakeRate      = 500
	defaultShutdownTimeout    = 10 * time.Second
	defaultHistorySize        = 256
	defaultHistoryBytes       = 512 << 10
	defaultHistoryTTL         = 24 * time.Hour
	defaultHistoryMemory      = 128 << 20
	defaultReadHeaderTimeout  = 10 * time.Second
	defaultReadTimeout        = 30 * time.Second
	defaultHTTPIdleTimeout    = 30 * time.Second
	defaultMaxHeaderBytes     = 16 << 10
	defaultMaxPendingConns    = 1024
	defaultEchoMemory         = 64 << 20
)

// withDefaults returns a copy of c with every zero field set to its default,
// or an error when c cannot work.
func (c Config) withDefaults() (Config, error) {
	if err := c.validate(); err != nil {
		return c, err
	}
	setDefault(&c.Addr, defaultAddr)
	setDefault(&c.MaxConns, defaultMaxConns)
	setDefault(&c.MaxConnsPerUser, defaultMaxConnsPerUser)
	setDefault(&c.MaxMessageSize, defaultMaxMessageSize)
	setDefault(&c.EchoMaxMessageSize, defaultEchoMaxMessageSize)
	setDefault(&c.PingInterval, defaultPingInterval)
	setDefault(&c.IdleTimeout, defaultIdleTimeout)
	setDefault(&c.SendQueueMessages, defaultSendQueueMessages)
	setDefault(&c.SendQueueBytes, defaultSendQueueBytes)
	setDefault(&c.MaxHandlers, defaultMaxHandlers)
	setDefault(&c.HandlerTimeout, defaultHandlerTimeout)
	setDefault(&c.MessageRate, defaultMessageRate)
	setDefault(&c.HandshakeRate, defaultHandshakeRate)
	setDefault(&c.ShutdownTimeout, defaultShutdownTimeout)
	setDefault(&c.HistorySize, defaultHistorySize)
	setDefault(&c.HistoryBytes, defaultHistoryBytes)
	setDefault(&c.HistoryTTL, defaultHistoryTTL)
	setDefault(&c.HistoryMemory, defaultHistoryMemory)
	setDefault(&c.ReadHeaderTimeout, defaultReadHeaderTimeout)
	setDefault(&c.ReadTimeout, defaultReadTimeout)
	setDefault(&c.HTTPIdleTimeout, defaultHTTPIdleTimeout)
	setDefault(&c.MaxHeaderBytes, defaultMaxHeaderBytes)
	setDefault(&c.MaxPendingConns, defaultMaxPendingConns)
	setDefault(&c.MaxPendingConnsPerIP, max(c.MaxPendingConns/8, 1))
	setDefault(&c.EchoMemory, defaultEchoMemory)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.AllowedOrigins = append([]string(nil), c.AllowedOrigins...)
	c.CountActions = append([]wire.Action(nil), c.CountActions...)
	c.TLSConfig = serverTLS(c.TLSConfig)
	return c, nil
}

// setDefault stores def in *p when *p is the zero value.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// validate rejects configurations that would be insecure by accident or
// cannot work.
func (c *Config) validate() error {
	if c.Authenticate == nil && !c.InsecureNoAuth {
		return errors.New("wsgate: no Authenticate hook: set Config.Authenticate, or Config.InsecureNoAuth to accept anonymous clients")
	}
	if c.Authenticate != nil && c.InsecureNoAuth {
		return errors.New("wsgate: Authenticate and InsecureNoAuth are both set: choose one")
	}
	if len(c.CountActions) > maxCountActions {
		return fmt.Errorf("wsgate: Config.CountActions lists %d actions, more than %d", len(c.CountActions), maxCountActions)
	}
	if t := c.TLSConfig; t != nil && len(t.Certificates) == 0 && t.GetCertificate == nil && t.GetConfigForClient == nil {
		return errors.New("wsgate: Config.TLSConfig has no certificate: set Certificates or GetCertificate")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxConns", int64(c.MaxConns)},
		{"MaxMessageSize", c.MaxMessageSize},
		{"EchoMaxMessageSize", c.EchoMaxMessageSize},
		{"PingInterval", int64(c.PingInterval)},
		{"IdleTimeout", int64(c.IdleTimeout)},
		{"SendQueueMessages", int64(c.SendQueueMessages)},
		{"SendQueueBytes", int64(c.SendQueueBytes)},
		{"MaxHandlers", int64(c.MaxHandlers)},
		{"HandlerTimeout", int64(c.HandlerTimeout)},
		{"ShutdownTimeout", int64(c.ShutdownTimeout)},
		{"DrainPeriod", int64(c.DrainPeriod)},
		{"HistoryBytes", c.HistoryBytes},
		{"HistoryTTL", int64(c.HistoryTTL)},
		{"HistoryMemory", c.HistoryMemory},
		{"ReadHeaderTimeout", int64(c.ReadHeaderTimeout)},
		{"ReadTimeout", int64(c.ReadTimeout)},
		{"HTTPIdleTimeout", int64(c.HTTPIdleTimeout)},
		{"MaxHeaderBytes", int64(c.MaxHeaderBytes)},
		{"MaxPendingConns", int64(c.MaxPendingConns)},
		{"MaxPendingConnsPerIP", int64(c.MaxPendingConnsPerIP)},
		{"EchoMemory", c.EchoMemory},
	} {
		if f.v < 0 {
			return fmt.Errorf("wsgate: Config.%s is negative (%d)", f.name, f.v)
		}
	}
	return nil
}

// memoryOptions are the bounds of the in-memory broker a Server without a
// Broker makes.
func (c *Config) memoryOptions() memory.Options {
	return memory.Options{Size: max(c.HistorySize, 0), Bytes: c.HistoryBytes, TTL: c.HistoryTTL, Total: c.HistoryMemory}
}
