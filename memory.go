package wsgate

import (
	"bytes"
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// memStripes spreads users over independent locks. Publishing to a user
// holds the user's stripe while the message is delivered, which is what
// keeps a user's pushes in sequence order on every connection; more stripes
// mean less waiting between unrelated users.
const memStripes = 256

// Bytes counted against Config.HistoryMemory besides payloads, so that many
// tiny pushes or many users cannot slip past the bound.
const (
	histMsgOverhead = 64
	userLogOverhead = 192
)

// maxRaise bounds how far a resuming client may raise its user's sequence
// (Broker.History): 2⁵³ keeps sequences exact as JavaScript numbers and far
// from overflowing.
const maxRaise = 1 << 53

// historyLimits bound the memory broker's history.
type historyLimits struct {
	size  int           // messages per user; 0 keeps none
	bytes int64         // payload bytes per user
	ttl   time.Duration // age of a message
	total int64         // accounted bytes of every user together
}

// memBroker is the broker of a single node: sequences, history and acks in
// memory, delivery in-process before Publish returns.
//
// Each user with state has a userLog in its stripe. Logs that retain
// messages are also on a list in the order of their last push; when the
// accounted bytes of all of them exceed the global bound, the least
// recently pushed lose their messages first. Lock order: a stripe, then
// the list lock; deliver is called with the stripe held.
type memBroker struct {
	lim       historyLimits
	now       func() time.Time
	deliver   DeliverFunc
	connected func(user string) bool // keeps a connected user's sequence when its messages go
	seed      maphash.Seed
	stripes   [memStripes]memStripe

	lru        sync.Mutex // guards the list, total and every userLog.counted
	head, tail *userLog   // least recently pushed first
	total      int64      // sum of counted
}

type memStripe struct {
	mu   sync.Mutex
	logs map[string]*userLog
	_    [40]byte // keep neighbouring locks off one cache line
}

// userLog is one user's sequence, acknowledgement and retained messages. It
// exists while it retains messages or the user is connected to this node,
// so users nobody pushes to cost nothing.
type userLog struct {
	user       string
	last       uint64
	acked      uint64
	msgs       []histMsg // retained, oldest first, from msgs[head]
	head       int
	payload    int64 // payload bytes of the retained messages
	pushedAt   int64 // unix nanoseconds of the last push
	counted    int64 // what this log adds to memBroker.total; > 0 iff listed (guarded by the list lock)
	listedAt   int64 // pushedAt as of the last move on the list (guarded by the list lock)
	prev, next *userLog
}

type histMsg struct {
	at int64    // unix nanoseconds
	m  *Message // shared with deliveries: never modified
}

func newMemBroker(lim historyLimits, deliver DeliverFunc, connected func(string) bool, now func() time.Time) *memBroker {
	b := &memBroker{lim: lim, now: now, deliver: deliver, connected: connected, seed: maphash.MakeSeed()}
	for i := range b.stripes {
		b.stripes[i].logs = make(map[string]*userLog)
	}
	return b
}

func (b *memBroker) stripe(user string) *memStripe {
	return &b.stripes[maphash.String(b.seed, user)%memStripes]
}

// Run has nothing to do: Publish delivers in-process.
func (b *memBroker) Run(context.Context, DeliverFunc, func()) error { return nil }

// Publish delivers m before returning. A message to a user is numbered,
// copied into the history and delivered under the user's stripe lock, so
// that concurrent pushes to one user reach every connection in order.
func (b *memBroker) Publish(ctx context.Context, m *Message) (int, error) {
	if m.Target.User == "" {
		return b.deliver(ctx, m)
	}
	user := m.Target.User
	now := b.now().UnixNano()
	st := b.stripe(user)
	st.mu.Lock()
	l := st.logs[user]
	if l == nil {
		l = &userLog{user: user}
		st.logs[user] = l
	}
	l.last++
	m.Seq = l.last
	kept := &Message{Target: Target{User: user}, Action: m.Action, Payload: bytes.Clone(m.Payload), Seq: m.Seq}
	b.record(l, kept, now)
	n, err := b.deliver(ctx, kept)
	st.mu.Unlock()
	b.enforceTotal(now)
	return n, err
}

// record appends m to l's history and applies the per-user limits. The
// caller holds l's stripe.
func (b *memBroker) record(l *userLog, m *Message, now int64) {
	l.pushedAt = now
	if b.lim.size > 0 && int64(len(m.Payload)) <= b.lim.bytes {
		l.msgs = append(l.msgs, histMsg{at: now, m: m})
		l.payload += int64(len(m.Payload))
	}
	b.trim(l, now)
	b.settle(l, true)
}

// trim drops l's oldest messages while it holds too many, too many bytes or
// expired ones. The caller holds l's stripe and settles l afterwards.
func (b *memBroker) trim(l *userLog, now int64) {
	for l.head < len(l.msgs) {
		oldest := l.msgs[l.head]
		if len(l.msgs)-l.head <= b.lim.size && l.payload <= b.lim.bytes && now-oldest.at < int64(b.lim.ttl) {
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

// settle brings l's place on the list and its share of the total up to
// date; touched moves it to the most recently pushed end.
func (b *memBroker) settle(l *userLog, touched bool) {
	var cost int64
	if n := l.retained(); n > 0 {
		cost = l.payload + int64(n)*histMsgOverhead + userLogOverhead
	}
	b.lru.Lock()
	defer b.lru.Unlock()
	b.total += cost - l.counted
	switch {
	case cost == 0 && l.counted > 0:
		b.unlink(l)
	case cost > 0 && (l.counted == 0 || touched):
		if l.counted > 0 {
			b.unlink(l)
		}
		b.append(l)
		l.listedAt = l.pushedAt
	}
	l.counted = cost
}

func (b *memBroker) unlink(l *userLog) {
	if l.prev != nil {
		l.prev.next = l.next
	} else {
		b.head = l.next
	}
	if l.next != nil {
		l.next.prev = l.prev
	} else {
		b.tail = l.prev
	}
	l.prev, l.next = nil, nil
}

func (b *memBroker) append(l *userLog) {
	l.prev = b.tail
	if b.tail != nil {
		b.tail.next = l
	} else {
		b.head = l
	}
	b.tail = l
}

// enforceTotal makes the least recently pushed users forget their messages
// until the total is within the bound, and forgets users whose newest
// message has expired. It runs after a publish, outside every stripe lock,
// and stops after a bounded number of steps so that one publisher never
// pays for a large backlog at once (the next publish continues).
func (b *memBroker) enforceTotal(now int64) {
	for range 64 {
		b.lru.Lock()
		l := b.head
		over := b.total > b.lim.total
		expired := l != nil && now-l.listedAt >= int64(b.lim.ttl)
		b.lru.Unlock()
		if l == nil || !over && !expired {
			return
		}
		b.forget(l.user, l)
	}
}

// sweep forgets the users whose every message has expired; the heartbeat
// calls it so that memory is returned when nobody publishes.
func (b *memBroker) sweep() {
	b.enforceTotal(b.now().UnixNano())
}

// forget drops the messages of victim, user's log, if it is still the
// least recently pushed one; a log whose user is not connected here goes
// entirely.
func (b *memBroker) forget(user string, victim *userLog) {
	st := b.stripe(user)
	st.mu.Lock()
	defer st.mu.Unlock()
	b.lru.Lock()
	still := b.head == victim
	b.lru.Unlock()
	if !still || st.logs[user] != victim {
		return // pushed to meanwhile: another round picks the new oldest
	}
	victim.drop(victim.retained())
	victim.msgs, victim.head = nil, 0
	b.settle(victim, false)
	if !b.connected(user) {
		delete(st.logs, user)
	}
}

// Cursor returns user's last and oldest retained sequence.
func (b *memBroker) Cursor(_ context.Context, user string) (Cursor, error) {
	st := b.stripe(user)
	st.mu.Lock()
	defer st.mu.Unlock()
	l := st.logs[user]
	if l == nil {
		return Cursor{}, nil
	}
	b.expire(l)
	c := Cursor{Last: l.last}
	if l.retained() > 0 {
		c.Oldest = l.msgs[l.head].m.Seq
	}
	return c, nil
}

// expire applies the age limit to l before it is read. The caller holds
// l's stripe.
func (b *memBroker) expire(l *userLog) {
	if n := l.retained(); n > 0 && b.now().UnixNano()-l.msgs[l.head].at >= int64(b.lim.ttl) {
		b.trim(l, b.now().UnixNano())
		b.settle(l, false)
	}
}

// History returns user's retained messages after after. The messages share
// their payloads with the history, which never changes them.
func (b *memBroker) History(_ context.Context, user string, after uint64) (History, error) {
	st := b.stripe(user)
	st.mu.Lock()
	defer st.mu.Unlock()
	l := st.logs[user]
	if l == nil {
		if after == 0 || after > maxRaise || !b.connected(user) {
			return History{}, nil // nothing to raise, or nobody left to keep it for
		}
		l = &userLog{user: user}
		st.logs[user] = l
	}
	b.expire(l)
	h := History{Last: l.last}
	if after > l.last && after <= maxRaise {
		l.last = after
	}
	for _, hm := range l.msgs[l.head:] {
		if hm.m.Seq > after {
			h.Messages = append(h.Messages, *hm.m)
		}
	}
	return h, nil
}

// Ack raises user's acknowledged sequence to seq; an ack above the last
// sequence acknowledges nothing that exists and is ignored.
func (b *memBroker) Ack(user string, seq uint64) {
	st := b.stripe(user)
	st.mu.Lock()
	if l := st.logs[user]; l != nil && seq <= l.last && seq > l.acked {
		l.acked = seq
	}
	st.mu.Unlock()
}

// Present forgets the sequence of a user whose last connection closed and
// whose messages are all gone.
func (b *memBroker) Present(user string, conns int) {
	if conns > 0 {
		return
	}
	st := b.stripe(user)
	st.mu.Lock()
	if l := st.logs[user]; l != nil && l.retained() == 0 {
		delete(st.logs, user)
	}
	st.mu.Unlock()
}

// Status reports user's sequence and ack; a single node has no other
// connections to count.
func (b *memBroker) Status(_ context.Context, user string) (UserStatus, error) {
	st := b.stripe(user)
	st.mu.Lock()
	defer st.mu.Unlock()
	if l := st.logs[user]; l != nil {
		return UserStatus{Seq: l.last, Acked: l.acked}, nil
	}
	return UserStatus{}, nil
}

// usage returns the accounted bytes and the users with retained messages;
// tests check the bounds with it.
func (b *memBroker) usage() (total int64, users int) {
	b.lru.Lock()
	defer b.lru.Unlock()
	for l := b.head; l != nil; l = l.next {
		users++
	}
	return b.total, users
}
