package wsgate

import (
	"errors"
	"net/http"

	"github.com/wsgate/wsgate/websocket"
)

// serveEcho upgrades a classic client to an RFC 6455 echo connection: no
// authentication and any origin (it exposes nothing), but the handshake
// rate and MaxConns apply as on /ws, and /echo as a whole holds at most
// Config.EchoMemory (echoSlots).
func (s *Server) serveEcho(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r) {
		return
	}
	if n := s.ctr.echoHeld.Add(1); n > s.echoSlots {
		s.ctr.echoHeld.Add(-1)
		s.ctr.open.Add(-1)
		s.ctr.rejOverload.Add(1)
		w.Header().Set("Retry-After", "5")
		s.reject(w, r, http.StatusServiceUnavailable, "echo capacity reached", "wsgate: /echo is at capacity, try later")
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	if _, err := s.echo.Accept(rec, r, &websocket.AcceptOptions{CheckOrigin: anyOrigin}); err != nil {
		s.ctr.echoHeld.Add(-1)
		s.ctr.open.Add(-1)
		s.ctr.rejInvalid.Add(1)
		s.acceptFailed(rec, r, err)
		return
	}
	s.ctr.hs.count(http.StatusSwitchingProtocols)
}

func anyOrigin(*http.Request) bool { return true }

// echoCharge is what one /echo connection may hold at worst: a message
// being read, one waiting in its inbox (InboxLimit 1), one being echoed and
// the send queue, which takes one message beyond SendQueueBytes.
func (c *Config) echoCharge() int64 {
	return int64(c.SendQueueBytes) + 4*c.EchoMaxMessageSize
}

func (s *Server) onEchoOpen(*websocket.Conn) {
	s.ctr.echoConns.Add(1)
}

func (s *Server) onEchoClose(*websocket.Conn, error) {
	s.ctr.echoConns.Add(-1)
	s.ctr.echoHeld.Add(-1)
	s.ctr.open.Add(-1)
}

// onEchoMessage sends the message back with the same opcode, through the
// send-queue bound of every connection (SendQueueBytes and
// SendQueueMessages). A client that sends faster than it reads fills its
// queue and is closed as a slow consumer rather than blocking the executor.
func onEchoMessage(c *websocket.Conn, typ websocket.MessageType, data []byte) {
	err := c.WriteMessage(typ, data)
	if errors.Is(err, websocket.ErrWriteQueueFull) {
		_ = c.Close(closeSlowConsumer, "slow consumer") // already closing is fine
	}
}
