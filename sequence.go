package wsgate

import (
	"context"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"github.com/wsgate/wsgate/wire"
)

// Sequenced delivery. A push to a user carries the user's next sequence
// number (assigned by the Broker) to every full-form connection of the user.
// Each such connection remembers the highest sequence queued to it
// (session.seq) and moves through the states below; pushes that arrive
// while it cannot take them live wait in a small per-connection buffer.
//
// The ordering argument: the broker delivers one user's messages one at a
// time, in sequence order, and they are recorded in the history before they
// are delivered. A connection that starts a replay first switches to
// buffering under the user's sync lock, then reads the history, then, under
// the lock again, sends the history and the buffer, skipping every sequence
// it already sent, and goes live. A message delivered before the switch is
// in the history read after it; one delivered later is in the buffer or
// arrives live: none is missed, none is sent twice, all leave in order.

// syncState is where a full-form connection of a user stands. It is guarded
// by the user's sync lock.
type syncState uint8

const (
	syncOff       syncState = iota // not sequenced: simple form or anonymous
	syncGreeting                   // registered, hello not yet queued: pushes are buffered
	syncHeld                       // hello queued; buffering until the first frame says where to resume
	syncReplaying                  // sending history; live pushes are buffered
	syncLive                       // pushes are sent as they come, duplicates dropped
)

// resumeWait is how long a connection is held for its resume frame before
// live pushes flow anyway (Server.resumeWait; tests shorten it). The SDKs
// send resume right after the handshake, so only a client that never speaks
// first waits this long, and only when its user has retained history (or
// the broker is shared).
const resumeWait = 5 * time.Second

// maxPending bounds the pushes buffered for one connection; beyond it they
// are dropped (they are in the history) and the replay runs again.
const maxPending = 256

// maxReplayRounds bounds those repeated replays: a user pushed to faster
// than a replay completes closes the connection as a slow consumer.
const maxReplayRounds = 4

const syncStripes = 256

// syncTable holds the sync locks, one per stripe of users, and the buffers
// of the connections that have one.
type syncTable struct {
	seed    maphash.Seed
	stripes [syncStripes]syncStripe
}

type syncStripe struct {
	mu   sync.Mutex
	pend map[*session]*pending // connections in syncGreeting, syncHeld or syncReplaying
	_    [40]byte              // keep neighbouring locks off one cache line
}

