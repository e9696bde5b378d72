package wsgate

import "sync/atomic"

// Stats is a snapshot of a Server's gauges and counters. Counters only grow
// over the Server's lifetime.
type Stats struct {
	Conns     int `json:"conns"`      // open /ws connections
	EchoConns int `json:"echo_conns"` // open /echo connections
	Users     int `json:"users"`      // distinct users with at least one open connection
	Topics    int `json:"topics"`     // topics with at least one subscriber

	Accepted      uint64 `json:"accepted"`       // /ws connections accepted since start
	Requests      uint64 `json:"requests"`       // client messages dispatched to an action
	HandlerErrors uint64 `json:"handler_errors"` // handler calls that returned a non-ReplyError error
	Pushes        uint64 `json:"pushes"`         // messages framed for this node's connections (a push to several users counts once per user)
	Delivered     uint64 `json:"delivered"`      // push deliveries queued on a connection
	SlowConsumers uint64 `json:"slow_consumers"` // connections closed with 4000 because their send queue was full
	RateLimited   uint64 `json:"rate_limited"`   // connections closed with 4002 for exceeding MessageRate
	Resumed       uint64 `json:"resumed"`        // connections that resumed from a position
	Replayed      uint64 `json:"replayed"`       // sequenced pushes sent again from the history
	Lost          uint64 `json:"lost"`           // "pushes lost" notices sent: pushes a client lacks are not retained
	Restarted     uint64 `json:"restarted"`      // connections closed with 1012 because their user's sequence moved to a new epoch
	Panics        uint64 `json:"panics"`         // recovered panics, each logged with its stack: in handlers, and in the engine callbacks (connection open/message/close code, OnConnect, OnDisconnect)

	Rejected HandshakeRejections `json:"rejected"` // refused /ws and /echo handshakes, by reason
	// HTTPRejected counts connections and requests refused before any
	// handler saw them (by the listener, or answered by net/http itself).
	HTTPRejected HTTPRejections `json:"http_rejected"`

	// Breakdowns for metrics exporters (observe.go); every label set is
	// small and fixed.
	Protocols  ProtocolConns  `json:"protocols"`  // open /ws connections by protocol form
	Closes     []CloseCount   `json:"closes"`     // /ws connections closed, by close code
	Actions    []ActionStats  `json:"actions"`    // requests and handler latency by action
	PushKinds  PushKinds      `json:"push_kinds"` // Pushes and Delivered by target kind, with latency
	Broker     BrokerOps      `json:"broker"`     // calls to the Broker: latency and errors by operation
	Handshakes HandshakeStats `json:"handshakes"` // /ws and /echo upgrade requests by outcome
}

// HandshakeStats counts upgrade requests by outcome.
type HandshakeStats struct {
	Accepted     uint64 `json:"accepted"`     // 101
	BadRequest   uint64 `json:"bad_request"`  // 400 (and 405/426/505 from the engine)
	Unauthorized uint64 `json:"unauthorized"` // 401
	Forbidden    uint64 `json:"forbidden"`    // 403
	RateLimited  uint64 `json:"rate_limited"` // 429: HandshakeRate or MaxConnsPerUser
	Unavailable  uint64 `json:"unavailable"`  // 503
}

// HandshakeRejections counts refused handshakes by reason.
type HandshakeRejections struct {
	RateLimited  uint64 `json:"rate_limited"` // 429: HandshakeRate exceeded
	Overloaded   uint64 `json:"overloaded"`   // 503: MaxConns reached or shutting down
	UserLimit    uint64 `json:"user_limit"`   // 429: MaxConnsPerUser reached for the user
	Origin       uint64 `json:"origin"`       // 403: origin not allowed
	Unauthorized uint64 `json:"unauthorized"` // 401: Authenticate failed
	Invalid      uint64 `json:"invalid"`      // the WebSocket handshake itself failed (400, 426, ...)
}

// HTTPRejections counts connections and requests refused before any
// handler saw them, by reason. The first three were answered 503 before
// the request was read, and are also in Handshakes.Unavailable. Over TLS
// only those three are counted.
type HTTPRejections struct {
	PendingLimit    uint64 `json:"pending_limit"`     // 503: MaxPendingConns reached
	PerIPLimit      uint64 `json:"per_ip_limit"`      // 503: MaxPendingConnsPerIP reached for the peer's address
	OutOfFiles      uint64 `json:"out_of_files"`      // 503: the process was out of file descriptors
	HeadersTooLarge uint64 `json:"headers_too_large"` // 431: request line and headers beyond MaxHeaderBytes
	BadRequest      uint64 `json:"bad_request"`       // 400 (or 501, 505) from net/http: a malformed request
	HeaderTimeout   uint64 `json:"header_timeout"`    // closed: headers not read within ReadHeaderTimeout
	BodyTimeout     uint64 `json:"body_timeout"`      // a request body not read within ReadTimeout (by its handler, or by net/http discarding it after)
	// IdleClosed is not a rejection: keep-alive connections closed after
	// HTTPIdleTimeout without a further request. Counted, not logged.
	IdleClosed uint64 `json:"idle_closed"`
}

// counters holds the Server's atomic counters; Stats copies them.
type counters struct {
	accepted, requests, handlerErrors        atomic.Uint64
	pushes, delivered, slowConsumers         atomic.Uint64
	rateLimited                              atomic.Uint64
	resumed, replayed, lost, epochRestarts   atomic.Uint64
	rejRate, rejOverload, rejOrigin, rejAuth atomic.Uint64
	rejInvalid, rejUser                      atomic.Uint64
	panics                                   atomic.Uint64 // handler panics; the engines count their own
	open                                     atomic.Int64  // /ws and /echo connections, including those mid-handshake (MaxConns)
	echoConns                                atomic.Int64  // open /echo connections
	echoHeld                                 atomic.Int64  // /echo connections charged to EchoMemory, including those mid-handshake
	hs                                       handshakeCounters
	http                                     httpCounters
}

// Stats returns the current gauges and counters. Users and Topics are
// counted under the registry's shard locks, one shard at a time, so the
// figures are consistent per shard, not globally.
func (s *Server) Stats() Stats {
	conns, users, topics := s.reg.counts()
	c := &s.ctr
	st := Stats{
		Conns:         conns,
		EchoConns:     int(c.echoConns.Load()),
		Users:         users,
		Topics:        topics,
		Accepted:      c.accepted.Load(),
		Requests:      c.requests.Load(),
		HandlerErrors: c.handlerErrors.Load(),
		Pushes:        c.pushes.Load(),
		Delivered:     c.delivered.Load(),
		SlowConsumers: c.slowConsumers.Load(),
		RateLimited:   c.rateLimited.Load(),
		Resumed:       c.resumed.Load(),
		Replayed:      c.replayed.Load(),
		Lost:          c.lost.Load(),
		Restarted:     c.epochRestarts.Load(),
		Panics:        c.panics.Load() + s.enginePanics(),
		Rejected: HandshakeRejections{
			RateLimited:  c.rejRate.Load(),
			Overloaded:   c.rejOverload.Load(),
			UserLimit:    c.rejUser.Load(),
			Origin:       c.rejOrigin.Load(),
			Unauthorized: c.rejAuth.Load(),
			Invalid:      c.rejInvalid.Load(),
		},
		Handshakes:   c.hs.stats(),
		HTTPRejected: c.http.stats(),
	}
	s.obs.snapshotInto(&st)
	return st
}

// enginePanics sums the panics the WebSocket engines recovered.
func (s *Server) enginePanics() uint64 {
	n := s.ws.Panics()
	if s.echo != nil {
		n += s.echo.Panics()
	}
	return n
}
