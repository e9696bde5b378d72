// Package memory is the broker of a single gateway node: sequences, epochs,
// history, acks and presence in the process's memory, delivery in-process
// before Publish returns. It is what a wsgate Server uses when its Config
// names no Broker; nothing survives a restart, so every user's epoch starts
// again, and resuming clients are told.
package memory

import (
	"bytes"
	"context"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/wsgate/wsgate/broker"
)

// stripes spreads users over independent locks.
const stripes = 256

// Bytes counted against Options.Total besides payloads, so that many tiny
// pushes or many users cannot slip past the bound.
const (
	msgOverhead = 64
	logOverhead = 192
)

// Options bounds the history. The zero value keeps nothing.
type Options struct {
	Size  int           // messages kept per user; 0 keeps none
	Bytes int64         // payload bytes kept per user
	TTL   time.Duration // age of a kept message
	Total int64         // accounted bytes of every user together
	// SweepInterval is how often Run drops expired history when nobody
	// publishes. Default 1 s.
	SweepInterval time.Duration
	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

// Broker is the in-memory broker. Create it with New.
//
// Each user with state has an entry in its stripe. A user that has
// connections here and was never pushed to has only its epoch, in the
// stripe's here map, so that connected users cost little. Any other user
// with state has a userLog: its first push (or a client restarting its
// epoch) makes one, with a pushState for the numbering, acks, history and
// delivery order. A log exists while it retains messages or the user has
// connections here, so users nobody is connected as cost nothing once
// their history is gone: a push that is not kept to a user who is not
// connected leaves no state behind (the user's next push starts a new
// epoch). The pushStates that retain messages are also on a list in the
// order of their last push; when the accounted bytes of all of them
// exceed Options.Total, the least recently pushed lose their messages
// first.
//
// Lock order: a stripe, then the list lock. deliver is called with no lock
// held.
type Broker struct {
	opts    Options
	now     func() time.Time
	deliver broker.DeliverFunc
	bound   sync.Once
	seed    maphash.Seed
	stripes [stripes]stripe

	lru        sync.Mutex // guards the list, total and every pushState.counted, listedAt and tomb
	head, tail *pushState // least recently pushed first
	total      int64      // sum of counted
	evicted    int64      // messages dropped for the total bound (guarded by lru)
}

type stripe struct {
	mu sync.Mutex
	// here holds the epoch of each user that has connections here and no
	// log: nothing was pushed to it (a map slot, no object per user). Its
	// first push moves it to logs (logLocked). A user is in one map at
	// most.
	here map[string]uint64
	logs map[string]*userLog
	_    [40]byte // keep neighbouring locks off one cache line
}

// userLog is the state of a user that was pushed to (or whose epoch a
// client restarted): its epoch and whether it has connections here, in
// one word, and the rest in p. p is nil only while a call looks at a user
// the broker held nothing for (Cursor, History), which dropIfIdleLocked
// forgets before the stripe is unlocked. Its fields are guarded by the
// user's stripe.
type userLog struct {
	word uint64     // the epoch (at most broker.MaxSeq), and connected (hereBit)
	p    *pushState // never replaced once set
}

// hereBit is set in userLog.word while the user has connections here.
const hereBit = 1 << 63

func (l *userLog) epoch() uint64 { return l.word &^ hereBit }

func (l *userLog) here() bool { return l.word&hereBit != 0 }

// setEpoch starts epoch e for l, keeping whether it is connected.
func (l *userLog) setEpoch(e uint64) { l.word = l.word&hereBit | e }

// setHere records whether the user has connections here.
func (l *userLog) setHere(here bool) {
	l.word &^= hereBit
	if here {
		l.word |= hereBit
	}
}

// pushState is the position, acknowledgement, retained messages and
// delivery order of a user who was pushed to (or whose epoch a client
// restarted). Its fields are guarded by the user's stripe, except those
// the comments name.
type pushState struct {
	user       string
	last       uint64
	acked      uint64
	msgs       []histMsg // retained, oldest first, from msgs[head]
	head       int
	payload    int64 // payload bytes of the retained messages
	pushedAt   int64 // unix nanoseconds of the last push
	counted    int64 // what this user adds to Broker.total; > 0 iff listed
	listedAt   int64 // when it last moved on the list: its last push, or when it became a tombstone
	tomb       bool  // listed as a tombstone (guarded by the list lock)
	restarted  bool  // the epoch was started by a client ahead of it: kept like a tombstone
	prev, next *pushState

	// Deliveries leave in the order of numbering: each publisher takes a
	// ticket with its number (under the stripe lock) and waits until the
	// tickets before it are served. order guards served; it is the user's
	// own lock, so a delivery (which writes to sockets) never holds a lock
	// that another user's push needs.
	tickets uint64
	order   sync.Mutex
	turn    *sync.Cond // made by the first publisher that has to wait (order): most users never need one
	served  uint64
}

type histMsg struct {
	at int64           // unix nanoseconds
	m  *broker.Message // shared with deliveries: never modified
}

var _ broker.Broker = (*Broker)(nil)

// New returns a broker with the given bounds. It starts nothing.
func New(opts Options) *Broker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Second
	}
	opts.Size = max(opts.Size, 0)
	b := &Broker{opts: opts, now: opts.Now, seed: maphash.MakeSeed()}
	for i := range b.stripes {
		b.stripes[i].here = make(map[string]uint64)
		b.stripes[i].logs = make(map[string]*userLog)
	}
	return b
}

