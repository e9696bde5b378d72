// Package client is the Go SDK for wsgate: one long-lived WebSocket to a
// wsgate server that sends requests, receives pushes and reconnects by
// itself. It speaks the full protocol form (subprotocol wsgate.v1, see
// docs/PROTOCOL.md and package wire) and imports neither the server nor any
// broker.
//
// # Lifecycle
//
// Dial opens the first connection and waits for the server's hello; its
// error is final (bad URL, refused token, unreachable server), so a program
// learns about misconfiguration at once. From then on the client keeps a
// connection open: when one ends it reconnects with the protocol's backoff
// (wire.Backoff: exponential with jitter, reset after a connection that
// lasted Backoff.Max) and names the position it holds (epoch and sequence)
// in the new connection's URL, so that the server replays the user's
// sequenced pushes it missed before anything newer, and subscribes again to
// the topics of Subscribe. Close ends it for good. When pushes it should
// have had are gone, Options.OnPushesLost is told. A program that restarts
// keeps Client.Position and passes it back in Options.Resume to get what
// it missed meanwhile.
//
// States move Connecting → Connected ⇄ Reconnecting → Closed and are
// reported to Options.OnStateChange. Reconnecting stops, and the state
// becomes Closed, when the server closes with a terminal code (1008 and
// 4500–4999, wire.CloseCode.Reconnect), when a reconnect handshake is
// refused with HTTP 401 or 403, or with Options.DisableReconnect.
//
// # Requests
//
// Request sends an action with a payload and waits for the reply. Replies
// are matched by request id, so any number of goroutines may call Request at
// once (up to Options.MaxInflight in flight). An error frame comes back as
// *Error (= wire.Error) with its wire.ErrorCode. Requests are never resent:
// while reconnecting, and for requests in flight when a connection drops,
// Request returns an error wrapping ErrNotConnected, and the caller decides
// whether repeating is safe. Replies that arrive for an older connection
// (generation) than the request's are dropped.
//
// # Pushes and callbacks
//
// OnPush and OnStateChange run on one goroutine owned by the client, in the
// order the events happened. They must return quickly: pushes wait for them
// in a bounded queue (Options.PushQueue), and when it is full the client
// stops reading until there is room. Sequenced pushes (those addressed to a
// user) are deduplicated by sequence and acknowledged after OnPush returns;
// after a reconnect the server replays the ones the client missed, in
// order, before newer ones. A gap in the sequence, or a "pushes lost"
// notice from the server (logged), means pushes were lost for good: the
// server no longer retained them.
// Close must not be called from a callback, because it waits for the
// callback goroutine.
//
// # Liveness
//
// The server announces a heartbeat in hello. After a heartbeat without any
// message the client sends a ping request (wire.ActionPing); if a second
// heartbeat passes in silence it closes the connection with 4001 and
// reconnects.
//
// # Security
//
// Options.Token is sent as an "Authorization: Bearer" header on every
// connect. Use wss:// outside loopback: the token and every message travel
// in the clear over ws://.
package client
