package websocket

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// StatusCode is a close status code (RFC 6455 §7.4). Codes 3000-3999 are
// registered with IANA by libraries and frameworks; 4000-4999 are private to
// applications.
type StatusCode int

// Close status codes defined by RFC 6455 §7.4.1.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusRcvd            StatusCode = 1005 // never sent: a close frame without a body
	StatusAbnormalClosure         StatusCode = 1006 // never sent: the connection dropped without a close frame
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
	StatusTLSHandshake            StatusCode = 1015 // never sent: the TLS handshake failed
)

// String returns the lowercase name of a registered code, or "StatusCode(n)".
func (c StatusCode) String() string {
	switch c {
	case StatusNormalClosure:
		return "normal closure"
	case StatusGoingAway:
		return "going away"
	case StatusProtocolError:
		return "protocol error"
	case StatusUnsupportedData:
		return "unsupported data"
	case StatusNoStatusRcvd:
		return "no status received"
	case StatusAbnormalClosure:
		return "abnormal closure"
	case StatusInvalidFramePayloadData:
		return "invalid frame payload data"
	case StatusPolicyViolation:
		return "policy violation"
	case StatusMessageTooBig:
		return "message too big"
	case StatusMandatoryExtension:
		return "mandatory extension"
	case StatusInternalError:
		return "internal error"
	case StatusServiceRestart:
		return "service restart"
	case StatusTryAgainLater:
		return "try again later"
	case 1014:
		return "bad gateway"
	case StatusTLSHandshake:
		return "TLS handshake"
	}
	return "StatusCode(" + strconv.Itoa(int(c)) + ")"
}

// CloseError is a close frame, received from the peer or sent by us. The
// parser also returns it for protocol violations: Code is then the code to
// send in our close frame.
type CloseError struct {
	// Code is the close frame's status code; 1005 for a close frame
	// without one.
	Code StatusCode
	// Reason is the close frame's UTF-8 text, at most 123 bytes; often
	// empty.
	Reason string
}

// Error returns "websocket: close 1000 (normal closure): reason".
func (e *CloseError) Error() string {
	s := "websocket: close " + strconv.Itoa(int(e.Code)) + " (" + e.Code.String() + ")"
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// CloseStatus returns the code of the *CloseError in err's chain, or -1 when
// there is none (the connection ended without a close handshake).
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// ErrWriteQueueFull is returned by Conn.WriteMessage and Conn.WritePrepared
// when the connection's bounded write queue cannot take the frame.
var ErrWriteQueueFull = errors.New("websocket: write queue full")

// ErrReadNotSupported is returned by Conn.Read on a connection whose messages
// are delivered to a Handler.
var ErrReadNotSupported = errors.New("websocket: Read not supported on a connection with a Handler")

// maxCloseReason is the longest reason that fits a control frame (125 bytes)
// after the 2-byte code.
const maxCloseReason = 123

// validCloseCode reports whether code may appear in a close frame on the
// wire. 1004 is reserved, 1005/1006/1015 are local-only, 1016-2999 are
// unassigned or reserved for future RFCs, 3000-4999 belong to libraries and
// applications.
func validCloseCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// closePayload builds a close frame body. A code that may not be sent
// (1005, 1006, 1015, out of range) yields an empty body, which the peer
// reads as 1005. The reason is made valid UTF-8 (a peer fails the
// connection with 1007 otherwise) and cut on a rune boundary to fit.
func closePayload(code StatusCode, reason string) []byte {
	if !validCloseCode(code) {
		return nil
	}
	if !utf8.ValidString(reason) {
		reason = strings.ToValidUTF8(reason, "\uFFFD")
	}
	if len(reason) > maxCloseReason {
		n := maxCloseReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, uint16(code))
	return append(b, reason...)
}

// parseClosePayload validates a received close frame body (RFC 6455 §5.5.1,
// §7.4): empty means 1005; one byte, or a code that may not be sent, is a
// protocol error (1002); a reason that is not UTF-8 is 1007.
func parseClosePayload(p []byte) (StatusCode, string, error) {
	switch len(p) {
	case 0:
		return StatusNoStatusRcvd, "", nil
	case 1:
		return 0, "", protocolError("close frame with a 1-byte body")
	}
	code := StatusCode(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, "", protocolError("invalid close code " + strconv.Itoa(int(code)))
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", &CloseError{Code: StatusInvalidFramePayloadData, Reason: "invalid UTF-8 in close reason"}
	}
	return code, string(p[2:]), nil
}

// protocolError is the error feed returns for a framing violation (1002).
func protocolError(reason string) *CloseError {
	return &CloseError{Code: StatusProtocolError, Reason: reason}
}