// Bind sets the function that delivers to this node's connections.
func (b *Broker) Bind(deliver broker.DeliverFunc) error {
	err := broker.ErrBound
	b.bound.Do(func() { b.deliver, err = deliver, nil })
	return err
}

// Run drops expired history every SweepInterval until ctx ends, so that
// memory is returned when nobody publishes.
func (b *Broker) Run(ctx context.Context) error {
	t := time.NewTicker(b.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			b.enforceTotal(b.now().UnixNano())
		}
	}
}

// Ping always succeeds: there is nothing to reach.
func (b *Broker) Ping(context.Context) error { return nil }

func (b *Broker) stripe(user string) *stripe {
	return &b.stripes[maphash.String(b.seed, user)%stripes]
}

// newEpoch returns a random epoch: a user's epochs must never repeat, also
// across restarts of the process, which a counter could not promise.
func newEpoch() uint64 { return rand.Uint64N(broker.MaxSeq) + 1 }

// logLocked returns user's log, creating it with the epoch the user has
// as a connected user without a log, or else a new one. The caller holds
// st.
func (st *stripe) logLocked(user string) *userLog {
	l := st.logs[user]
	if l == nil {
		l = &userLog{word: newEpoch()}
		if epoch, ok := st.here[user]; ok {
			delete(st.here, user)
			l.word = epoch | hereBit
		}
		st.logs[user] = l
	}
	return l
}

// pushed returns l's pushState, making it on first use. The caller holds
// l's stripe.
func (l *userLog) pushed(user string) *pushState {
	if l.p == nil {
		l.p = &pushState{user: user}
	}
	return l.p
}

// last is the last sequence numbered in l's epoch.
func (l *userLog) last() uint64 {
	if l.p == nil {
		return 0
	}
	return l.p.last
}

// dropIfIdleLocked forgets user's log l when it holds nothing worth
// keeping: no connection here, no retained message, and no push ever
// numbered (a user that was pushed to becomes a tombstone instead, see
// settle). The caller holds st.
func (st *stripe) dropIfIdleLocked(user string, l *userLog) {
	if l.here() || st.logs[user] != l {
		return
	}
	if p := l.p; p == nil || p.retained() == 0 && p.last == 0 && p.counted == 0 {
		delete(st.logs, user)
	}
}

