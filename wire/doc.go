// Package wire is the wsgate message protocol: every byte layout the
// gateway, the Go client and the JavaScript client exchange over a
// WebSocket, and nothing else. It uses only the standard library, does no
// I/O and keeps no state, so third-party clients and servers can build on
// it too. docs/PROTOCOL.md is the same specification in prose; the golden
// vectors in testdata/ are checked by this package's tests and by the JS
// client's tests.
//
// # Three forms
//
// A client that negotiates no subprotocol speaks the simple form: each
// binary message is a big-endian uint32 Action followed by the payload
// (AppendSimple, DecodeSimple). A reply repeats the action; an error reply
// sets SimpleErrorBit in it (AppendSimpleError). The 16-byte message
// 00 00 00 6e e6 88 91 e4 bb ac e9 83 bd e5 a5 bd is action 110 with the
// payload "我们都好".
//
// A client that negotiates Subprotocol ("wsgate.v1") speaks the full form:
// each binary message is a Frame whose first byte is its FrameType —
// request, reply, error, push, ack, hello, resume (AppendFrame,
// DecodeFrame). It adds request ids, error codes, per-user sequence
// numbers for at-least-once delivery, and resumption after a reconnect.
//
// Text messages in either form carry the JSON form of the same frames, for
// people and debugging tools (AppendJSON, DecodeJSON, and Frame's
// MarshalJSON and UnmarshalJSON). A client that negotiates SubprotocolJSON
// receives hello and pushes as JSON text as well.
//
// # Decoding
//
// DecodeFrame and DecodeSimple never allocate and never panic; the
// payloads they return alias the input, so copy them before reusing the
// read buffer. They check that every length field fits the message but do
// not limit sizes: that is the WebSocket read limit's job, advertised to
// clients in hello's MaxMessage. AppendFrame and AppendSimple append to a
// caller's buffer and do not allocate when it has room, so a server can
// encode a broadcast once and share the bytes.
//
// # Close codes
//
// CloseCode lists the codes the gateway closes connections with. One rule,
// CloseCode.Reconnect and CloseCode.Backoff, tells every client SDK whether
// to reconnect: 4000–4499 reconnect with backoff, 4500–4999 are terminal.
// Backoff.Delay is the shared jittered exponential schedule.
//
// # Concurrency
//
// All functions are safe for concurrent use; a Frame is not, like any
// struct.
package wire
