// Package wsgate is a WebSocket long-connection gateway: application clients
// keep one WebSocket open, send requests (a 4-byte big-endian action code
// plus a payload) that handlers answer, and receive pushes the backend sends
// to a connection, a user (every device), a topic's subscribers or everyone.
// The wire format is defined by package wire and docs/PROTOCOL.md; the
// WebSocket engine is package websocket.
//
//	srv, err := wsgate.New(wsgate.Config{Authenticate: verifyToken})
//	if err != nil { ... }
//	srv.Handle(110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
//		return []byte("hello " + req.Conn.UserID), nil
//	})
//	go srv.Run(ctx) // or mount srv.Handler() in your own http.Server
//	srv.Push(ctx, wsgate.Target{User: "alice"}, 120, []byte("you have mail"))
//
// # Endpoints
//
// Handler serves:
//
//   - /ws: the application endpoint. A client that offers the subprotocol
//     "wsgate.v1" speaks the full form (typed binary frames with request
//     ids, a hello frame first); "wsgate.v1.json" the same frames as JSON
//     text; no subprotocol the simple form (action + payload, replies in
//     request order). Text messages are JSON frames in every form.
//   - /echo, and WebSocket upgrades on "/": an RFC 6455 echo service for
//     classic clients (same opcode back, up to Config.EchoMaxMessageSize,
//     no authentication). Config.DisableEcho turns both off.
//   - /healthz: 200 "ok" while the process serves HTTP.
//   - /readyz: 200 while accepting connections, 503 once Shutdown has begun,
//     so load balancers stop sending clients before the connections close.
//
// Everything else — a plain GET on "/", static assets, an HTTP API — goes to
// Config.Page, which the wsgate binary sets to a mux holding its web page
// and push API; with no Page it is a 404.
//
// # Lifecycle
//
// New validates and copies the Config and starts nothing. Run listens on
// Config.Addr; Serve uses a listener you provide; both block until their
// ctx is done and then shut down gracefully within Config.DrainPeriod +
// Config.ShutdownTimeout, returning nil after a clean shutdown. Handler
// alone is enough when you run the http.Server yourself: call Shutdown when
// you stop it, because http.Server.Shutdown does not close hijacked
// WebSocket connections.
//
// A client can be reached by Push, Presence and Disconnect from the moment
// its handshake completes: the server registers a connection before it sends
// the 101. A full-form client's hello is always the first frame it reads.
//
// Shutdown makes /readyz answer 503 and refuses new handshakes (503). With
// Config.DrainPeriod it then closes the connections with 4003 (draining),
// in equal shares over that period. It sends every connection left a close
// frame with 1001 (going away), waits for the connections to finish their
// close handshake, for running handlers, for the heartbeat goroutine and
// for a shared Broker's Run (which the first connection started), then
// stops the HTTP servers of Run and Serve. Its ctx bounds the wait:
// connections still open are then dropped and handlers see their ctx
// cancelled; Shutdown returns once those handlers have returned.
// Afterwards Push, Serve and Run return ErrServerClosed.
//
// Before upgrading a /ws request the server checks, in this order: the
// per-IP handshake rate (429 with Retry-After), Config.MaxConns (503), the
// origin policy (403), Config.Authenticate (401 with the error's message)
// and Config.MaxConnsPerUser (429 with Retry-After). /echo applies the
// first two.
//
// # Concurrency
//
// All methods of Server are safe for concurrent use; Handle may be called
// while serving. Handlers (and Config.Fallback) run on the engine's
// executor, where the callbacks of one connection run one at a time, in
// order: a connection's requests are handled one at a time, in the order
// they arrived, and its replies come back in request order — which the
// simple form, having no request ids, relies on. A slow handler delays only
// its own connection's later requests. Handlers of different connections
// run in parallel, on at most Config.MaxHandlers goroutines (default 1024),
// started on demand — about GOMAXPROCS while handlers return quickly, more
// while some of them wait for I/O — and exiting when idle. When all of them
// are busy, further messages wait in their connection's bounded inbox and
// the engine stops reading those connections until there is room: TCP
// pushes back on the clients, and nothing is dropped. There is no goroutine
// per request, so a quick handler costs no goroutine start and no fresh
// stack. A handler's ctx carries the ConnInfo (ConnFrom) and expires after
// Config.HandlerTimeout; calls that start close together share one timer.
// System actions (subscribe, unsubscribe, presence, ping) are answered
// inline as well.
//
// Every outbound queue is bounded (Config.SendQueueBytes). Push and replies
// never wait for a connection: one whose queue is full is closed with 4000
// (slow consumer), counted in Stats.SlowConsumers, and the others are not
// slowed. A push is framed once per protocol form and the same bytes are
// shared by every recipient: a broadcast costs a few allocations however
// many connections it reaches, and none per recipient. Nearly all of a
// broadcast's time is the kernel's, writing to each connection: the
// writes go to the kernel 64 at a time in one io_uring submission where
// Linux allows it (websocket.Batch; Config.DisableIOURing), which saves
// the cost of entering the kernel once per recipient, and with 1,024 or
// more connections open the broadcast is spread over up to GOMAXPROCS
// goroutines, each walking its share of the registry; a push to a topic
// with 1,024 or more subscribers is split the same way over its
// subscribers. A push to a user is queued on the user's
// connections while the user's delivery lock is held, which is what keeps
// concurrent pushes to one user in sequence order; queueing never blocks.
//
// Connections live in a registry of 64 shards indexed by connection id, by
// user and by topic. Lookups copy the recipients into a pooled slice under
// the shard lock and write to them after unlocking; no I/O and no user code
// runs under a lock. One heartbeat goroutine walks the shards four times
// per Config.PingInterval, spread evenly over the interval, and pings each
// connection that needs it; the engine closes connections that sent
// nothing (not even a pong) for Config.IdleTimeout.
//
// # Heartbeat
//
// PingInterval (30 s) is half the 60 s idle timeout of the most common
// intermediaries (nginx's proxy_read_timeout, AWS ALB and most cloud load
// balancers), and hello tells clients the interval, so that they can
// declare a server dead after two silent ones. A ping serves two purposes:
// the client and every intermediary hear from the server, which any frame
// achieves; and a client that sends nothing else answers with a pong,
// which is what keeps IdleTimeout (which counts only what the client sends)
// from closing it. So the heartbeat skips the ping of a connection that was
// written to (a push, a reply) within the last 7/8 of an interval, and a
// client hears something at least every 9/8 of an interval; but once per
// interval it pings a connection that was not read from within half of
// IdleTimeout, however busy, so that the pong has half the timeout to
// arrive. A client that only receives pushes, more often than the
// interval, is pinged once per half IdleTimeout (every 30 minutes by
// default) instead of every 30 s; a silent or dead one every interval, as
// before. The engine's Conn.Activity supplies both times (two 32-bit
// stamps, no extra memory per connection).
//
// Authenticate runs on the HTTP request's goroutine; OnConnect and
// OnDisconnect run on the engine's executor and must return quickly.
//
// # Sequenced delivery
//
// A push to a user (Target.User or Users) gets the user's next sequence
// number in the user's epoch, 1, 2, 3, …, and is kept in the user's
// history, bounded per user by Config.HistorySize, HistoryBytes and
// HistoryTTL and for all users together by HistoryMemory (the users pushed
// to least recently lose theirs first). An epoch names one numbering of a
// user's sequence: within it no number is handed out twice, and the broker
// starts a new one whenever it cannot prove the numbering continues (state
// expired or evicted, a store that lost data or came back older). Full-form
// clients learn the epoch from hello, receive the sequence in the push
// frame, acknowledge what they handled (UserStatus reports the highest ack
// per user) and, when they reconnect, name the position they hold in the
// handshake (?resume=<epoch>.<seq>): the server replays every retained push
// after it, in order, before any newer push reaches that connection, so a
// client loses nothing across reconnects and sees nothing twice. Pushes it
// should have had that are gone are announced by an error frame (code
// pushes-lost) instead — never silence. A client that names no position
// gets live pushes at once. Simple-form clients get user pushes as plain
// action + payload, without sequence or replay; topic, broadcast and
// connection pushes are unsequenced and framed once for everyone.
//
// How it stays in order: the broker delivers one user's pushes to each
// node in sequence order (or with gaps the connection fills from the
// history), recording each in the history before delivering it. Each
// sequenced connection remembers its epoch and the highest sequence queued
// to it. A connection that replays first switches to buffering, under a
// lock striped by user that deliveries also take, then reads the history,
// then queues the history and the buffer — skipping every sequence it
// already has — and goes live, under the lock again. Frames are only
// queued under that lock and written after it (sequence.go gives the lock
// order).
//
// # Several nodes
//
// Config.Broker is the one seam between the Server and the store that
// numbers, keeps and carries pushes (package broker; its conformance suite
// is package broker/brokertest). Package broker/redis shares pushes,
// epochs, sequences, history, acks and presence between gateway nodes
// through Redis. Any node can then push to any user or topic — every node
// delivers to its own connections — and a client may resume on any node,
// so no sticky sessions are needed. Publish then returns before the nodes
// deliver (Delivered is -1); a push the broker cannot take fails with
// ErrUnavailable and reaches no one; UserStatus and ActionPresence count
// every node's connections. Without a Broker the Server uses the in-memory
// one of package broker/memory.
//
// # Security
//
// Clients authenticate before the upgrade: Config.Authenticate returns the
// Identity (user id and the topics the user may subscribe to) or an error
// that becomes a 401. New refuses a Config with neither Authenticate nor
// InsecureNoAuth, so anonymous access is always a deliberate choice.
// Subscriptions are checked against Identity.Topics (exact names, or
// prefixes ending in "*"); a refused one gets an error reply with code
// forbidden. Any connection may ask the presence (connection count) of any
// user id.
//
// Browsers send an Origin header and let any page open a WebSocket to any
// host, with the user's cookies. /ws therefore accepts only requests without
// Origin (non-browser clients), from the same host, or from an origin in
// Config.AllowedOrigins ("*" accepts all, which is safe only when
// authentication does not rely on cookies).
//
// Limits are on by default: message size (Config.MaxMessageSize, 64 KiB;
// larger closes with 1009), inbound message rate per connection
// (Config.MessageRate; beyond it closes with 4002), handshakes per client IP
// (Config.HandshakeRate), connections (Config.MaxConns), connections of
// one user on a node (Config.MaxConnsPerUser, 1000), subscriptions per
// connection (256), handler goroutines (Config.MaxHandlers, with
// backpressure) and outbound queue bytes (Config.SendQueueBytes). The handshake rate is
// keyed by the TCP peer address, or by the client a trusted proxy names
// (Config.TrustedProxies).
//
// Nothing a peer sends before it has authenticated can make the server
// hold much (Run and Serve; a program that mounts Handler in its own
// http.Server sets these there): request headers are bounded in bytes
// (Config.MaxHeaderBytes, 16 KiB: 431) and time (ReadHeaderTimeout, 10 s),
// whole requests in time (ReadTimeout, 30 s), idle keep-alive connections
// in time (HTTPIdleTimeout, 30 s), and connections that are not yet
// WebSockets in number (MaxPendingConns, 1024, and MaxPendingConnsPerIP,
// 128 from one address: beyond them, 503 before the request is read). /echo, which needs no token, reads messages up to
// EchoMaxMessageSize (64 KiB), replies through the same send queue bound as
// /ws, and all /echo connections together are charged at most EchoMemory
// (64 MiB: beyond it, 503). When the process runs out of file descriptors,
// new connections get 503 (through a descriptor kept in reserve) instead of
// a 101 followed by a close; established connections keep being served,
// and the refusals are logged once per 10 s. Every refused handshake is
// counted in Stats.Handshakes and logged through Config.Logger with its
// reason and client address, at most a few lines a second (the count of
// lines held back goes into the next one); so is every request net/http
// refuses before a handler sees it (431, 400, header and body timeouts:
// Stats.HTTPRejected).
//
// # Close codes
//
// The gateway closes connections with these codes (wire.CloseCode holds the
// full table and the reconnect rule every client SDK obeys: 4000–4499
// reconnect with backoff, 4500–4999 stop):
//
//	1000  the answer to a client's own 1000
//	1001  going away: Shutdown without a drain period
//	1002  protocol error: malformed full-form binary frame, a frame only a
//	      server sends, a resume that is not the first frame
//	1009  message larger than MaxMessageSize
//	1012  service restart: a shared Broker lost its state; sequenced
//	      connections are closed so that their clients resume
//	4000  slow consumer: the send queue overflowed, or a replay could not
//	      keep up with the pushes arriving meanwhile
//	4001  idle timeout: nothing (not even a pong) within IdleTimeout
//	4002  rate limited: more than MessageRate messages per second
//	4003  draining: Shutdown with a DrainPeriod
//	4004  token expired: Identity.Expires passed without a refresh frame
//	4500  unauthorized: a browser's upgrade (Origin header) failed
//	      Authenticate; the reason says why (others get HTTP 401)
//	any   the code given to Disconnect (e.g. 4503 replaced)
//
// OnDisconnect receives the code of the close handshake, or 1006 when the
// connection dropped without one.
//
// # Memory
//
// A gateway holds hundreds of thousands of mostly idle connections, so the
// per-connection state is small: a session (the counter of its id, which
// is written out only when asked for, user and topic allow-list, its first
// subscription inline, an 8-byte token bucket, flags, the sequence last
// sent; 128 bytes), its user id, one subscription and its registry entries
// take about 190 bytes (TestSessionMemory) besides the engine's 192-byte
// connection, and
// the memory broker keeps about 30 bytes for a connected user nobody has
// pushed to (broker/memory TestPresentMemory), with no goroutine, timer,
// map or channel per connection — and no goroutine per request, so a
// burst of requests leaves none behind. Buffers are pooled and held only
// while a message is being handled or queued. bench/peer/run.sh measures
// the whole process at about 1.3 KiB of RSS per idle connection (18,000
// connections, each with a token and a subscription; bench/run.sh, anonymous
// ones, about 1.1 KiB): about 0.5 KiB of live heap, the rest being the
// garbage net/http leaves per handshake, which the collector lets
// accumulate up to the live heap's size under GOGC=100 (docs/DEPLOYMENT.md,
// "Memory").
// Users nobody pushed to recently have no history; a sequenced connection
// has a push buffer only while it waits for or runs a replay.
package wsgate