// Publish delivers m before returning. A message to a user is numbered and
// copied into the history under the user's stripe lock, and delivered
// after it is released, in sequence order (inOrder).
func (b *Broker) Publish(ctx context.Context, m *broker.Message) (int, error) {
	if m.Target.User == "" {
		return b.deliverTo(ctx, m)
	}
	user := m.Target.User
	now := b.now().UnixNano()
	st := b.stripe(user)
	st.mu.Lock()
	l := st.logLocked(user)
	p := l.pushed(user)
	p.last++
	ticket := p.tickets
	p.tickets++
	m.Epoch, m.Seq = l.epoch(), p.last
	kept := &broker.Message{Target: broker.Target{User: user}, Action: m.Action,
		Payload: bytes.Clone(m.Payload), Epoch: m.Epoch, Seq: m.Seq}
	b.record(l, kept, now)
	st.dropIfIdleLocked(user, l)
	st.mu.Unlock()
	b.enforceTotal(now)
	return p.inOrder(ticket, func() (int, error) { return b.deliverTo(ctx, kept) })
}

// inOrder runs deliver once every earlier ticket of p has been served, so
// that concurrent publishers to one user reach deliver in the order of
// their numbers.
func (p *pushState) inOrder(ticket uint64, deliver func() (int, error)) (int, error) {
	p.order.Lock()
	defer p.order.Unlock()
	for p.served != ticket {
		if p.turn == nil {
			p.turn = sync.NewCond(&p.order)
		}
		p.turn.Wait()
	}
	defer func() {
		p.served++
		if p.turn != nil {
			p.turn.Broadcast()
		}
	}()
	return deliver()
}

func (b *Broker) deliverTo(ctx context.Context, m *broker.Message) (int, error) {
	if b.deliver == nil {
		return 0, nil // not bound: no connections to deliver to
	}
	return b.deliver(ctx, m)
}

// record appends m to l's history and applies the per-user limits. The
// caller holds l's stripe; l has its pushState.
func (b *Broker) record(l *userLog, m *broker.Message, now int64) {
	p := l.p
	p.pushedAt = now
	if b.opts.Size > 0 && int64(len(m.Payload)) <= b.opts.Bytes {
		p.msgs = append(p.msgs, histMsg{at: now, m: m})
		p.payload += int64(len(m.Payload))
	}
	b.trim(p, now)
	b.settle(l, true, now)
}

// trim drops p's oldest messages while it holds too many, too many bytes or
// expired ones. The caller holds p's stripe and settles p's log afterwards.
func (b *Broker) trim(p *pushState, now int64) {
	for p.head < len(p.msgs) {
		oldest := p.msgs[p.head]
		if p.retained() <= b.opts.Size && p.payload <= b.opts.Bytes && now-oldest.at < int64(b.opts.TTL) {
			break
		}
		p.drop(1)
	}
	if p.head > 0 && p.head >= len(p.msgs)/2 {
		p.msgs = append(p.msgs[:0:0], p.msgs[p.head:]...) // nil when empty
		p.head = 0
	}
}

// drop forgets p's n oldest messages.
func (p *pushState) drop(n int) {
	for ; n > 0 && p.head < len(p.msgs); n-- {
		p.payload -= int64(len(p.msgs[p.head].m.Payload))
		p.msgs[p.head] = histMsg{}
		p.head++
	}
}

func (p *pushState) retained() int { return len(p.msgs) - p.head }

// Cursor returns user's position, starting an epoch when the user has
// none. The state stays while the user is connected here (Present).
func (b *Broker) Cursor(_ context.Context, user string) (broker.Position, error) {
	st := b.stripe(user)
	st.mu.Lock()
	defer st.mu.Unlock()
	if epoch, ok := st.here[user]; ok {
		return broker.Position{Epoch: epoch}, nil
	}
	l := st.logLocked(user)
	b.expire(l)
	pos := broker.Position{Epoch: l.epoch(), Seq: l.last()}
	st.dropIfIdleLocked(user, l)
	return pos, nil
}

