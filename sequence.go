package wsgate

import (
	"context"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/wire"
)

// Sequenced delivery. A push to a user carries the user's epoch and next
// sequence number (assigned by the Broker) to every full-form connection of
// the user. Each such connection remembers its epoch and the highest
// sequence queued to it (session.epoch, session.seq) and is either
// replaying (reading the history; pushes wait in a small per-connection
// buffer) or live.
//
// The ordering argument: the broker delivers one user's messages to this
// node one at a time per user, in sequence order or with gaps, and records
// them in the history before delivering them. A connection that replays
// first switches to buffering under the user's sync lock, then reads the
// history, then, under the lock again, queues the history and the buffer,
// skipping every sequence it already has, and goes live. A message
// delivered before the switch is in the history read after it; one
// delivered later is in the buffer or arrives live: none is missed, none is
// sent twice, all leave in order. A live connection that sees a gap replays
// again.
//
// Lock order, for the whole package: a user's sync stripe, then a registry
// shard; the broker's own locks are never held while the Server is called.
// No socket write happens under a sync stripe: frames are queued with
// websocket.Conn.Enqueue under the lock and flushed after it (settle).

// syncState is where a full-form connection of a user stands. It is guarded
// by the user's sync lock.
type syncState uint8

const (
	syncOff       syncState = iota // not sequenced: simple form or anonymous
	syncReplaying                  // reading history; live pushes are buffered
	syncLive                       // pushes are sent as they come
)

// maxPending bounds the pushes buffered for one connection; beyond it they
// are dropped (they are in the history) and the replay runs again.
const maxPending = 256

// maxReplayRounds bounds those repeated replays: a user pushed to faster
// than a replay completes closes the connection as a slow consumer.
const maxReplayRounds = 4

const syncStripes = 256

// syncTable holds the sync locks, one per stripe of users, and the buffers
// of the connections that replay.
type syncTable struct {
	seed    maphash.Seed
	stripes [syncStripes]syncStripe
}

type syncStripe struct {
	mu   sync.Mutex
	pend map[*session]*pending // connections in syncReplaying
	_    [40]byte              // keep neighbouring locks off one cache line
}

// pending is the buffer of one connection that cannot take pushes live.
type pending struct {
	msgs     []*broker.Message // in delivery order
	bytes    int
	overflow bool // messages were dropped: the next replay must fetch them
}

func newSyncTable() *syncTable { return &syncTable{seed: maphash.MakeSeed()} }

func (t *syncTable) stripe(user string) *syncStripe {
	return &t.stripes[maphash.String(t.seed, user)%syncStripes]
}

// pending returns sess's buffer, creating it.
func (st *syncStripe) pending(sess *session) *pending {
	p := st.pend[sess]
	if p == nil {
		if st.pend == nil {
			st.pend = make(map[*session]*pending)
		}
		p = &pending{}
		st.pend[sess] = p
	}
	return p
}

// sequenced reports whether sess takes part in sequenced delivery.
func sequenced(sess *session) bool {
	return sess.form != formSimple && sess.identity.UserID != ""
}

// greet runs in onOpen, before the client has its 101, for a sequenced
// connection already registered as replaying: it reads where the client
// stands (the history after its resume position, or just the user's
// position), queues the hello, what the client missed and what was
// buffered meanwhile, and puts the connection live. Nothing is held back
// waiting for the client. It reports false when the broker could not be
// read; the caller then closes the connection.
func (s *Server) greet(sess *session, from *broker.Position) bool {
	ctx, cancel := context.WithTimeout(s.handlerCtx, s.cfg.HandlerTimeout)
	defer cancel()
	user := sess.identity.UserID
	var h broker.History
	var err error
	start := time.Now()
	if from != nil {
		h, err = s.broker.History(ctx, user, *from)
		s.obs.brokerCall(opHistory, start, err)
	} else {
		var p broker.Position
		p, err = s.broker.Cursor(ctx, user)
		s.obs.brokerCall(opCursor, start, err)
		h = broker.History{Epoch: p.Epoch, Last: p.Seq}
	}
	if err != nil {
		s.cfg.Logger.Warn("wsgate: reading the user's position", "conn", s.ids.format(sess.id), "user", user, "err", err)
		return false
	}
	st := s.syncs.stripe(user)
	st.mu.Lock()
	sess.epoch, sess.seq = h.Epoch, h.Last
	if from != nil {
		sess.seq = 0 // another epoch: the client gets all of this one
	}
	if from != nil && from.Epoch == h.Epoch {
		sess.seq = from.Seq // never above h.Last: a client ahead gets a new epoch
	}
	s.sendHello(sess, h.Epoch, max(h.Last, sess.seq))
	sess.flags.set(flagReady) // before unlocking: the next push must find it ready
	pos := broker.Position{Epoch: h.Epoch, Seq: h.Last}
	if from != nil {
		pos = *from
	}
	again := s.finishReplayLocked(st, sess, pos, h, nil)
	st.mu.Unlock()
	s.settle(sess)
	if from != nil {
		s.ctr.resumed.Add(1)
		if from.Epoch == h.Epoch && from.Seq > 0 {
			s.broker.Ack(user, *from) // a resume acknowledges what the client holds
		}
	}
	if again {
		s.startReplay(sess)
	}
	return true
}