// pending is the buffer of one connection that cannot take pushes live.
type pending struct {
	since    int64      // server clock when the hold began; 0 = not held
	msgs     []*Message // in sequence order
	bytes    int
	overflow bool // messages were dropped: the next replay must fetch them
	unsure   bool // messages before the buffer may be missing (shared broker): release replays
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

// greet queues the hello of a sequenced connection, with the user's last
// sequence, and decides how pushes start flowing. exact says that nothing
// could have been delivered between reading c and registering sess (the
// in-memory broker, read after registration). A user with retained history
// is held for the client's resume; so is every user of a shared broker,
// whose cursor was read before registration.
func (s *Server) greet(sess *session, c Cursor, exact bool) {
	st := s.syncs.stripe(sess.identity.UserID)
	st.mu.Lock()
	s.sendHello(sess, c.Last)
	sess.seq = c.Last
	sess.ready.Store(true) // before unlocking: the next push must find it ready
	replay := false
	if c.Oldest != 0 || !exact {
		sess.sync = syncHeld
		p := st.pending(sess)
		p.since, p.unsure = s.now(), !exact
	} else {
		replay = s.releaseLocked(st, sess)
	}
	st.mu.Unlock()
	if replay {
		s.startReplay(sess, 0, s.local)
	}
}

// onFirstFrame ends the hold of a sequenced connection: a resume asks for a
// replay, any other frame says the client has nothing to resume.
func (s *Server) onFirstFrame(sess *session, f *wire.Frame) {
	if f.Type == wire.TypeResume {
		s.resume(sess, f.Seq)
		return
	}
	st := s.syncs.stripe(sess.identity.UserID)
	st.mu.Lock()
	replay := sess.sync == syncHeld && s.releaseLocked(st, sess)
	st.mu.Unlock()
	if replay {
		s.startReplay(sess, 0, s.local)
	}
}

// resume replays the pushes after seq. A connection already live (it had
// nothing to wait for) replays from what it was sent; one already
// replaying (released by the hold's timeout) keeps that replay.
func (s *Server) resume(sess *session, seq uint64) {
	s.ctr.resumed.Add(1)
	st := s.syncs.stripe(sess.identity.UserID)
	st.mu.Lock()
	switch sess.sync {
	case syncHeld:
		sess.seq = seq
	case syncLive:
		sess.seq = max(seq, sess.seq)
	default:
		st.mu.Unlock()
		return
	}
	sess.sync = syncReplaying
	st.pending(sess)
	st.mu.Unlock()
	s.startReplay(sess, seq, s.local)
}

// releaseLocked ends a hold: when the buffer continues the connection's
// sequence without a gap it is sent and the connection goes live;
// otherwise the connection must replay first, and releaseLocked returns
// true. The caller holds the user's sync lock.
func (s *Server) releaseLocked(st *syncStripe, sess *session) bool {
	p := st.pend[sess]
	if p != nil && (p.unsure || p.overflow || !continues(p.msgs, sess.seq)) {
		sess.sync = syncReplaying
		p.since = 0
		return true
	}
	if p != nil {
		for _, m := range p.msgs {
			s.sendSeqLocked(sess, m, false)
		}
		delete(st.pend, sess)
	}
	sess.sync = syncLive
	return false
}

// continues reports whether msgs holds no gap after seq.
func continues(msgs []*Message, seq uint64) bool {
	for _, m := range msgs {
		if m.Seq > seq {
			return m.Seq == seq+1
		}
	}
	return true
}

// startReplay replays sess's history: on this goroutine when inline (the
// in-memory broker, called with no lock held), else on a task goroutine
// that Shutdown waits for. ack > 0 is recorded once the replay has run.
func (s *Server) startReplay(sess *session, ack uint64, inline bool) {
	if inline {
		s.replay(sess, ack)
		return
	}
	if !s.tasks.add() {
		return // shutting down: the connection is closing too
	}
	go func() {
		defer s.tasks.done()
		s.replay(sess, ack)
	}()
}

// replay sends sess the retained pushes after sess.seq and then its
// buffer, and puts it live. When pushes overflowed the buffer meanwhile it
// runs again, a bounded number of times.
func (s *Server) replay(sess *session, ack uint64) {
	user := sess.identity.UserID
	st := s.syncs.stripe(user)
	ctx, cancel := context.WithTimeout(s.handlerCtx, s.cfg.HandlerTimeout)
	defer cancel()
	for round := 0; ; round++ {
		st.mu.Lock()
		from, ok := sess.seq, sess.sync == syncReplaying
		st.mu.Unlock()
		if !ok {
			return // closed meanwhile
		}
		h, err := s.broker.History(ctx, user, from)
		if ack > 0 {
			s.broker.Ack(user, ack)
			ack = 0
		}
		st.mu.Lock()
		again := sess.sync == syncReplaying && s.finishReplayLocked(st, sess, from, h, err)
		st.mu.Unlock()
		if !again {
			return
		}
		if round+1 >= maxReplayRounds {
			s.dropSlow(sess)
			return
		}
	}
}

// finishReplayLocked sends the history read for a replay from from, then
// the buffer, and puts sess live. It reports whether the buffer overflowed
// meanwhile, in which case sess stays replaying for another round.
func (s *Server) finishReplayLocked(st *syncStripe, sess *session, from uint64, h History, err error) bool {
	switch {
	case err != nil:
		s.ctr.lost.Add(1)
		s.cfg.Logger.Warn("wsgate: replay failed", "conn", sess.id, "err", err)
		s.notice(sess, "wsgate: history unavailable: pushes after "+strconv.FormatUint(from, 10)+" may be lost")
	case from > h.Last:
		s.ctr.lost.Add(1)
		s.notice(sess, "wsgate: the server's sequence ("+strconv.FormatUint(h.Last, 10)+
			") is behind the client's ("+strconv.FormatUint(from, 10)+"): pushes may be lost; numbering continues after the client's")
	}
	for i := range h.Messages {
		s.sendSeqLocked(sess, &h.Messages[i], true)
	}
	p := st.pending(sess)
	for _, m := range p.msgs {
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

// sendSeqLocked queues the sequenced push m on sess unless sess already had
// it, telling the client first when sequences are missing before it.
func (s *Server) sendSeqLocked(sess *session, m *Message, replayed bool) {
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
	s.writeFrame(sess, sess.form == formJSON, &f)
	sess.seq = m.Seq
}

// notice sends an error frame with request id 0 and code pushes-lost.
func (s *Server) notice(sess *session, msg string) {
	s.sendFrameError(sess, sess.form == formJSON, 0, wire.CodePushesLost, msg)
}

// deliverUser hands a user message to the user's connections here. The
// broker calls it one message at a time per user, in sequence order, and
// the user's sync lock is held throughout so that a replay cannot slip
// between two deliveries. Queueing a message never blocks (a full queue
// closes the connection), so holding the lock over it is safe.
func (s *Server) deliverUser(m *Message) (int, error) {
	user := m.Target.User
	st := s.syncs.stripe(user)
	snap := s.reg.getSnapshot()
	defer s.reg.putSnapshot(snap)
	p := pusher{s: s, action: m.Action, payload: m.Payload, seq: m.Seq}
	n := 0
	st.mu.Lock()
	*snap = s.reg.appendUser(*snap, user)
	for _, sess := range *snap {
		n += s.deliverSeqLocked(st, &p, sess, m)
	}
	st.mu.Unlock()
	if p.framed {
		s.ctr.pushes.Add(1)
	}
	s.ctr.delivered.Add(uint64(n))
	return n, p.err
}

// deliverSeqLocked delivers m to one connection of its user according to
// the connection's state, and returns 1 if it was queued or buffered.
func (s *Server) deliverSeqLocked(st *syncStripe, p *pusher, sess *session, m *Message) int {
	switch sess.sync {
	case syncOff:
		// Simple form (or closing): no hello to wait for, and reachable
		// must not take the sync lock this goroutine already holds.
		if !sess.ready.Load() {
			return 0
		}
		return p.send(sess)
	case syncLive:
		if m.Seq <= sess.seq {
			return 0 // a replay sent it already
		}
		if m.Seq > sess.seq+1 {
			// Messages went missing on their way here (a shared broker
			// lost its subscription for a while): fetch them.
			sess.sync = syncReplaying
			s.buffer(st.pending(sess), m)
			s.startReplay(sess, 0, false)
			return 1
		}
		if p.send(sess) == 0 {
			return 0 // closing
		}
		sess.seq = m.Seq
		return 1
	}
	pd := st.pending(sess)
	s.buffer(pd, m)
	if sess.sync == syncHeld && pd.since != 0 && s.now()-pd.since >= int64(s.resumeWait) && s.releaseLocked(st, sess) {
		s.startReplay(sess, 0, false) // under the broker's lock: never inline
	}
	return 1
}

// buffer keeps m for a connection that cannot take it live, or drops it
// and remembers to fetch it from the history when the buffer is full.
func (s *Server) buffer(p *pending, m *Message) {
	if p.overflow || len(p.msgs) >= maxPending || p.bytes+len(m.Payload) > s.cfg.SendQueueBytes {
		p.overflow = true
		return
	}
	p.msgs = append(p.msgs, m)
	p.bytes += len(m.Payload)
}

// releaseExpired ends the holds that have waited resumeWait for a resume
// that is not coming. The heartbeat calls it; the replays it starts run
// inline with the in-memory broker and on task goroutines otherwise.
func (s *Server) releaseExpired() {
	now := s.now()
	var replays []*session
	for i := range s.syncs.stripes {
		st := &s.syncs.stripes[i]
		st.mu.Lock()
		for sess, p := range st.pend {
			if sess.sync == syncHeld && p.since != 0 && now-p.since >= int64(s.resumeWait) && s.releaseLocked(st, sess) {
				replays = append(replays, sess)
			}
		}
		st.mu.Unlock()
	}
	for _, sess := range replays {
		s.startReplay(sess, 0, s.local)
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

// resetSequences is a shared Broker's report that its state was lost and
// sequences start again: every sequenced connection here is closed with
// 1012 (service restart), so that its client reconnects and resumes, which
// raises its user's sequence above what the client holds.
func (s *Server) resetSequences() {
	s.cfg.Logger.Warn("wsgate: the broker lost its state; closing sequenced connections so that their clients resume")
	snap := s.reg.getSnapshot()
	defer s.reg.putSnapshot(snap)
	for i := range registryShards {
		*snap = s.reg.appendShard((*snap)[:0], i)
		for _, sess := range *snap {
			if sequenced(sess) {
				_ = sess.conn.Close(closeRestart, "wsgate: delivery state lost; resume") // already closing is fine
			}
		}
	}
}
