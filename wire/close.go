package wire

import (
	"math"
	"strconv"
	"time"
)

// CloseCode is the status code of a WebSocket close frame. Every wsgate
// client obeys one rule, Reconnect and Backoff below: 4000–4499 and the
// transient standard codes mean "reconnect with backoff", 4500–4999,
// 1008 and a close the client asked for mean "stop".
type CloseCode uint16

// Standard codes (RFC 6455 §7.4.1 and the IANA registry).
const (
	CloseNormal          CloseCode = 1000 // orderly close; the server sends 4503 to end a session for good
	CloseGoingAway       CloseCode = 1001 // server shutting down or browser leaving the page
	CloseProtocolError   CloseCode = 1002 // malformed binary frame, unknown frame type, frame in the wrong direction
	CloseUnsupportedData CloseCode = 1003 // a message kind the endpoint does not accept
	CloseNoStatus        CloseCode = 1005 // never sent: the close frame had no code
	CloseAbnormal        CloseCode = 1006 // never sent: the connection dropped without a close frame
	CloseInvalidPayload  CloseCode = 1007 // text message that is not UTF-8
	ClosePolicyViolation CloseCode = 1008 // generic refusal; terminal
	CloseMessageTooBig   CloseCode = 1009 // message larger than hello's MaxMessage
	CloseInternalError   CloseCode = 1011 // server bug
	CloseServiceRestart  CloseCode = 1012 // server restarting
	CloseTryAgainLater   CloseCode = 1013 // server overloaded
)

// Application codes. 4000–4499: reconnect with backoff. 4500–4999: terminal.
const (
	CloseSlowConsumer       CloseCode = 4000 // the connection's outbound queue overflowed
	CloseIdleTimeout        CloseCode = 4001 // no pong or message within the heartbeat deadline
	CloseRateLimited        CloseCode = 4002 // the client kept sending above its inbound rate
	CloseDraining           CloseCode = 4003 // this server is draining; reconnect elsewhere at once
	CloseTokenExpired       CloseCode = 4004 // the token expired and no refresh frame renewed it; reconnect with a fresh token
	CloseUnauthorized       CloseCode = 4500 // token missing, invalid or expired (sent to browsers instead of HTTP 401)
	CloseForbidden          CloseCode = 4501 // authenticated but not allowed to connect
	CloseUnsupportedVersion CloseCode = 4502 // the client speaks a protocol this server does not
	CloseReplaced           CloseCode = 4503 // kicked or replaced by the application
)

// Reconnect reports whether a client should open a new connection after
// the server closed with c. Only 1008 and 4500–4999 say no; unknown codes
// say yes, so that a proxy's odd code never strands a client.
func (c CloseCode) Reconnect() bool {
	return c != ClosePolicyViolation && (c < 4500 || c > 4999)
}

// Backoff reports whether the reconnect counts as a failed attempt: wait
// Backoff.Delay(attempt) and then increment attempt. It is false for
// CloseDraining, where the client waits Delay(0) and leaves attempt
// unchanged, because the server asked it to move and nothing failed.
func (c CloseCode) Backoff() bool {
	return c.Reconnect() && c != CloseDraining
}

// String returns a short name, e.g. "slow consumer" or "close 4123".
func (c CloseCode) String() string {
	switch c {
	case CloseNormal:
		return "normal"
	case CloseGoingAway:
		return "going away"
	case CloseProtocolError:
		return "protocol error"
	case CloseUnsupportedData:
		return "unsupported data"
	case CloseNoStatus:
		return "no status"
	case CloseAbnormal:
		return "abnormal closure"
	case CloseInvalidPayload:
		return "invalid payload"
	case ClosePolicyViolation:
		return "policy violation"
	case CloseMessageTooBig:
		return "message too big"
	case CloseInternalError:
		return "internal error"
	case CloseServiceRestart:
		return "service restart"
	case CloseTryAgainLater:
		return "try again later"
	}
	return c.appString()
}

func (c CloseCode) appString() string {
	switch c {
	case CloseSlowConsumer:
		return "slow consumer"
	case CloseIdleTimeout:
		return "idle timeout"
	case CloseRateLimited:
		return "rate limited"
	case CloseDraining:
		return "server draining"
	case CloseTokenExpired:
		return "token expired"
	case CloseUnauthorized:
		return "unauthorized"
	case CloseForbidden:
		return "forbidden"
	case CloseUnsupportedVersion:
		return "unsupported protocol version"
	case CloseReplaced:
		return "replaced"
	}
	return "close " + strconv.Itoa(int(c))
}

// Backoff is the reconnect delay schedule shared by every client SDK:
// "equal jitter" exponential backoff. The zero value is the protocol's
// default.
type Backoff struct {
	Base time.Duration // delay cap of attempt 0; default 500ms
	Max  time.Duration // largest cap; default 30s
}

// Delay returns how long to wait before reconnect attempt number attempt
// (0-based), given random drawn uniformly from [0, 1):
//
//	cap   = min(Max, Base·2^attempt)
//	delay = floor(cap/2 + random·cap/2) milliseconds
//
// Half the cap is fixed so that a fleet of clients dropped together cannot
// come back at once; the other half spreads them. The JS client computes
// the same float64 expression in milliseconds, so both agree to the
// millisecond. The attempt counter resets when a connection that received
// hello closes after staying up at least Max.
func (b Backoff) Delay(attempt int, random float64) time.Duration {
	base, limit := b.Base, b.Max
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if limit <= 0 {
		limit = 30 * time.Second
	}
	attempt = min(max(attempt, 0), 62)
	if !(random >= 0) { // also catches NaN
		random = 0
	}
	random = min(random, 1)
	ms := float64(time.Millisecond)
	capMs := min(math.Ldexp(float64(base)/ms, attempt), float64(limit)/ms)
	return time.Duration(math.Floor(capMs/2+random*capMs/2)) * time.Millisecond
}
