package config

import (
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// register defines every flag of serve on fs, bound to the fields of c. The
// help text states the library default where the flag's zero value means
// "use the default", because that is what an operator needs to read.
func (c *Config) register(fs *flag.FlagSet) *optionalBool {
	s := &c.Server
	fs.StringVar(&s.Addr, "addr", "127.0.0.1:8080", "listen address (host:port); use :8080 to listen on every interface")

	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 secret (at least 16 bytes) that client tokens are signed with")
	fs.StringVar(&c.JWTPublicKeyFile, "jwt-public-key", "", "PEM public key `file` for RS256/ES256 tokens (instead of --jwt-secret)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", "", "required iss claim of tokens (empty: not checked)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", "", "required aud claim of tokens (empty: not checked)")
	fs.BoolVar(&s.InsecureNoAuth, "insecure-no-auth", false, "accept WebSocket connections without a token (anonymous users); for local experiments only")
	fs.Var((*listValue)(&s.AllowedOrigins), "allowed-origins", "comma-separated extra `origins` browsers may connect from (https://app.example.com; * = any); same-origin is always allowed")
	fs.Var((*prefixList)(&s.TrustedProxies), "trusted-proxies", "comma-separated `networks` of reverse proxies whose X-Real-IP/X-Forwarded-For name the client (127.0.0.1/32, 10.0.0.0/8; a bare IP is one host)")
	fs.StringVar(&c.APIKey, "api-key", "", "`key` for the HTTP push API (Authorization: Bearer KEY); empty: API off")
	fs.Var((*byteSize)(&c.APIMaxPayload), "api-max-payload", "largest payload of one push through the API (0: 64KiB)")
	fs.StringVar(&c.Redis, "redis", "", "redis://host:port/db `URL` of the Redis that gateway nodes share for pushes, resume history, acks and presence (empty: one node, in memory)")
	fs.StringVar(&c.Backend, "backend", "", "HTTP `URL` that actions without a handler are forwarded to")
	fs.DurationVar(&c.BackendTimeout, "backend-timeout", 0, "deadline of one backend call (0: 5s)")
	fs.IntVar(&c.BackendConcurrency, "backend-concurrency", 0, "backend calls in flight at most (0: 64)")
	demo := &optionalBool{}
	fs.Var(demo, "demo", "register the demo handlers: 100 echo, 110 add friend, 111 get info (default: on when no token verification is configured: first-run mode or --insecure-no-auth)")

	fs.IntVar(&s.MaxConns, "max-conns", 0, "maximum open WebSocket connections, beyond → HTTP 503 (0: what the open-files limit allows, at most 100000)")
	fs.IntVar(&s.MaxConnsPerUser, "max-conns-per-user", 0, "maximum open WebSocket connections of one user on this node, beyond → HTTP 429 (0: 1000; negative: unlimited)")
	fs.Var((*byteSize)(&s.MaxMessageSize), "max-message-size", "largest message accepted on /ws, e.g. 64KiB; larger → close 1009 (0: 64KiB)")
	fs.Var((*byteSize)(&s.EchoMaxMessageSize), "echo-max-message-size", "largest message accepted on /echo; the Autobahn suite needs 16MiB, with --echo-memory 256MiB (0: 64KiB)")
	fs.BoolVar(&s.DisableEcho, "no-echo", false, "switch off the /echo endpoint")
	fs.DurationVar(&s.PingInterval, "ping-interval", 0, "how often idle connections are pinged (0: 30s)")
	fs.DurationVar(&s.IdleTimeout, "idle-timeout", 0, "close connections that sent nothing for this long (0: 1h)")
	fs.IntVar(&s.SendQueueMessages, "send-queue-messages", 0, "outbound queue bound per connection in messages; overflow → close 4000 (0: 1024)")
	fs.IntVar(&s.MaxPendingConnsPerIP, "max-pending-conns-per-ip", 0, "of --max-pending-conns, how many one client address (IPv6: /64) may hold; beyond → HTTP 503 before the request is read; --trusted-proxies are exempt (0: --max-pending-conns/8)")
	fs.Var((*intByteSize)(&s.SendQueueBytes), "send-queue-bytes", "outbound queue bound per connection in bytes; overflow → close 4000 (0: 1MiB)")
	fs.IntVar(&s.MaxHandlers, "max-handlers", 0, "handler calls running at once, server-wide (one at a time per connection); when all are busy, reading pauses (0: 1024)")
	fs.DurationVar(&s.HandlerTimeout, "handler-timeout", 0, "deadline of one handler call (0: 10s)")
	fs.Float64Var(&s.MessageRate, "message-rate", 0, "inbound messages per second per connection, burst 2×; over → close 4002 (0: 100; negative: unlimited)")
	fs.Float64Var(&s.HandshakeRate, "handshake-rate", 0, "WebSocket upgrades per second per client IP, burst 2×; over → HTTP 429 (0: 500; negative: unlimited)")
	fs.IntVar(&s.HistorySize, "history-size", 0, "pushes kept per user for clients that resume after a reconnect (0: 256; negative: none)")
	fs.Var((*byteSize)(&s.HistoryBytes), "history-bytes", "payload bytes kept per user for resuming clients; keep below --send-queue-bytes (0: 512KiB)")
	fs.DurationVar(&s.HistoryTTL, "history-ttl", 0, "how long a push is kept for resuming clients (0: 24h)")
	fs.Var((*byteSize)(&s.HistoryMemory), "history-memory", "memory for the history of all users; the least recently pushed lose theirs first (0: 128MiB)")
	fs.Var((*modeValue)(&s.Mode), "mode", "I/O `mode`: auto (epoll reactor on Linux), reactor or blocking (goroutine per connection)")
	fs.BoolVar(&s.DisableIOURing, "no-io-uring", false, "write pushes to many connections with one write(2) each instead of io_uring batches (io_uring is skipped anyway where the kernel or a seccomp profile refuses it)")
	fs.BoolVar(&s.Compression, "compression", false, "negotiate permessage-deflate on /ws and /echo with clients that offer it: messages of 128 bytes or more are compressed, each on its own (CPU per message, no memory while idle)")
	fs.BoolVar(&s.CompressionContextTakeover, "compression-context-takeover", false, "with --compression, keep each connection's compression window between messages: better ratios, but about 1.2MB per connection that sent a compressed message (see docs/DEPLOYMENT.md)")

	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", 0, "on SIGINT/SIGTERM, how long to wait for connections to close, after --drain-period (0: 10s)")
	fs.DurationVar(&s.DrainPeriod, "drain-period", 0, "on SIGINT/SIGTERM, close connections with 4003 (reconnect elsewhere) spread over this period; for nodes behind a load balancer (0: 1001 to all at once)")
	fs.DurationVar(&s.ReadHeaderTimeout, "read-header-timeout", 0, "time to read a request's headers, an upgrade's included (0: 10s)")
	fs.DurationVar(&s.ReadTimeout, "read-timeout", 0, "time to read a whole request, body included, e.g. an API push (0: 30s)")
	fs.DurationVar(&s.HTTPIdleTimeout, "http-idle-timeout", 0, "close keep-alive HTTP connections idle this long between requests (0: 30s)")
	fs.Var((*intByteSize)(&s.MaxHeaderBytes), "max-header-bytes", "largest request line and headers, a token included; larger → HTTP 431 (0: 16KiB)")
	fs.IntVar(&s.MaxPendingConns, "max-pending-conns", 0, "TCP connections that are not (yet) WebSockets: handshakes in flight, API requests, idle keep-alive; beyond → HTTP 503 before the request is read (0: 1024)")
	fs.Var((*byteSize)(&s.EchoMemory), "echo-memory", "memory all /echo connections may hold together, each charged --send-queue-bytes + 4×--echo-max-message-size; beyond → HTTP 503 (0: 64MiB)")
	fs.DurationVar(&c.JWTLeeway, "jwt-leeway", 30*time.Second, "clock skew allowed on the exp and nbf claims of tokens")
	fs.BoolVar(&c.JWTAllowNoExpiry, "jwt-allow-no-exp", false, "accept tokens without an exp claim, valid forever (default: exp required)")
	fs.Var((*levelValue)(&c.LogLevel), "log-level", "log `level`: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log `format`: text or json")
	fs.Var((*actionList)(&s.CountActions), "count-actions", "comma-separated `actions` that get their own metrics series although only --backend answers them (registered actions always do; others count as \"other\"; at most 256)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics on a listener of its own, e.g. 127.0.0.1:9090 (empty: off)")

	fs.StringVar(&c.ConfigFile, configFlag, "", "TOML `file` of settings, keys named like these flags; flags and WSGATE_* variables win over it (reloaded on SIGHUP)")
	fs.StringVar(&c.TLSCertFile, "tls-cert", "", "PEM certificate chain `file`: serve https:// and wss:// (with --tls-key; reloaded on SIGHUP)")
	fs.StringVar(&c.TLSKeyFile, "tls-key", "", "PEM private key `file` of --tls-cert")
	return demo
}

// optionalBool is a bool flag that remembers whether it was set, because the
// default of --demo depends on other settings.
type optionalBool struct {
	set, v bool
}

func (b *optionalBool) String() string {
	if b == nil || !b.set {
		return "auto"
	}
	return strconv.FormatBool(b.v)
}

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	b.set, b.v = true, v
	return nil
}

