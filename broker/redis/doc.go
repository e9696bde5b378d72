// Package redis is a broker.Broker that shares pushes, per-user epochs,
// sequences and history, acknowledgements and presence between gateway
// nodes through one Redis server, so that any node can push to any user or
// topic and a client can reconnect to any node — no sticky sessions — and
// still get every push it missed, exactly once and in order, or be told
// what is lost.
//
//	b, err := redis.New(redis.Options{URL: "redis://10.0.0.5:6379/0"})
//	if err != nil { ... }
//	defer b.Close()
//	srv, err := wsgate.New(wsgate.Config{Authenticate: verify, Broker: b})
//
// It lives in its own package so that programs without Redis do not link
// a Redis client.
//
// # How it works
//
// Every push goes through one pub/sub channel, "<prefix>:push", which every
// node subscribes to and delivers from to its own connections. A push to a
// user runs one Lua script that numbers it in the user's epoch, appends it
// to the user's history stream (trimmed by count, bytes and age) and
// publishes it: Redis runs scripts one at a time, so the order of the
// channel is the order of the sequence, and a push is in the history before
// any node can deliver it. A resuming client reads the stream (XRANGE) on
// whichever node it reached. Keys:
//
//	<prefix>:meta              hash: gen (store generation), wm (write mark: pushes so far)
//	<prefix>:u:{<user>}        hash: ep (epoch), g (its generation), seq, ack, b (bytes retained)
//	<prefix>:u:{<user>}:log    stream: one entry per retained push, ids from the publisher's clock
//	<prefix>:node:<id>         hash: this node's connections per user
//	<prefix>:nodes             sorted set: node ids by expiry of their presence
//
// The braces put a user's keys in one Redis Cluster slot, but every push
// also touches the meta hash: the package talks to a single Redis server
// (with replicas and failover if you like).
//
// # A store that comes back older
//
// Every node remembers the highest write mark it has seen (from its own
// scripts, from every channel message, and from a check every
// FlushInterval). Each script first compares the store's mark with the
// caller's: a store whose mark is lower came back from an older snapshot,
// or failed over to a lagging replica, and one without a generation lost
// its data. Either way the script starts a new generation, and every user
// gets a new epoch at its next use, before any number is handed out again.
// Connections holding an old epoch are closed with 1012 when their user's
// next push arrives; their clients resume and are told what is lost. A
// store that came back older than every node still running knows (all
// nodes restarted with it) is caught one step later, user by user: the
// first client that resumes holding more of its epoch than the store, or
// the first connection sent a sequence it already had, proves the store
// older, and the user gets a new epoch, so that each of the user's clients
// is told. What cannot be caught: pushes numbered again before any such
// proof, to a client whose position the store has passed by then, or that
// was behind the snapshot anyway; they reach that client as if nothing
// happened and the originals they replace are lost silently. Run Redis with
// persistence (appendonly, appendfsync everysec) or failover to a replica
// that is in sync if that matters.
//
// # Lifecycle and failures
//
// New connects to nothing and starts nothing. The Server calls Run with its
// first connection and cancels it at Shutdown; Run owns the subscriber and
// the flusher and waits for both. Close releases the Redis connections once
// the Server has shut down.
//
// While Redis is unreachable, pushes fail at once (wsgate.ErrUnavailable,
// HTTP 503 from the push API), open WebSocket connections stay up and keep
// serving requests, acknowledgements and presence changes wait in memory
// (one entry per user), and the subscriber reconnects with jittered
// exponential backoff. Once subscribed again, and before it handles the
// channel, a node fetches from the history the sequenced pushes its
// connected users missed meanwhile (from the newest position it delivered
// to each) and delivers them in order; channel copies of them are then
// dropped. Unsequenced pushes (topics, broadcasts) made meanwhile are not
// recovered: they are at most once by design. A Redis that comes back
// empty or older is handled as above. A new connection whose user's
// position cannot be read is closed with 1013 (try again later).
//
// # Memory
//
// Redis holds, per user connected or pushed to, a small hash for StateTTL
// (30 days) after the last push, ack or connection, and at most
// HistorySize pushes and HistoryBytes payload bytes for at most HistoryTTL
// (24 hours) per user. Bound Redis as a whole with maxmemory and the
// volatile-lru policy: every key of this package but the meta hash has a
// TTL, and a user whose keys are evicted gets a new epoch, so eviction is
// reported to clients as lost pushes, never silent. Each node also keeps
// its connected users and their connection counts (a map entry per
// connected user) to rewrite its presence after Redis restarts.
package redis
