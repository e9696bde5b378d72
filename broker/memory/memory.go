// Package memory is the broker of a single gateway node: sequences, epochs,
// history, acks and presence in the process's memory, delivery in-process
// before Publish returns. It is what a wsgate Server uses when its Config
// names no Broker; nothing survives a restart, so every user's epoch starts
// again, and resuming clients are told.
package memory

import (
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
// A user that has connections here and was never pushed to has only its
// epoch, in its stripe's here map (a map slot, no object), so that
// connected users cost little; its first push (or a client restarting its
// epoch) moves it to a userLog. Every other user with state has a userLog
// in its stripe. A log exists while it retains messages or the user has
// connections here, so users nobody is
// connected as cost nothing once their history is gone: a push that is not
// kept to a user who is not connected leaves no state behind (the user's
// next push starts a new epoch). Logs that retain messages are also on a
// list in the order of their last push; when the accounted bytes of all of
// them exceed Options.Total, the least recently pushed lose their messages
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

	lru        sync.Mutex // guards the list, total and every userLog.counted (also written under the log's stripe) and listedAt
	head, tail *userLog   // least recently pushed first
	total      int64      // sum of counted
	evicted    int64      // messages dropped for the total bound (guarded by lru)
}

type stripe struct {
	mu   sync.Mutex
	here map[string]uint64 // epochs of connected users without a log; a user is in here or logs, not both
	logs map[string]*userLog
	_    [40]byte // keep neighbouring locks off one cache line
}

