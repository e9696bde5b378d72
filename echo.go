package wsgate

import (
	"errors"
	"net/http"

	"github.com/wsgate/wsgate/websocket"
)

// serveEcho upgrades a classic client to an RFC 6455 echo connection: no
// authentication and any origin (it exposes nothing), but the handshake
// rate and MaxConns apply as on /ws.
func (s *Server) serveEcho(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r) {
		return
	}
	if _, err := s.echo.Accept(w, r, &websocket.AcceptOptions{CheckOrigin: anyOrigin}); err != nil {
		s.ctr.open.Add(-1)
		s.ctr.rejInvalid.Add(1)
	}
}

func anyOrigin(*http.Request) bool { return true }

func (s *Server) onEchoOpen(*websocket.Conn) {
	s.ctr.echoConns.Add(1)
}

func (s *Server) onEchoClose(*websocket.Conn, error) {
	s.ctr.echoConns.Add(-1)
	s.ctr.open.Add(-1)
}

// onEchoMessage sends the message back with the same opcode. A client that
// sends faster than it reads fills its queue and is closed as a slow
// consumer rather than blocking the executor.
func onEchoMessage(c *websocket.Conn, typ websocket.MessageType, data []byte) {
	err := c.WriteMessage(typ, data)
	if errors.Is(err, websocket.ErrWriteQueueFull) {
		_ = c.Close(closeSlowConsumer, "slow consumer") // already closing is fine
	}
}
