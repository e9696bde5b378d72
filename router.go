package wsgate

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// Request is one client request handed to a HandlerFunc.
type Request struct {
	Conn    ConnInfo
	Action  wire.Action
	Payload []byte // owned by the handler
}

// HandlerFunc answers a request. It runs on the engine's executor: the
// calls for one connection run one at a time, in the order its requests
// arrived, so a slow call delays that connection's later requests (and
// holds one of Config.MaxHandlers goroutines) but no other connection's.
// Its ctx carries the ConnInfo (ConnFrom), expires after
// Config.HandlerTimeout and is cancelled if Shutdown stops waiting. The
// returned bytes are the reply payload. A *ReplyError (see errors.As)
// becomes that error frame; any other error becomes an "internal error"
// reply and is logged.
type HandlerFunc func(ctx context.Context, req *Request) ([]byte, error)

// encoding says how to answer one request: in the encoding the request
// came in, to its request id or action.
type encoding uint8

const (
	encSimple encoding = iota // uint32 action + payload; errors set wire.SimpleErrorBit
	encBinary                 // full-form binary reply/error frames
	encJSON                   // full-form JSON text reply/error frames
)

// replyTo addresses the answer to one request.
type replyTo struct {
	enc    encoding
	action wire.Action // simple form: the reply carries the request's action
	id     uint32      // full form: 0 means the client wants no answer
}

// onMessage is the engine's callback for every /ws message. It runs on the
// executor, one message of a connection at a time, and calls the request's
// handler right here (runHandler).
func (s *Server) onMessage(c *websocket.Conn, typ websocket.MessageType, data []byte) {
	sess, ok := sessionOf(c)
	if !ok || s.freeAck(sess, typ, data) || !s.takeToken(sess) {
		return
	}
	switch {
	case typ == websocket.TextMessage:
		s.routeFrame(sess, encJSON, data)
	case sess.form == formSimple:
		s.routeSimple(sess, data)
	default:
		s.routeFrame(sess, encBinary, data)
	}
}

// takeToken applies MessageRate: a client over it is closed with 4002 and
// its later messages, still in flight, are dropped.
func (s *Server) takeToken(sess *session) bool {
	if sess.limited {
		return false
	}
	if s.cfg.MessageRate < 0 {
		return true
	}
	if ok, _ := sess.bucket.take(s.now(), s.cfg.MessageRate, 2*s.cfg.MessageRate); ok {
		return true
	}
	sess.limited = true
	s.ctr.rateLimited.Add(1)
	_ = sess.conn.Close(closeRateLimited, "message rate exceeded") // already closing is fine
	return false
}

// routeSimple handles a simple-form message: uint32 action + payload. A
// message too short for an action gets an error reply with action 0; the
// connection stays up.
func (s *Server) routeSimple(sess *session, data []byte) {
	action, payload, err := wire.DecodeSimple(data)
	if err != nil {
		s.sendError(sess, replyTo{enc: encSimple}, wire.CodeBadRequest, err.Error())
		return
	}
	s.dispatch(sess, replyTo{enc: encSimple, action: action}, action, payload)
}

// freeAck handles a binary ack that moves the client's acknowledged
// position forward, without charging it to MessageRate: a client that
// acks every push it gets must not be closed for it. Every other message,
// a repeated or out-of-range ack included, pays its token.
func (s *Server) freeAck(sess *session, typ websocket.MessageType, data []byte) bool {
	if typ != websocket.BinaryMessage || sess.form == formSimple || !sequenced(sess) {
		return false
	}
	var f wire.Frame
	if len(data) == 0 || wire.FrameType(data[0]) != wire.TypeAck || wire.DecodeFrame(data, &f) != nil {
		return false
	}
	return s.ack(sess, f.Seq)
}

// ack records a client's acknowledgement in its connection's epoch and
// reports whether it moved the connection's acknowledged position: an ack
// of nothing new, or of a push this connection was never sent, is ignored.
func (s *Server) ack(sess *session, seq uint64) bool {
	st := s.syncs.stripe(sess.identity.UserID)
	st.mu.Lock()
	at, ok := broker.Position{Epoch: sess.epoch, Seq: seq}, seq > sess.acked && seq <= sess.seq
	if ok {
		sess.acked = seq
	}
	st.mu.Unlock()
	if ok {
		s.broker.Ack(sess.identity.UserID, at)
	}
	return ok
}

