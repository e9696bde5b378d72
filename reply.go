package wsgate

import (
	"errors"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// sendReply answers a request with payload in the request's own encoding.
func (s *Server) sendReply(sess *session, to replyTo, payload []byte) {
	switch to.enc {
	case encSimple:
		buf := s.getScratch()
		*buf = wire.AppendSimple((*buf)[:0], to.action, payload)
		s.write(sess, websocket.BinaryMessage, *buf)
		s.putScratch(buf)
	default:
		if to.id == 0 {
			return // fire-and-forget request
		}
		f := wire.Frame{Type: wire.TypeReply, ID: to.id, Payload: payload}
		s.writeFrame(sess, to.enc == encJSON, &f)
	}
}

// sendError answers a request with an error. The simple form has no field
// for the code: its error reply carries only the message.
func (s *Server) sendError(sess *session, to replyTo, code wire.ErrorCode, msg string) {
	switch to.enc {
	case encSimple:
		buf := s.getScratch()
		*buf = wire.AppendSimpleError((*buf)[:0], to.action, msg)
		s.write(sess, websocket.BinaryMessage, *buf)
		s.putScratch(buf)
	default:
		if to.id == 0 {
			return // fire-and-forget request
		}
		s.sendFrameError(sess, to.enc == encJSON, to.id, code, msg)
	}
}

// sendFrameError sends a full-form error frame; id 0 reports a problem not
// tied to a request.
func (s *Server) sendFrameError(sess *session, asJSON bool, id uint32, code wire.ErrorCode, msg string) {
	f := wire.Frame{Type: wire.TypeError, ID: id, Code: code, Payload: []byte(msg)}
	s.writeFrame(sess, asJSON, &f)
}

// writeFrame encodes f as binary or JSON and sends it.
func (s *Server) writeFrame(sess *session, asJSON bool, f *wire.Frame) {
	s.encodeFrame(sess, asJSON, f, false)
}

// queueFrame is writeFrame for a caller that holds a sync lock: the frame
// is only queued, and the caller settles sess once it has unlocked. A full
// queue marks sess slow; settle closes it.
func (s *Server) queueFrame(sess *session, asJSON bool, f *wire.Frame) {
	s.encodeFrame(sess, asJSON, f, true)
}

func (s *Server) encodeFrame(sess *session, asJSON bool, f *wire.Frame, queue bool) {
	buf := s.getScratch()
	defer s.putScratch(buf)
	var err error
	typ := websocket.BinaryMessage
	if asJSON {
		typ = websocket.TextMessage
		*buf, err = wire.AppendJSON((*buf)[:0], f)
	} else {
		*buf, err = wire.AppendFrame((*buf)[:0], f)
	}
	if err != nil {
		// Only an unknown type or an id over 64 KiB fails: a bug here.
		s.cfg.Logger.Error("wsgate: encoding frame", "conn", s.ids.format(sess.id), "err", err)
		return
	}
	if !queue {
		s.write(sess, typ, *buf)
		return
	}
	if err := sess.conn.EnqueueMessage(typ, *buf); errors.Is(err, websocket.ErrWriteQueueFull) {
		s.markSlow(sess)
	}
}

// write queues one message on sess without blocking; the engine copies b. A full queue makes the
// connection a slow consumer; a closed connection is already on its way out
// of the registry.
func (s *Server) write(sess *session, typ websocket.MessageType, b []byte) {
	if err := sess.conn.WriteMessage(typ, b); errors.Is(err, websocket.ErrWriteQueueFull) {
		s.dropSlow(sess)
	}
}

// dropSlow closes sess with 4000 and counts it once, however many writes
// found its queue full.
func (s *Server) dropSlow(sess *session) {
	if s.markSlow(sess) {
		_ = sess.conn.Close(closeSlowConsumer, "slow consumer") // already closing is fine
	}
}

// markSlow records that sess is a slow consumer, once, and reports whether
// this call did; the close is the caller's (dropSlow, or settle after a
// sync lock).
func (s *Server) markSlow(sess *session) bool {
	if !sess.flags.set(flagSlow) {
		s.ctr.slowConsumers.Add(1)
		return true
	}
	return false
}

// maxPooledScratch is the largest encode buffer kept for reuse.
const maxPooledScratch = 64 << 10

// getScratch returns an encode buffer for outgoing messages. The engine's
// WriteMessage and NewPreparedMessage copy the bytes, so the buffer is free
// again as soon as they return.
func (s *Server) getScratch() *[]byte {
	if b, ok := s.scratch.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 512)
	return &b
}

func (s *Server) putScratch(b *[]byte) {
	if cap(*b) <= maxPooledScratch {
		s.scratch.Put(b)
	}
}