func (b *optionalBool) IsBoolFlag() bool { return true }

// value is the flag's value, or def when it was not given.
func (b *optionalBool) value(def bool) bool {
	if b.set {
		return b.v
	}
	return def
}

// listValue is a comma-separated list; empty items are dropped.
type listValue []string

func (l *listValue) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listValue) Set(s string) error {
	*l = SplitList(s)
	return nil
}

// prefixList is a comma-separated list of networks; a bare address is a
// network of one host.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (l *prefixList) Set(s string) error {
	var out []netip.Prefix
	for _, item := range SplitList(s) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return fmt.Errorf("wsgate: %q is neither a network (10.0.0.0/8) nor an address", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	*l = out
	return nil
}

// SplitList splits a comma-separated value, trimming spaces and dropping
// empty items, so that "" means "no list" rather than one empty name.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// byteSize is a size in bytes, written as a number with an optional binary
// suffix: 65536, 64KiB, 64K, 16MiB, 1GiB.
type byteSize int64

func (b *byteSize) String() string {
	if b == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

// intByteSize is byteSize for int fields.
type intByteSize int

func (b *intByteSize) String() string {
	if b == nil {
		return "0"
	}
	return strconv.Itoa(int(*b))
}

func (b *intByteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	if int64(int(n)) != n {
		return fmt.Errorf("size %q too large", s)
	}
	*b = intByteSize(n)
	return nil
}

var sizeSuffixes = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
}

