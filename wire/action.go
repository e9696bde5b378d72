package wire

import (
	"math"
	"strconv"
)

// Action names what a request asks for and what a push carries. Actions
// 1–99 are wsgate system actions handled by the gateway itself;
// applications use MinAppAction–0x7FFFFFFF. Action 0 is never valid, and
// the high bit is never set in an application code because the simple form
// uses it to mark error replies (see SimpleErrorBit).
type Action uint32

const (
	// ActionSubscribe subscribes the connection to a topic.
	// Request payload: the topic, 1–MaxTopicLen bytes of UTF-8.
	// Reply payload: empty. Subscribing twice is not an error.
	// Errors: CodeBadRequest (invalid topic), CodeForbidden,
	// CodeLimitExceeded (too many subscriptions).
	ActionSubscribe Action = 1

	// ActionUnsubscribe removes a subscription.
	// Request payload: the topic, UTF-8. Reply payload: empty.
	// Errors: CodeNotSubscribed.
	ActionUnsubscribe Action = 2

	// ActionPresence asks how many live connections a user has.
	// Request payload: the user id, UTF-8.
	// Reply payload: uint32 big-endian connection count (0 = offline).
	// Errors: CodeForbidden when the application does not allow the query.
	ActionPresence Action = 3

	// ActionPing is an application-level heartbeat for clients that cannot
	// see WebSocket pings (browsers).
	// Request payload: any bytes. Reply payload: the same bytes.
	ActionPing Action = 4

	// MaxSystemAction is the highest action reserved for wsgate.
	MaxSystemAction Action = 99

	// MinAppAction is the lowest action available to applications.
	MinAppAction Action = 100

	// SimpleErrorBit is set on the action of a simple-form error reply:
	// the reply to action A failing is A|SimpleErrorBit followed by a UTF-8
	// message. A simple-form message too short to carry an action is
	// answered with action SimpleErrorBit itself (A = 0).
	SimpleErrorBit Action = 1 << 31
)

// MaxTopicLen is the longest topic, in bytes, a server must accept.
const MaxTopicLen = 255

// ErrorCode classifies a failed request in an error frame. Codes 1–999 are
// reserved for wsgate; applications use MinAppCode and above. Code 0 is
// never sent.
type ErrorCode uint16

const (
	CodeUnknownAction ErrorCode = 1  // no handler for the action
	CodeBadRequest    ErrorCode = 2  // the payload is malformed or invalid
	CodeForbidden     ErrorCode = 3  // the user may not do this
	CodeInternal      ErrorCode = 4  // the server failed; details are logged, not sent
	CodeUnavailable   ErrorCode = 5  // the backend that serves the action is unreachable
	CodeTimeout       ErrorCode = 6  // the handler or backend did not answer in time
	CodeRateLimited   ErrorCode = 7  // too many requests; the request was dropped
	CodeTooLarge      ErrorCode = 8  // payload or reply exceeds an application limit
	CodeNotSubscribed ErrorCode = 9  // unsubscribe from a topic the connection is not in
	CodeLimitExceeded ErrorCode = 10 // a per-connection limit (subscriptions, in-flight requests)
	CodePushesLost    ErrorCode = 11 // sequenced pushes the client asked for are gone; sent with id 0 after a resume
	CodeTokenExpiring ErrorCode = 12 // id 0: the connection's token expires soon; answer with a refresh frame

	// MinAppCode is the lowest error code available to applications.
	MinAppCode ErrorCode = 1000
)

// String returns a short lowercase name, used in logs and Error messages.
func (c ErrorCode) String() string {
	switch c {
	case CodeUnknownAction:
		return "unknown action"
	case CodeBadRequest:
		return "bad request"
	case CodeForbidden:
		return "forbidden"
	case CodeInternal:
		return "internal error"
	case CodeUnavailable:
		return "backend unavailable"
	case CodeTimeout:
		return "timeout"
	case CodeRateLimited:
		return "rate limited"
	case CodeTooLarge:
		return "too large"
	case CodeNotSubscribed:
		return "not subscribed"
	case CodeLimitExceeded:
		return "limit exceeded"
	case CodePushesLost:
		return "pushes lost"
	case CodeTokenExpiring:
		return "token expiring"
	}
	if c >= MinAppCode {
		return "application error " + strconv.Itoa(int(c))
	}
	return "error " + strconv.Itoa(int(c))
}

// Error is a failed request as carried by an error frame. Server handlers
// return it to choose the code and message sent to the client; the Go
// client returns it from a request that got an error frame. Match it with
// errors.As.
type Error struct {
	Code    ErrorCode
	Message string
}

// Error formats the message and the code name, e.g.
// "wsgate: unknown action 999 (unknown action)".
func (e *Error) Error() string {
	if e.Message == "" {
		return "wsgate: " + e.Code.String()
	}
	return "wsgate: " + e.Message + " (" + e.Code.String() + ")"
}

// IsApp reports whether a is in the range applications may use: at least
// MinAppAction and without SimpleErrorBit, which marks simple-form errors.
func (a Action) IsApp() bool { return a >= MinAppAction && a&SimpleErrorBit == 0 }

// AppendPresenceReply appends the reply payload of ActionPresence: conns as
// a uint32 big-endian count, capped at the largest uint32.
func AppendPresenceReply(dst []byte, conns int) []byte {
	return be.AppendUint32(dst, uint32(min(max(conns, 0), math.MaxUint32)))
}