// startReplay replays sess's history on a task goroutine that Shutdown
// waits for.
func (s *Server) startReplay(sess *session) {
	if !s.tasks.add() {
		return // shutting down: the connection is closing too
	}
	go func() {
		defer s.tasks.done()
		s.replay(sess)
	}()
}

// replay sends sess the retained pushes after its position and then its
// buffer, and puts it live. When pushes overflowed the buffer meanwhile it
// runs again, a bounded number of times.
func (s *Server) replay(sess *session) {
	user := sess.identity.UserID
	st := s.syncs.stripe(user)
	ctx, cancel := context.WithTimeout(s.handlerCtx, s.cfg.HandlerTimeout)
	defer cancel()
	for round := 0; ; round++ {
		st.mu.Lock()
		from, ok := broker.Position{Epoch: sess.epoch, Seq: sess.seq}, sess.sync == syncReplaying
		st.mu.Unlock()
		if !ok {
			return // closed meanwhile
		}
		start := time.Now()
		h, err := s.broker.History(ctx, user, from)
		s.obs.brokerCall(opHistory, start, err)
		st.mu.Lock()
		again := sess.sync == syncReplaying && s.finishReplayLocked(st, sess, from, h, err)
		st.mu.Unlock()
		s.settle(sess)
		if !again {
			return
		}
		if round+1 >= maxReplayRounds {
			s.dropSlow(sess)
			return
		}
	}
}

// finishReplayLocked queues the history read from from for a replay,
// then the buffer, and puts sess live. It reports whether the buffer
// overflowed meanwhile, in which case sess stays replaying for another
// round. The caller holds the user's sync lock and settles sess after
// unlocking.
func (s *Server) finishReplayLocked(st *syncStripe, sess *session, from broker.Position, h broker.History, err error) bool {
	switch {
	case err != nil:
		s.ctr.lost.Add(1)
		s.cfg.Logger.Warn("wsgate: replay failed", "conn", s.ids.format(sess.id), "err", err)
		s.notice(sess, "wsgate: history unavailable: pushes after "+strconv.FormatUint(sess.seq, 10)+" may be lost")
	case h.Epoch != sess.epoch:
		s.restartLocked(sess)
		return false
	case h.Lost:
		s.ctr.lost.Add(1)
		s.notice(sess, resumeLoss(from, h))
		if len(h.Messages) > 0 {
			sess.seq = max(sess.seq, h.Messages[0].Seq-1) // the notice covers the gap before them
		}
	}
	for i := range h.Messages {
		s.sendSeqLocked(sess, &h.Messages[i], true)
	}
	sess.dupTo = max(h.Last, sess.seq) // live copies of what the history held may follow
	p := st.pending(sess)
	for _, m := range p.msgs {
		if m.Epoch != sess.epoch {
			s.restartLocked(sess)
			return false
		}
		s.sendSeqLocked(sess, m, false)
	}
	if p.overflow {
		p.msgs, p.bytes, p.overflow = nil, 0, false
		return true
	}
	delete(st.pend, sess)
	sess.sync = syncLive
	return false
}

// resumeLoss says what a client resuming from from has lost.
func resumeLoss(from broker.Position, h broker.History) string {
	pos := strconv.FormatUint(from.Epoch, 10) + "." + strconv.FormatUint(from.Seq, 10)
	switch {
	case from.Epoch != h.Epoch:
		return "wsgate: the user's push sequence restarted (epoch " + strconv.FormatUint(h.Epoch, 10) +
			"): pushes after " + pos + " may be lost"
	case len(h.Messages) > 0 && h.Messages[0].Seq > from.Seq+1:
		return "wsgate: pushes " + strconv.FormatUint(from.Seq+1, 10) + " to " +
			strconv.FormatUint(h.Messages[0].Seq-1, 10) + " are no longer retained"
	case len(h.Messages) == 0:
		return "wsgate: pushes " + strconv.FormatUint(from.Seq+1, 10) + " to " +
			strconv.FormatUint(h.Last, 10) + " are no longer retained"
	}
	return "wsgate: some pushes after " + strconv.FormatUint(from.Seq, 10) + " are no longer retained"
}

// restartLocked ends a connection whose user's sequence moved to another
// epoch while it was open: the client learns the new epoch only from a
// hello, so it is closed with 1012 and resumes on its next connection,
// where it is told what is lost.
func (s *Server) restartLocked(sess *session) {
	s.ctr.epochRestarts.Add(1)
	sess.flags.set(flagRestart)
}

