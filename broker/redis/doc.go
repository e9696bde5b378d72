// Package redisbroker is a wsgate.Broker that shares pushes, per-user
// sequences and history, acknowledgements and presence between gateway
// nodes through one Redis server, so that any node can push to any user or
// topic and a client can reconnect to any node — no sticky sessions — and
// still get every push it missed, exactly once and in order.
//
//	b, err := redisbroker.New(redisbroker.Options{URL: "redis://10.0.0.5:6379/0"})
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
// user runs one Lua script that increments the user's sequence, appends the
// push to the user's history stream (trimmed to HistorySize entries and
// HistoryTTL) and publishes it: Redis runs scripts one at a time, so the
// order of the channel is the order of the sequence, and a push is in the
// history before any node can deliver it. A resuming client reads the
// stream (XRANGE) on whichever node it reached. Keys:
//
//	<prefix>:u:{<user>}        hash: seq (last sequence), ack (highest acknowledged)
//	<prefix>:u:{<user>}:log    stream: one entry per retained push
//	<prefix>:node:<id>         hash: this node's connections per user
//	<prefix>:nodes             sorted set: node ids by expiry of their presence
//	<prefix>:epoch             random value that tells a restarted Redis apart
//
// The braces put a user's keys in one Redis Cluster slot; the package itself
// talks to a single Redis server (or a proxy in front of a cluster).
//
// Acknowledgements and presence are written in batches every FlushInterval,
// since they are reported where nothing may wait for the network. A node's
// presence hash expires three flush intervals after its last write, so the
// connections of a crashed node stop counting by themselves.
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
// exponential backoff. Pushes published by other nodes while this node's
// subscription was down are not delivered live; sequenced ones are found by
// the next push to the same user (the connection sees the gap and fetches
// the history) or by the client's next resume. If Redis comes back empty —
// restarted without persistence — the sequences begin again, so the
// subscriber, which recognises the new Redis by its epoch key, has the
// Server close its sequenced connections with 1012; their clients resume
// and the resume raises each user's sequence above what the client holds.
// Run Redis with appendonly yes if that should not happen.
//
// # Memory
//
// Redis holds, per user pushed to, a small hash for StateTTL (30 days)
// after the last push, ack or resume, and at most HistorySize pushes for at
// most HistoryTTL. The per-user and global byte bounds of the in-memory
// broker do not apply: bound the payloads with the push API's limit and
// Redis itself with maxmemory (volatile-ttl keeps the newest state). Each
// node also keeps its connected users and their connection counts (a map
// entry per connected user) to rewrite its presence after Redis restarts.
package redisbroker
