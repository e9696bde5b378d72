package wsgate

import (
	"context"
	"errors"
	"fmt"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// Target selects the recipients of a push. Exactly one field must be set.
type Target struct {
	Conn  string   // one connection, by ConnInfo.ID
	User  string   // every connection of a user
	Users []string // every connection of each user (a user listed twice gets it twice)
	Topic string   // every subscriber of a topic
	All   bool     // every /ws connection
}

// validate checks that exactly one recipient set is named.
func (t *Target) validate() error {
	n := 0
	for _, set := range []bool{t.Conn != "", t.User != "", len(t.Users) > 0, t.Topic != "", t.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("wsgate: push target must name exactly one of Conn, User, Users, Topic, All (got %d)", n)
	}
	return nil
}

// Push sends payload under action to the target's connections and returns
// how many had it queued. The message is framed once per protocol form and
// the frame is shared by every recipient; Push never waits for a
// connection: one whose send queue is full is closed with 4000 (slow
// consumer) and not counted. ctx is checked between registry shards, so a
// cancelled broadcast stops part-way and reports what it delivered.
func (s *Server) Push(ctx context.Context, to Target, action wire.Action, payload []byte) (int, error) {
	if err := to.validate(); err != nil {
		return 0, err
	}
	if action < wire.MinAppAction || action&wire.SimpleErrorBit != 0 {
		return 0, fmt.Errorf("wsgate: push action %d out of range [%d, %d]", action, wire.MinAppAction, wire.SimpleErrorBit-1)
	}
	if s.draining.Load() {
		return 0, ErrServerClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p := pusher{s: s, action: action, payload: payload}
	n, err := p.push(ctx, to)
	if p.framed {
		s.ctr.pushes.Add(1)
	}
	s.ctr.delivered.Add(uint64(n))
	return n, err
}

// pusher delivers one push. It frames the message lazily, once per protocol
// form actually present among the recipients.
type pusher struct {
	s       *Server
	action  wire.Action
	payload []byte
	frames  [numForms]*websocket.PreparedMessage
	framed  bool
	err     error // framing error; stops the push
}

func (p *pusher) push(ctx context.Context, to Target) (int, error) {
	reg := p.s.reg
	if to.Conn != "" {
		sess := reg.conn(to.Conn)
		if sess == nil {
			return 0, ErrNotConnected
		}
		return p.deliver(sess), p.err
	}
	snap := reg.getSnapshot()
	defer reg.putSnapshot(snap)
	switch {
	case to.User != "":
		*snap = reg.appendUser(*snap, to.User)
	case to.Topic != "":
		*snap = reg.appendTopic(*snap, to.Topic)
	case len(to.Users) > 0:
		for _, u := range to.Users {
			*snap = reg.appendUser(*snap, u)
		}
	default:
		return p.broadcast(ctx, snap)
	}
	return p.deliverAll(*snap), p.err
}

// broadcast walks the registry one shard at a time so that the snapshot
// stays small and ctx can stop it between shards.
func (p *pusher) broadcast(ctx context.Context, snap *[]*session) (int, error) {
	n := 0
	for i := range registryShards {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		*snap = p.s.reg.appendShard((*snap)[:0], i)
		n += p.deliverAll(*snap)
		if p.err != nil {
			return n, p.err
		}
	}
	return n, nil
}

func (p *pusher) deliverAll(list []*session) int {
	n := 0
	for _, sess := range list {
		n += p.deliver(sess)
	}
	return n
}

// deliver queues the push on one connection and returns 1 if it was queued.
func (p *pusher) deliver(sess *session) int {
	if !sess.ready.Load() {
		return 0 // registered a moment ago; the client has no hello yet, so it is not connected to its eyes
	}
	pm := p.frame(sess.form)
	if pm == nil {
		return 0
	}
	switch err := sess.conn.WritePrepared(pm); {
	case err == nil:
		return 1
	case errors.Is(err, websocket.ErrWriteQueueFull):
		p.s.dropSlow(sess)
	}
	return 0 // closed connections are leaving the registry
}

// frame returns the prepared message for form, building it on first use.
func (p *pusher) frame(f form) *websocket.PreparedMessage {
	if pm := p.frames[f]; pm != nil || p.err != nil {
		return pm
	}
	buf := p.s.getScratch()
	defer p.s.putScratch(buf)
	typ := websocket.BinaryMessage
	b := (*buf)[:0]
	switch f {
	case formSimple:
		b = wire.AppendSimple(b, p.action, p.payload)
	case formBinary:
		b, _ = wire.AppendFrame(b, &wire.Frame{Type: wire.TypePush, Action: p.action, Payload: p.payload})
	case formJSON:
		typ = websocket.TextMessage
		b, _ = wire.AppendJSON(b, &wire.Frame{Type: wire.TypePush, Action: p.action, Payload: p.payload})
	}
	*buf = b
	pm, err := websocket.NewPreparedMessage(typ, b)
	if err != nil {
		p.err = fmt.Errorf("wsgate: framing push: %w", err)
		return nil
	}
	p.frames[f], p.framed = pm, true
	return pm
}

// Presence returns the number of open connections of userID.
func (s *Server) Presence(userID string) int {
	return s.reg.userCount(userID)
}

// Disconnect closes one connection with code and reason (a 4000–4499 code
// asks the client to reconnect, 4500–4999 to stop; see wire.CloseCode). It
// returns ErrNotConnected when no such connection is open.
func (s *Server) Disconnect(connID string, code wire.CloseCode, reason string) error {
	sess := s.reg.conn(connID)
	if sess == nil {
		return ErrNotConnected
	}
	if err := sess.conn.Close(websocket.StatusCode(code), reason); err != nil {
		return fmt.Errorf("wsgate: disconnect %s: %w", connID, err)
	}
	return nil
}
