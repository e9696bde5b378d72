package wsgate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/wsgate/wsgate/websocket"
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
	// MaxMessageSize is the largest message read on /ws. Default 64 KiB;
	// larger messages close the connection with 1009.
	MaxMessageSize int64
	// EchoMaxMessageSize is the largest message read on /echo. Default 16 MiB.
	EchoMaxMessageSize int64
	// DisableEcho turns off /echo and WebSocket upgrades on "/".
	DisableEcho bool

	// PingInterval is how often every connection is pinged. Default 30 s.
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
	// HandshakeRate is the upgrade rate allowed per client IP, per second,
	// with a burst of twice the rate. 0 means the default 20; negative
	// disables it. Exceeding it gets HTTP 429 with Retry-After.
	HandshakeRate float64

	// Broker shares pushes, per-user sequences, history, acks and presence
	// between gateway nodes (redisbroker.New). nil keeps them in this
	// Server's memory: a single node. With a Broker the History* settings
	// below are the broker's business and are ignored here.
	Broker Broker
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
	// 10 minutes.
	HistoryTTL time.Duration
	// HistoryMemory bounds the history of all users together, in bytes
	// (payloads plus about 64 bytes per push and 192 per user); beyond it
	// the users pushed to least recently lose their history first. Default
	// 128 MiB. A user's sequence and ack outlive its history while the user
	// is connected here; the state of others is forgotten with it.
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
	Mode websocket.Mode
}

// Defaults applied by New for zero fields.
const (
	defaultAddr               = "127.0.0.1:8080"
	defaultMaxConns           = 100000
	defaultMaxMessageSize     = 64 << 10
	defaultEchoMaxMessageSize = 16 << 20
	defaultPingInterval       = 30 * time.Second
	defaultIdleTimeout        = 3600 * time.Second
	defaultSendQueueMessages  = 1024
	defaultSendQueueBytes     = 1 << 20
	defaultMaxHandlers        = 1024
	defaultHandlerTimeout     = 10 * time.Second
	defaultMessageRate        = 100
	defaultHandshakeRate      = 20
	defaultShutdownTimeout    = 10 * time.Second
	defaultHistorySize        = 256
	defaultHistoryBytes       = 512 << 10
	defaultHistoryTTL         = 10 * time.Minute
	defaultHistoryMemory      = 128 << 20
)

// withDefaults returns a copy of c with every zero field set to its default,
// or an error when c cannot work.
func (c Config) withDefaults() (Config, error) {
	if err := c.validate(); err != nil {
		return c, err
	}
	setDefault(&c.Addr, defaultAddr)
	setDefault(&c.MaxConns, defaultMaxConns)
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.AllowedOrigins = append([]string(nil), c.AllowedOrigins...)
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
	} {
		if f.v < 0 {
			return fmt.Errorf("wsgate: Config.%s is negative (%d)", f.name, f.v)
		}
	}
	return nil
}

// historyLimits are the in-memory broker's bounds.
func (c *Config) historyLimits() historyLimits {
	return historyLimits{size: max(c.HistorySize, 0), bytes: c.HistoryBytes, ttl: c.HistoryTTL, total: c.HistoryMemory}
}
