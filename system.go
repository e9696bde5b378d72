package wsgate

import (
	"context"
	"unicode/utf8"

	"github.com/wsgate/wsgate/wire"
)

// system handles wsgate's own actions (1–99). They run inline on the
// executor: each is a registry update or lookup, with no user code. ctr
// is the action's counter (dispatch looked it up), which presence times.
func (s *Server) system(sess *session, to replyTo, ctr *actionCounter, action wire.Action, payload []byte) {
	switch action {
	case wire.ActionSubscribe:
		s.subscribe(sess, to, payload)
	case wire.ActionUnsubscribe:
		s.unsubscribe(sess, to, payload)
	case wire.ActionPresence:
		// Other nodes' counts may come over the network: a handler call,
		// with its deadline.
		s.runHandler(sess, to, s.presence, ctr, action, payload)
	case wire.ActionPing:
		s.sendReply(sess, to, payload)
	default:
		s.sendError(sess, to, wire.CodeUnknownAction, unknownAction(action))
	}
}

// subscribe adds a subscription the identity allows. Subscribing twice is
// not an error.
func (s *Server) subscribe(sess *session, to replyTo, payload []byte) {
	if len(payload) == 0 || len(payload) > wire.MaxTopicLen || !utf8.Valid(payload) {
		s.sendError(sess, to, wire.CodeBadRequest, "invalid topic")
		return
	}
	topic := string(payload)
	switch {
	case !sess.identity.mayAccess(topic):
		s.sendError(sess, to, wire.CodeForbidden, "topic not allowed: "+topic)
		return
	case sess.subscribed(topic):
	case sess.topics.len() >= maxSubscriptions:
		s.sendError(sess, to, wire.CodeLimitExceeded, "too many subscriptions")
		return
	default:
		sess.topics.add(s.reg.subscribe(sess, topic))
	}
	s.sendReply(sess, to, nil)
}

func (s *Server) unsubscribe(sess *session, to replyTo, payload []byte) {
	topic := string(payload)
	if !sess.subscribed(topic) {
		s.sendError(sess, to, wire.CodeNotSubscribed, "not subscribed: "+topic)
		return
	}
	sess.dropTopic(topic)
	s.reg.unsubscribe(sess, topic)
	s.sendReply(sess, to, nil)
}

// presence answers ActionPresence with every node's count; it runs as a
// handler.
func (s *Server) presence(ctx context.Context, req *Request) ([]byte, error) {
	st, err := s.UserStatus(ctx, string(req.Payload))
	if err != nil {
		return nil, &ReplyError{Code: wire.CodeUnavailable, Message: "presence unavailable"}
	}
	return wire.AppendPresenceReply(nil, st.Conns), nil
}