// userLog is one user's position, acknowledgement, connections here and
// retained messages.
type userLog struct {
	user       string
	epoch      uint64
	last       uint64
	acked      uint64
	here       bool      // the user has connections here
	msgs       []histMsg // retained, oldest first, from msgs[head]
	head       int
	payload    int64 // payload bytes of the retained messages
	pushedAt   int64 // unix nanoseconds of the last push
	counted    int64 // what this log adds to Broker.total; > 0 iff listed
	listedAt   int64 // when it last moved on the list: its last push, or when it became a tombstone
	tomb       bool  // listed as a tombstone (guarded by the list lock)
	restarted  bool  // the epoch was started by a client ahead of it: kept like a tombstone
	prev, next *userLog

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
// as a connected user without a log (here), or else a new one. The caller
// holds st.
func (st *stripe) logLocked(user string) *userLog {
	l := st.logs[user]
	if l == nil {
		l = &userLog{user: user, epoch: newEpoch()}
		if epoch, ok := st.here[user]; ok {
			delete(st.here, user)
			l.epoch, l.here = epoch, true
		}
		st.logs[user] = l
	}
	return l
}

// dropIfIdleLocked forgets l when it holds nothing worth keeping: no
// connection here, no retained message, and no push ever numbered (a user
// that was pushed to becomes a tombstone instead, see settle). The caller
// holds st.
func (st *stripe) dropIfIdleLocked(l *userLog) {
	if !l.here && l.retained() == 0 && l.last == 0 && l.counted == 0 && st.logs[l.user] == l {
		delete(st.logs, l.user)
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
	l.last++
	ticket := l.tickets
	l.tickets++
	m.Epoch, m.Seq = l.epoch, l.last
	kept := keep(m)
	b.record(l, kept, now)
	st.dropIfIdleLocked(l)
	st.mu.Unlock()
	b.enforceTotal(now)
	return l.inOrder(ticket, func() (int, error) { return b.deliverTo(ctx, kept) })
}

// keep returns the copy of m that is recorded and delivered: m belongs to
// the publisher, which may reuse its payload. A small payload shares one
// allocation with the message (a push is mostly small, and this is the one
// allocation of its own each push to a user costs here).
func keep(m *broker.Message) *broker.Message {
	var k *broker.Message
	var p []byte
	switch n := len(m.Payload); {
	case m.Payload == nil:
		k = new(broker.Message)
	case n <= 72: // with the message, 176 bytes: one size class
		s := new(struct {
			m broker.Message
			b [72]byte
		})
		k, p = &s.m, s.b[:n:n]
	case n <= 152: // 256 bytes
		s := new(struct {
			m broker.Message
			b [152]byte
		})
		k, p = &s.m, s.b[:n:n]
	default:
		k, p = new(broker.Message), make([]byte, n)
	}
	copy(p, m.Payload)
	*k = broker.Message{Target: broker.Target{User: m.Target.User}, Action: m.Action, Payload: p, Epoch: m.Epoch, Seq: m.Seq}
	return k
}

// inOrder runs deliver once every earlier ticket of l has been served, so
// that concurrent publishers to one user reach deliver in the order of
// their numbers.
func (l *userLog) inOrder(ticket uint64, deliver func() (int, error)) (int, error) {
	l.order.Lock()
	defer l.order.Unlock()
	for l.served != ticket {
		if l.turn == nil {
			l.turn = sync.NewCond(&l.order)
		}
		l.turn.Wait()
	}
	defer func() {
		l.served++
		if l.turn != nil {
			l.turn.Broadcast()
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
// caller holds l's stripe.
func (b *Broker) record(l *userLog, m *broker.Message, now int64) {
	l.pushedAt = now
	if b.opts.Size > 0 && int64(len(m.Payload)) <= b.opts.Bytes {
		l.msgs = append(l.msgs, histMsg{at: now, m: m})
		l.payload += int64(len(m.Payload))
	}
	b.trim(l, now)
	b.settle(l, true, now)
}

// trim drops l's oldest messages while it holds too many, too many bytes or
// expired ones. The caller holds l's stripe and settles l afterwards.
func (b *Broker) trim(l *userLog, now int64) {
	for l.head < len(l.msgs) {
		oldest := l.msgs[l.head]
		if l.retained() <= b.opts.Size && l.payload <= b.opts.Bytes && now-oldest.at < int64(b.opts.TTL) {
			break
		}
		l.drop(1)
	}
	if l.head > 0 && l.head >= len(l.msgs)/2 {
		l.msgs = append(l.msgs[:0:0], l.msgs[l.head:]...) // nil when empty
		l.head = 0
	}
}

// drop forgets l's n oldest messages.
func (l *userLog) drop(n int) {
	for ; n > 0 && l.head < len(l.msgs); n-- {
		l.payload -= int64(len(l.msgs[l.head].m.Payload))
		l.msgs[l.head] = histMsg{}
		l.head++
	}
}

func (l *userLog) retained() int { return len(l.msgs) - l.head }

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
	p := broker.Position{Epoch: l.epoch, Seq: l.last}
	st.dropIfIdleLocked(l)
	return p, nil
}

// expire applies the age limit to l before it is read. The caller holds
// l's stripe.
func (b *Broker) expire(l *userLog) {
	now := b.now().UnixNano()
	if l.retained() > 0 && now-l.msgs[l.head].at >= int64(b.opts.TTL) {
		b.trim(l, now)
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
	if from.Epoch == l.epoch && from.Seq > l.last {
		b.restart(l) // the client holds numbers this epoch never handed out
	}
	h := broker.History{Epoch: l.epoch, Last: l.last}
	after := uint64(0)
	if from.Epoch == l.epoch {
		after = from.Seq
	}
	for _, hm := range l.msgs[l.head:] {
		if hm.m.Seq > after {
			h.Messages = append(h.Messages, *hm.m)
		}
	}
	h.Lost = broker.Lost(from, h.Epoch, h.Last, len(h.Messages))
	st.dropIfIdleLocked(l)
	return h, nil
}

// restart starts a new epoch for l: numbering from 1, nothing retained.
// The caller holds l's stripe.
func (b *Broker) restart(l *userLog) {
	l.epoch, l.last, l.acked, l.restarted = newEpoch(), 0, 0, true
	l.drop(l.retained())
	l.msgs, l.head = nil, 0
	b.settle(l, false, b.now().UnixNano())
}

// Ack raises user's acknowledged sequence to at.Seq.
func (b *Broker) Ack(user string, at broker.Position) {
	st := b.stripe(user)
	st.mu.Lock()
	if l := st.logs[user]; l != nil && at.Epoch == l.epoch && at.Seq <= l.last && at.Seq > l.acked {
		l.acked = at.Seq
	}
	st.mu.Unlock()
}

// Present records whether user has connections here (their number is not
// needed); a user with none and no retained messages is forgotten.
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
		l.here = true
		b.settle(l, false, b.now().UnixNano()) // no longer a tombstone
	case l == nil:
		delete(st.here, user)
	default:
		l.here = false
		b.settle(l, false, b.now().UnixNano()) // a tombstone if it was pushed to
		st.dropIfIdleLocked(l)
	}
	st.mu.Unlock()
}

// Status reports user's position and ack; a single node has no other
// connections to count.
func (b *Broker) Status(_ context.Context, user string) (broker.UserStatus, error) {
	st := b.stripe(user)
	st.mu.Lock()
	defer st.mu.Unlock()
	if l := st.logs[user]; l != nil {
		return broker.UserStatus{Epoch: l.epoch, Seq: l.last, Acked: l.acked}, nil
	}
	return broker.UserStatus{Epoch: st.here[user]}, nil // 0 when the user has no state
}