// sendSeqLocked queues the sequenced push m on sess unless sess already had
// it, telling the client first when sequences are missing before it.
func (s *Server) sendSeqLocked(sess *session, m *broker.Message, replayed bool) {
	if m.Seq <= sess.seq {
		return
	}
	if m.Seq > sess.seq+1 {
		s.ctr.lost.Add(1)
		s.notice(sess, "wsgate: pushes "+strconv.FormatUint(sess.seq+1, 10)+" to "+
			strconv.FormatUint(m.Seq-1, 10)+" are no longer retained")
	}
	if replayed {
		s.ctr.replayed.Add(1) // before the client can see it
	}
	f := wire.Frame{Type: wire.TypePush, Action: m.Action, Seq: m.Seq, Payload: m.Payload}
	s.queueFrame(sess, sess.form == formJSON, &f)
	sess.seq = m.Seq
}

// notice queues an error frame with request id 0 and code pushes-lost.
func (s *Server) notice(sess *session, msg string) {
	f := wire.Frame{Type: wire.TypeError, Code: wire.CodePushesLost, Payload: []byte(msg)}
	s.queueFrame(sess, sess.form == formJSON, &f)
}

// deliverUser hands a user message to the user's connections here. The
// user's sync lock is held while frames are queued, so that a replay
// cannot slip between two deliveries; they are written after it is
// released.
func (s *Server) deliverUser(m *broker.Message) (int, error) {
	user := m.Target.User
	st := s.syncs.stripe(user)
	snap := s.reg.getSnapshot()
	defer s.reg.putSnapshot(snap)
	p := pusher{s: s, action: m.Action, payload: m.Payload, seq: m.Seq, queue: true}
	n := 0
	st.mu.Lock()
	*snap = s.reg.appendUser(*snap, user)
	for _, sess := range *snap {
		n += s.deliverSeqLocked(st, &p, sess, m)
	}
	st.mu.Unlock()
	for _, sess := range *snap {
		s.settle(sess)
	}
	if p.framed {
		s.ctr.pushes.Add(1)
	}
	s.ctr.delivered.Add(uint64(n))
	return n, p.err
}

// deliverSeqLocked delivers m to one connection of its user according to
// the connection's state, and returns 1 if it was queued or buffered.
func (s *Server) deliverSeqLocked(st *syncStripe, p *pusher, sess *session, m *broker.Message) int {
	switch sess.sync {
	case syncOff:
		// Simple form (or closing): no hello to wait for, and reachable
		// must not take the sync lock this goroutine already holds.
		if !sess.flags.has(flagReady) {
			return 0
		}
		return p.send(sess)
	case syncReplaying:
		s.buffer(st.pending(sess), m)
		return 1
	}
	switch {
	case m.Epoch != sess.epoch:
		s.restartLocked(sess)
		return 0
	case m.Seq <= sess.dupTo && m.Seq <= sess.seq:
		return 0 // a replay sent it already
	case m.Seq <= sess.seq:
		// The store numbered this push again: it came back older than
		// what this connection was sent, in the same epoch. Tell the
		// client, and replay, where the store, behind the client, starts
		// the user's next epoch.
		s.ctr.lost.Add(1)
		s.notice(sess, "wsgate: push "+strconv.FormatUint(m.Seq, 10)+" was numbered twice: the store lost pushes")
		sess.sync = syncReplaying
		st.pending(sess)
		s.startReplay(sess)
		return 0
	case m.Seq > sess.seq+1:
		// Messages went missing on their way here (a shared broker lost
		// its subscription for a while, or two publishers raced): fetch
		// them.
		sess.sync = syncReplaying
		s.buffer(st.pending(sess), m)
		s.startReplay(sess)
		return 1
	}
	if p.send(sess) == 0 {
		return 0 // closing
	}
	sess.seq = m.Seq
	if m.Seq > sess.dupTo {
		sess.dupTo = 0 // in order past the replay's end: no more copies can come
	}
	return 1
}

// buffer keeps m for a connection that cannot take it live, or drops it
// and remembers to fetch it from the history when the buffer is full.
func (s *Server) buffer(p *pending, m *broker.Message) {
	if p.overflow || len(p.msgs) >= maxPending || p.bytes+len(m.Payload) > s.cfg.SendQueueBytes {
		p.overflow = true
		return
	}
	p.msgs = append(p.msgs, m)
	p.bytes += len(m.Payload)
}

// settle writes what was queued on sess under a sync lock and carries out
// a close decided there. The caller holds no lock.
func (s *Server) settle(sess *session) {
	sess.conn.Flush()
	if sess.flags.has(flagSlow) {
		_ = sess.conn.Close(closeSlowConsumer, "slow consumer") // already closing is fine
	}
	if sess.flags.has(flagRestart) {
		_ = sess.conn.Close(closeRestart, "wsgate: the user's sequence restarted; reconnect to resume") // already closing is fine
	}
}

// leaveSync forgets a closing connection's buffer; a replay still running
// for it stops at its next step.
func (s *Server) leaveSync(sess *session) {
	st := s.syncs.stripe(sess.identity.UserID)
	st.mu.Lock()
	delete(st.pend, sess)
	sess.sync = syncOff
	st.mu.Unlock()
}