// routeFrame handles a full-form frame, binary or JSON (docs/PROTOCOL.md,
// session rules). A malformed binary frame and a frame only a server may
// send are protocol errors (1002): the two sides disagree about the
// protocol and cannot recover. A malformed JSON frame is more likely a typo
// by a person at a terminal, so it gets an error frame (request id 0) and
// the connection stays up; so does a simple-form client's JSON frame other
// than a request.
func (s *Server) routeFrame(sess *session, enc encoding, data []byte) {
	var f wire.Frame
	if enc == encJSON {
		if err := wire.DecodeJSON(data, &f); err != nil {
			s.sendFrameError(sess, true, 0, wire.CodeBadRequest, s.explainBadText(data, err))
			return
		}
		if sess.form == formSimple && f.Type != wire.TypeRequest {
			s.sendFrameError(sess, true, 0, wire.CodeBadRequest, "wsgate: the simple form accepts only request frames as JSON")
			return
		}
	} else if err := wire.DecodeFrame(data, &f); err != nil {
		s.protocolError(sess, err.Error())
		return
	}
	switch f.Type {
	case wire.TypeRequest:
		s.dispatch(sess, replyTo{enc: enc, action: f.Action, id: f.ID}, f.Action, f.Payload)
	case wire.TypeAck:
		if sequenced(sess) {
			s.ack(sess, f.Seq)
		}
	case wire.TypeRefresh:
		s.refresh(sess, enc == encJSON, f.ID, f.Payload)
	default:
		s.protocolError(sess, "unexpected "+f.Type.String()+" frame from client")
	}
}

// protocolError closes sess with 1002; the engine cuts reason to fit the
// close frame.
func (s *Server) protocolError(sess *session, reason string) {
	_ = sess.conn.Close(websocket.StatusProtocolError, reason) // already closing is fine
}

// dispatch routes one request: system actions to system, everything else
// to its handler, both inline on the executor.
func (s *Server) dispatch(sess *session, to replyTo, action wire.Action, payload []byte) {
	s.ctr.requests.Add(1)
	ctr := s.obs.requested(action)
	if action <= wire.MaxSystemAction {
		s.system(sess, to, ctr, action, payload)
		return
	}
	h := (*s.handlers.Load())[action]
	if h == nil {
		h = s.cfg.Fallback
	}
	if h == nil {
		s.sendError(sess, to, wire.CodeUnknownAction, unknownAction(action))
		return
	}
	s.runHandler(sess, to, h, ctr, action, payload)
}

func unknownAction(a wire.Action) string {
	return "unknown action " + strconv.FormatUint(uint64(a), 10)
}

// runHandler calls h and sends its answer, on the executor goroutine that
// delivered the request: a goroutine per request would cost its creation
// and the growth of a fresh stack on every call, and the engine already
// runs one connection's callbacks in order and different connections'
// in parallel (up to Config.MaxHandlers). payload is copied (newCall):
// the engine reuses it once onMessage returns, and the handler owns
// Request.Payload. ctr is the action's counter, which takes the latency.
func (s *Server) runHandler(sess *session, to replyTo, h HandlerFunc, ctr *actionCounter, action wire.Action, payload []byte) {
	start := s.now() // read once for the deadline and the latency: a clock read is not free
	c := s.newCall(sess, action, payload, start)
	out, err := callHandler(c, h, &c.req)
	ctr.latency.observe(time.Duration(s.now() - start))
	if err != nil {
		s.handlerFailed(sess, to, &c.req, err)
		return
	}
	s.sendReply(sess, to, out)
}

// callHandler calls h. A panicking handler is turned into a
// *handlerPanic error, with its stack, so that one bad request cannot take
// the gateway down and the panic can still be found.
func callHandler(ctx context.Context, h HandlerFunc, req *Request) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &handlerPanic{value: v, stack: debug.Stack()}
		}
	}()
	return h(ctx, req)
}

// handlerPanic is a recovered handler panic.
type handlerPanic struct {
	value any
	stack []byte
}

func (p *handlerPanic) Error() string { return fmt.Sprintf("wsgate: handler panic: %v", p.value) }

// handlerFailed answers a failed handler call: a ReplyError as it is, a
// timeout as CodeTimeout, anything else as a generic internal error whose
// details stay in the log.
func (s *Server) handlerFailed(sess *session, to replyTo, req *Request, err error) {
	var re *ReplyError
	if errors.As(err, &re) {
		s.sendError(sess, to, re.Code, re.Message)
		return
	}
	s.ctr.handlerErrors.Add(1)
	if hp := (*handlerPanic)(nil); errors.As(err, &hp) {
		s.ctr.panics.Add(1)
		s.cfg.Logger.Error("wsgate: handler panicked",
			"conn", req.Conn.ID, "action", uint32(req.Action), "panic", hp.value, "stack", string(hp.stack))
	} else {
		s.cfg.Logger.Warn("wsgate: handler failed",
			"conn", req.Conn.ID, "action", uint32(req.Action), "err", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.sendError(sess, to, wire.CodeTimeout, "handler timed out")
		return
	}
	s.sendError(sess, to, wire.CodeInternal, "internal error")
}