func parseByteSize(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, sf := range sizeSuffixes {
		if strings.HasSuffix(num, sf.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, sf.suffix)), sf.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a size like 65536, 64KiB or 16MiB, got %q", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q too large", s)
	}
	return n * mult, nil
}

// modeValue selects the websocket engine's I/O mode.
type modeValue websocket.Mode

var modeNames = map[string]websocket.Mode{
	"auto": websocket.ModeAuto, "reactor": websocket.ModeReactor, "blocking": websocket.ModeBlocking,
}

func (m *modeValue) String() string {
	if m == nil {
		return "auto"
	}
	for name, v := range modeNames {
		if v == websocket.Mode(*m) {
			return name
		}
	}
	return strconv.Itoa(int(*m))
}

func (m *modeValue) Set(s string) error {
	v, ok := modeNames[strings.ToLower(s)]
	if !ok {
		return fmt.Errorf("want auto, reactor or blocking, got %q", s)
	}
	*m = modeValue(v)
	return nil
}

// levelValue is a slog level name.
type levelValue slog.Level

func (l *levelValue) String() string {
	if l == nil {
		return "info"
	}
	return strings.ToLower(slog.Level(*l).String())
}

func (l *levelValue) Set(s string) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	*l = levelValue(lv)
	return nil
}

// actionList is a comma-separated list of application action codes.
type actionList []wire.Action

func (l *actionList) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(*l))
	for i, a := range *l {
		parts[i] = strconv.FormatUint(uint64(a), 10)
	}
	return strings.Join(parts, ",")
}

func (l *actionList) Set(s string) error {
	var out []wire.Action
	for _, item := range SplitList(s) {
		n, err := strconv.ParseUint(item, 10, 32)
		if err != nil || !wire.Action(n).IsApp() {
			return fmt.Errorf("want application actions (%d…%d), got %q", wire.MinAppAction, wire.SimpleErrorBit-1, item)
		}
		out = append(out, wire.Action(n))
	}
	*l = out
	return nil
}
