package memory

// The global bound: logs that retain messages, and tombstones, are on a
// list, least recently pushed (or buried) first, and each accounts its
// payload bytes plus overheads.
//
// A tombstone is the log of a user who was pushed to, has no connection
// here and no retained message left: it keeps the user's epoch and last
// sequence for one more TTL, so that a client coming back, even one that
// holds nothing, is told that pushes were lost instead of meeting a user
// the broker never heard of. Tombstones count against the total like
// everything else, so they stay bounded.

// cost is what l adds to the total: nothing before its first push.
func (l *userLog) cost() int64 {
	p := l.p
	if p == nil {
		return 0
	}
	switch n := p.retained(); {
	case n > 0:
		return p.payload + int64(n)*msgOverhead + logOverhead
	case !l.here() && (p.last > 0 || p.restarted):
		return logOverhead // a tombstone
	}
	return 0
}

// settle brings l's place on the list and its share of the total up to
// date; touched (a push) moves it to the most recently pushed end, and so
// does becoming a tombstone. A log without a pushState is never listed.
// The caller holds l's stripe.
func (b *Broker) settle(l *userLog, touched bool, now int64) {
	p := l.p
	if p == nil {
		return
	}
	cost := l.cost()
	tomb := cost > 0 && p.retained() == 0
	b.lru.Lock()
	defer b.lru.Unlock()
	b.total += cost - p.counted
	switch {
	case cost == 0 && p.counted > 0:
		b.unlink(p)
	case cost > 0 && (p.counted == 0 || touched || tomb && !p.tomb):
		if p.counted > 0 {
			b.unlink(p)
		}
		b.append(p)
		p.listedAt = p.pushedAt
		if tomb {
			p.listedAt = now
		}
	}
	p.counted, p.tomb = cost, tomb
}

func (b *Broker) unlink(p *pushState) {
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		b.head = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		b.tail = p.prev
	}
	p.prev, p.next = nil, nil
}

func (b *Broker) append(p *pushState) {
	p.prev = b.tail
	if b.tail != nil {
		b.tail.next = p
	} else {
		b.head = p
	}
	b.tail = p
}

// enforceTotal makes the least recently pushed users forget their messages
// until the total is within the bound, and forgets users whose newest
// message has expired. It runs after a publish and from Run, outside every
// stripe lock, and stops after a bounded number of steps so that one
// publisher never pays for a large backlog at once (the next call
// continues).
func (b *Broker) enforceTotal(now int64) {
	for range 64 {
		b.lru.Lock()
		p := b.head
		over := b.total > b.opts.Total
		expired := p != nil && now-p.listedAt >= int64(b.opts.TTL)
		b.lru.Unlock()
		if p == nil || !over && !expired {
			return
		}
		b.forget(p.user, p, over && !expired, now)
	}
}

// forget drops the messages of victim, user's pushState, if it is still
// the least recently pushed one, which makes it a tombstone (or, when its
// user is connected here, just a cursor); a tombstone goes entirely, and
// the user's next push starts a new epoch.
func (b *Broker) forget(user string, victim *pushState, evict bool, now int64) {
	st := b.stripe(user)
	st.mu.Lock()
	defer st.mu.Unlock()
	b.lru.Lock()
	still := b.head == victim
	if still && evict {
		b.evicted += int64(victim.retained())
	}
	b.lru.Unlock()
	l := st.logs[user]
	if !still || l == nil || l.p != victim {
		return // pushed to meanwhile: another round picks the new oldest
	}
	if victim.retained() == 0 {
		b.bury(st, user, l)
		return
	}
	victim.drop(victim.retained())
	victim.msgs, victim.head = nil, 0
	b.settle(l, false, now)
}

// bury forgets user's log l, a tombstone. The caller holds its stripe.
func (b *Broker) bury(st *stripe, user string, l *userLog) {
	p := l.p
	b.lru.Lock()
	b.total -= p.counted
	if p.counted > 0 {
		b.unlink(p)
	}
	p.counted = 0
	b.lru.Unlock()
	delete(st.logs, user)
}

// Usage reports the history's accounted bytes, the users with retained
// messages or tombstones, and the messages evicted so far for the total
// bound.
func (b *Broker) Usage() (bytes int64, users int, evicted int64) {
	b.lru.Lock()
	defer b.lru.Unlock()
	for l := b.head; l != nil; l = l.next {
		users++
	}
	return b.total, users, b.evicted
}

// States counts the users the broker holds any state for; tests use it
// to check that state is bounded.
func (b *Broker) States() int {
	n := 0
	for i := range b.stripes {
		st := &b.stripes[i]
		st.mu.Lock()
		n += len(st.logs) + len(st.here)
		st.mu.Unlock()
	}
	return n
}
