package wsgate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/wsgate/wsgate/broker"
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

// Validate checks that exactly one recipient set is named; Push does it too.
func (t *Target) Validate() error {
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
// how many had it queued; it is Publish without the sequence number.
func (s *Server) Push(ctx context.Context, to Target, action wire.Action, payload []byte) (int, error) {
	r, err := s.Publish(ctx, to, action, payload)
	return r.Delivered, err
}

// PushResult is what Publish did.
type PushResult struct {
	// Delivered counts the connections that had the message queued, or is
	// -1 with a shared Broker, where every node delivers it after Publish
	// returns.
	Delivered int
	// Epoch and Seq place a push to Target.User in the user's sequence;
	// 0 otherwise.
	Epoch uint64
	Seq   uint64
}

// Publish sends payload under action to the target's connections. The
// message is framed once per protocol form (and goroutine, when a large
// broadcast is split) and the frame is shared by every recipient; Publish
// never waits for a connection: one whose send queue is
// full is closed with 4000 (slow consumer) and not counted. ctx is checked
// between registry shards, so a cancelled broadcast stops part-way and
// reports what it delivered.
//
// A push to a user (User, or each of Users) is sequenced: it gets the
// user's next sequence number and stays in the user's history for a while
// (Config.HistorySize, HistoryBytes, HistoryTTL), so that full-form clients
// that reconnect get what they missed, exactly once and in order.
// Simple-form clients get user pushes as plain action + payload, without
// sequence or replay. Topic, All and Conn pushes are unsequenced.
func (s *Server) Publish(ctx context.Context, to Target, action wire.Action, payload []byte) (PushResult, error) {
	if err := to.Validate(); err != nil {
		return PushResult{}, err
	}
	if !action.IsApp() {
		return PushResult{}, fmt.Errorf("wsgate: push action %d out of range [%d, %d]", action, wire.MinAppAction, wire.SimpleErrorBit-1)
	}
	if s.draining.Load() {
		return PushResult{}, ErrServerClosed
	}
	if err := ctx.Err(); err != nil {
		return PushResult{}, err
	}
	if len(to.Users) == 0 {
		m := broker.Message{Target: broker.Target{Conn: to.Conn, User: to.User, Topic: to.Topic, All: to.All},
			Action: action, Payload: payload}
		n, err := s.publish(ctx, &m)
		return PushResult{Delivered: n, Epoch: m.Epoch, Seq: m.Seq}, err
	}
	var r PushResult
	for _, u := range to.Users {
		m := broker.Message{Target: broker.Target{User: u}, Action: action, Payload: payload}
		n, err := s.publish(ctx, &m)
		if err != nil {
			return r, err
		}
		r.Delivered = sumDelivered(r.Delivered, n)
	}
	return r, nil
}

// publish hands m to the broker. A broker's failure means that no node
// will deliver m: it is ErrUnavailable, which the HTTP API answers with
// 503; a push to a connection that is nowhere is ErrNotConnected.
func (s *Server) publish(ctx context.Context, m *broker.Message) (int, error) {
	start := time.Now()
	n, err := s.broker.Publish(ctx, m)
	s.obs.brokerCall(opPublish, start, err)
	if err != nil && !errors.Is(err, ErrNotConnected) {
		return n, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return n, err
}

// sumDelivered adds delivery counts, where -1 (unknown) wins.
func sumDelivered(a, b int) int {
	if a < 0 || b < 0 {
		return -1
	}
	return a + b
}

// deliver is the DeliverFunc of this Server: it hands a message from the
// broker to the connections on this node.
func (s *Server) deliver(ctx context.Context, m *broker.Message) (int, error) {
	if m.Target.User != "" {
		start := time.Now()
		n, err := s.deliverUser(m)
		s.obs.pushed(kindUser, n, start) // deliverUser keeps Stats.Pushes and Delivered
		return n, err
	}
	to := Target{Conn: m.Target.Conn, Topic: m.Target.Topic, All: m.Target.All}
	return s.fanout(ctx, to, m.Action, m.Payload)
}

// fanout delivers an unsequenced push to this node's connections.
func (s *Server) fanout(ctx context.Context, to Target, action wire.Action, payload []byte) (int, error) {
	start := time.Now()
	p := pusher{s: s, action: action, payload: payload}
	n, err := p.push(ctx, to)
	if p.framed {
		s.ctr.pushes.Add(1)
	}
	s.ctr.delivered.Add(uint64(n))
	s.obs.pushed(kindOf(&to), n, start)
	return n, err
}

// pusher delivers one push. It frames the message lazily, once per protocol
// form actually present among the recipients.
type pusher struct {
	s       *Server
	action  wire.Action
	payload []byte
	seq     uint64          // the full forms' sequence number; 0 = unsequenced
	queue   bool            // only queue (under a sync lock): the caller settles each connection
	batch   websocket.Batch // deliverAll's writes; unused for one connection
	batched bool            // send through batch (deliverAll)
	frames  [numForms]*websocket.PreparedMessage
	framed  bool
	err     error // framing error; stops the push
}

// push delivers an unsequenced message to a connection, a topic or
// everyone.
func (p *pusher) push(ctx context.Context, to Target) (int, error) {
	reg := p.s.reg
	if to.Conn != "" {
		sess := reg.conn(to.Conn)
		if sess == nil {
			return 0, ErrNotConnected
		}
		return p.deliver(sess), p.err
	}
	if to.Topic == "" {
		return p.broadcast(ctx)
	}
	snap := reg.getSnapshot()
	defer reg.putSnapshot(snap)
	*snap = reg.appendTopic(*snap, to.Topic)
	return p.deliverSplit(*snap)
}

// deliverSplit delivers to list, split like a broadcast over up to
// GOMAXPROCS goroutines when it is long enough (a big topic). On one
// goroutine, a push to 10,000 subscribers is 10,000 write(2)s in a row on
// one core: the last subscriber waits for all of them, and every receiver
// sees the messages arrive as a slow trickle, one wake-up each. The caller
// takes the first part and waits for the others, so the push is complete,
// in order with the next one, when deliverSplit returns.
func (p *pusher) deliverSplit(list []*session) (int, error) {
	parts := 1
	if len(list) >= p.s.splitMin {
		parts = min(runtime.GOMAXPROCS(0), len(list))
	}
	if parts == 1 {
		return p.deliverAll(list), p.err
	}
	size := (len(list) + parts - 1) / parts
	return p.inParts(parts, func(q *pusher, i int) (int, error) {
		return q.deliverAll(list[min(i*size, len(list)):min((i+1)*size, len(list))]), q.err
	})
}

// parallelFanoutMin is the number of recipients (open connections for a
// broadcast, subscribers for a topic) from which a push is split over
// several goroutines; below it, starting them costs more than it saves.
const parallelFanoutMin = 1024

// broadcast delivers to every connection. Nearly all of its time is the
// write(2) to each connection (the kernel delivers into the receiving
// socket within the sender's syscall), so a large broadcast is spread over
// up to GOMAXPROCS goroutines, each walking its share of the registry
// shards with its own pusher: each frames the message once per form it
// meets, and nothing is shared per recipient. The calling goroutine takes
// the first share and waits for the others.
func (p *pusher) broadcast(ctx context.Context) (int, error) {
	parts := 1
	if p.s.ctr.open.Load() >= parallelFanoutMin {
		parts = min(runtime.GOMAXPROCS(0), registryShards)
	}
	if parts == 1 {
		return p.broadcastPart(ctx, 0, 1)
	}
	return p.inParts(parts, func(q *pusher, i int) (int, error) { return q.broadcastPart(ctx, i, parts) })
}

// inParts runs part 0 of a split push on the calling goroutine with p, and
// parts 1 … parts-1 on goroutines of their own, each with a pusher of its
// own (which frames the message once per form it meets, so nothing is
// shared per recipient); it waits for all of them and sums their counts.
func (p *pusher) inParts(parts int, part func(q *pusher, i int) (int, error)) (int, error) {
	helpers := make([]fanoutPart, parts-1)
	var wg sync.WaitGroup
	for i := range helpers {
		h := &helpers[i]
		h.p = pusher{s: p.s, action: p.action, payload: p.payload, seq: p.seq}
		wg.Go(func() { h.n, h.err = part(&h.p, i+1) })
	}
	n, err := part(p, 0)
	wg.Wait()
	for i := range helpers {
		h := &helpers[i]
		n += h.n
		err = cmp.Or(err, h.err)
		p.framed = p.framed || h.p.framed
	}
	return n, err
}

// fanoutPart is one helper's share of a split push (inParts).
type fanoutPart struct {
	p   pusher
	n   int
	err error
}

// broadcastPart walks registry shards part, part+parts, part+2·parts, …
// one at a time, so that its snapshot stays small and ctx can stop it
// between shards.
func (p *pusher) broadcastPart(ctx context.Context, part, parts int) (int, error) {
	snap := p.s.reg.getSnapshot()
	defer p.s.reg.putSnapshot(snap)
	n := 0
	for i := part; i < registryShards; i += parts {
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

// deliverAll delivers to every session of list, and returns to how many.
// The writes go to the kernel in batches (websocket.Batch): a write the
// kernel then refuses is not counted, as a refused WritePrepared is not.
func (p *pusher) deliverAll(list []*session) int {
	p.batched = true
	n := 0
	for _, sess := range list {
		n += p.deliver(sess)
	}
	p.batched = false
	return n - p.batch.Send()
}

// deliver queues the push on one connection and returns 1 if it was queued.
func (p *pusher) deliver(sess *session) int {
	if !sess.flags.has(flagReady) {
		// reachable may wait for a sync lock whose holder is waiting to
		// write to a connection whose write lock the batch holds.
		n := -p.batch.Send()
		if !p.s.reachable(sess) {
			return n // registered a moment ago; the client has no hello yet, so it is not connected to its eyes
		}
		return n + p.send(sess)
	}
	return p.send(sess)
}

// send queues the push on a connection known to be ready.
func (p *pusher) send(sess *session) int {
	pm := p.frame(sess.form)
	if pm == nil {
		return 0
	}
	var err error
	switch {
	case p.queue:
		err = sess.conn.Enqueue(pm)
	case p.batched:
		err = p.batch.WritePrepared(sess.conn, pm)
	default:
		err = sess.conn.WritePrepared(pm)
	}
	switch {
	case err == nil:
		return 1
	case errors.Is(err, websocket.ErrWriteQueueFull) && p.queue:
		p.s.markSlow(sess)
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
		b, _ = wire.AppendFrame(b, &wire.Frame{Type: wire.TypePush, Action: p.action, Seq: p.seq, Payload: p.payload})
	case formJSON:
		typ = websocket.TextMessage
		b, _ = wire.AppendJSON(b, &wire.Frame{Type: wire.TypePush, Action: p.action, Seq: p.seq, Payload: p.payload})
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

// Presence returns the number of open connections of userID on this node
// (UserStatus counts every node of a shared Broker).
func (s *Server) Presence(userID string) int {
	return s.reg.userCount(userID)
}

// UserStatus returns userID's open connections on every node, the last
// sequence number of a push to the user and the highest one a client of the
// user acknowledged.
func (s *Server) UserStatus(ctx context.Context, userID string) (broker.UserStatus, error) {
	start := time.Now()
	st, err := s.broker.Status(ctx, userID)
	s.obs.brokerCall(opStatus, start, err)
	if err != nil {
		return broker.UserStatus{}, fmt.Errorf("wsgate: status of %q: %w", userID, err)
	}
	st.Conns += s.reg.userCount(userID)
	return st, nil
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