// expire applies the age limit to l before it is read. The caller holds
// l's stripe.
func (b *Broker) expire(l *userLog) {
	now := b.now().UnixNano()
	if p := l.p; p != nil && p.retained() > 0 && now-p.msgs[p.head].at >= int64(b.opts.TTL) {
		b.trim(p, now)
		b.settle(l, false, now)
	}
}

// History returns what a client at from must be sent. The messages share
// their payloads with the history, which never changes them.
func (b *Broker) History(_ context.Context, user string, from broker.Position) (broker.History, error) {
	st := b.stripe(user)
	st.mu.Lock()
	defer st.mu.Unlock()
	if epoch, ok := st.here[user]; ok && (from.Epoch != epoch || from.Seq == 0) {
		// Nothing numbered and nothing to restart: no log needed.
		return broker.History{Epoch: epoch, Lost: broker.Lost(from, epoch, 0, 0)}, nil
	}
	l := st.logLocked(user)
	b.expire(l)
	if from.Epoch == l.epoch() && from.Seq > l.last() {
		b.restart(user, l) // the client holds numbers this epoch never handed out
	}
	h := broker.History{Epoch: l.epoch(), Last: l.last()}
	after := uint64(0)
	if from.Epoch == l.epoch() {
		after = from.Seq
	}
	if p := l.p; p != nil {
		for _, hm := range p.msgs[p.head:] {
			if hm.m.Seq > after {
				h.Messages = append(h.Messages, *hm.m)
			}
		}
	}
	h.Lost = broker.Lost(from, h.Epoch, h.Last, len(h.Messages))
	st.dropIfIdleLocked(user, l)
	return h, nil
}

// restart starts a new epoch for user's log l: numbering from 1, nothing
// retained. The caller holds l's stripe.
func (b *Broker) restart(user string, l *userLog) {
	l.setEpoch(newEpoch())
	p := l.pushed(user)
	p.last, p.acked, p.restarted = 0, 0, true
	p.drop(p.retained())
	p.msgs, p.head = nil, 0
	b.settle(l, false, b.now().UnixNano())
}

// Ack raises user's acknowledged sequence to at.Seq.
func (b *Broker) Ack(user string, at broker.Position) {
	st := b.stripe(user)
	st.mu.Lock()
	if l := st.logs[user]; l != nil && l.p != nil && at.Epoch == l.epoch() && at.Seq <= l.p.last && at.Seq > l.p.acked {
		l.p.acked = at.Seq
	}
	st.mu.Unlock()
}

// Present records whether user has connections here (the count itself
// is not needed); a user with none and no retained messages is forgotten.
func (b *Broker) Present(user string, conns int) {
	st := b.stripe(user)
	st.mu.Lock()
	l := st.logs[user]
	switch {
	case conns > 0 && l == nil:
		if _, ok := st.here[user]; !ok {
			st.here[user] = newEpoch()
		}
	case conns > 0:
		l.setHere(true)
		if l.p != nil {
			b.settle(l, false, b.now().UnixNano()) // no longer a tombstone
		}
	case l == nil:
		delete(st.here, user)
	default:
		l.setHere(false)
		if l.p != nil {
			b.settle(l, false, b.now().UnixNano()) // a tombstone if it was pushed to
		}
		st.dropIfIdleLocked(user, l)
	}
	st.mu.Unlock()
}

// Status reports user's position and ack; a single node has no other
// connections to count.
func (b *Broker) Status(_ context.Context, user string) (broker.UserStatus, error) {
	st := b.stripe(user)
	st.mu.Lock()
	defer st.mu.Unlock()
	l := st.logs[user]
	switch {
	case l == nil:
		return broker.UserStatus{Epoch: st.here[user]}, nil
	case l.p == nil:
		return broker.UserStatus{Epoch: l.epoch()}, nil
	}
	return broker.UserStatus{Epoch: l.epoch(), Seq: l.p.last, Acked: l.p.acked}, nil
}
