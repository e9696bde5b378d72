package wsgate

import (
	"bytes"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// Token lifetime on an open connection (docs/PROTOCOL.md, token refresh).
// Identity.Expires gives a connection a deadline. The heartbeat, which
// visits every connection once per PingInterval, warns a full-form client
// with an id-0 error CodeTokenExpiring once less than two intervals are
// left, and closes the connection with CloseTokenExpired at the first
// visit after the deadline that follows the warning: no timer per
// connection, about one PingInterval late, and a client always has at
// least one interval between warning and close to refresh, even when a
// loaded machine delays the visits. A refresh frame carrying a newer token of the same
// user moves the deadline.

const closeTokenExpired = websocket.StatusCode(wire.CloseTokenExpired)

// tokenExpiry is a connection's deadline in Unix nanoseconds (0: none)
// and, in its lowest bit, whether it was warned about it: one word, so
// that a session stays in its size class (the deadline is kept to the
// even nanosecond at or before it). The executor writes it on refresh
// while the heartbeat reads it, hence an atomic.
type tokenExpiry struct{ v atomic.Int64 }

func (e *tokenExpiry) set(t time.Time) {
	at := int64(0)
	if !t.IsZero() {
		at = t.UnixNano() &^ 1
	}
	e.v.Store(at)
}

// deadline returns the deadline in Unix nanoseconds, 0 for none.
func (e *tokenExpiry) deadline() int64 { return e.v.Load() &^ 1 }

// warned reports whether the connection was warned about the deadline.
func (e *tokenExpiry) warned() bool { return e.v.Load()&1 != 0 }

// warn records the warning and reports whether it had been given already.
func (e *tokenExpiry) warn() bool { return e.v.Or(1)&1 != 0 }

// checkExpiry warns or closes sess as its token's deadline nears or
// passes; now is Unix nanoseconds.
func (s *Server) checkExpiry(sess *session, now int64) {
	at := sess.expiry.deadline()
	if at == 0 {
		return
	}
	left := time.Duration(at - now)
	if left <= 0 && (sess.form == formSimple || sess.expiry.warned()) {
		_ = sess.conn.Close(closeTokenExpired, "wsgate: token expired: reconnect with a fresh token") // already closing is fine
		return
	}
	if sess.form == formSimple || left > 2*s.cfg.PingInterval || sess.expiry.warn() {
		return
	}
	msg := "wsgate: token expires in " + strconv.FormatInt(int64(max(left, 0).Round(time.Second)/time.Second), 10) +
		"s: send a refresh frame with a new token"
	s.sendFrameError(sess, sess.form == formJSON, 0, wire.CodeTokenExpiring, msg)
}

// refresh answers a refresh frame: the token goes through Config.Authenticate
// as "Authorization: Bearer <token>" on a request for /ws, and is accepted
// only for the connection's own user. The connection's topics allow-list
// stays as it was at the handshake; only its deadline moves.
func (s *Server) refresh(sess *session, asJSON bool, id uint32, token []byte) {
	if s.cfg.Authenticate == nil {
		s.sendFrameError(sess, asJSON, id, wire.CodeBadRequest, "wsgate: this server does not use tokens")
		return
	}
	if len(token) == 0 || bytes.ContainsAny(token, "\r\n") {
		s.sendFrameError(sess, asJSON, id, wire.CodeBadRequest, "wsgate: refresh frame without a token")
		return
	}
	r, err := http.NewRequestWithContext(s.handlerCtx, http.MethodGet, "/ws", nil)
	if err != nil { // cannot happen for a constant URL
		s.sendFrameError(sess, asJSON, id, wire.CodeInternal, "internal error")
		return
	}
	r.Header.Set("Authorization", "Bearer "+string(token))
	ident, err := s.cfg.Authenticate(r.Context(), r)
	switch {
	case err != nil:
		s.sendFrameError(sess, asJSON, id, wire.CodeForbidden, err.Error())
	case ident.UserID != sess.identity.UserID:
		s.sendFrameError(sess, asJSON, id, wire.CodeForbidden, "wsgate: refresh token is for another user")
	default:
		sess.expiry.set(ident.Expires)
		f := wire.Frame{Type: wire.TypeReply, ID: id}
		s.writeFrame(sess, asJSON, &f)
	}
}

// refuseInBand decides how a failed authentication is told. A browser
// (its upgrade carries an Origin header, already checked by allowOrigin)
// cannot read an HTTP 401: its WebSocket reports only 1006. So a browser's
// upgrade is accepted and closed at once with CloseUnauthorized and the
// reason; the connection is never registered, gets no hello and runs no
// hook (refuseOpen). Other clients keep the plain 401. It reports whether
// it took the request.
func (s *Server) refuseInBand(w http.ResponseWriter, r *http.Request, authErr error) bool {
	if r.Header.Get("Origin") == "" || !isUpgrade(r) {
		return false
	}
	reason := authErr.Error()
	if reason == "" {
		reason = "wsgate: unauthorized"
	}
	_, err := s.ws.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: wsSubprotocols, CheckOrigin: s.allowOrigin, Value: &refusal{reason: reason},
	})
	if err != nil {
		s.ctr.open.Add(-1) // Accept wrote the HTTP error; there will be no onClose
		s.ctr.rejInvalid.Add(1)
	}
	return true
}

// refuseOpen closes a connection accepted only to tell a browser why it
// was refused (its Value is a *refusal).
func (s *Server) refuseOpen(c *websocket.Conn) {
	if r, ok := c.Value().(*refusal); ok {
		_ = c.Close(websocket.StatusCode(wire.CloseUnauthorized), r.reason) // a fresh connection: cannot be closing
	}
}

// explainBadText is the error message for a text message on /ws that is not
// a JSON frame: it names what the endpoint takes.
func (s *Server) explainBadText(data []byte, err error) string {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return err.Error() // a JSON object with a mistake: the decoder's words say which
	}
	msg := `wsgate: /ws takes frames, not plain text: send a JSON request frame such as {"type":"request","id":1,"action":4,"text":"hi"}, ` +
		"binary frames (subprotocol wsgate.v1) or, with no subprotocol, binary simple-form messages (u32 action + payload)"
	if s.echo != nil {
		msg += "; for plain-text echo connect to /echo"
	}
	return msg + " (" + err.Error() + ")"
}
