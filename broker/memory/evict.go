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

// cost is what l adds to the total.
func (l *userLog) cost() int64 {
	switch n := l.retained(); {
	case n > 0:
		return l.payload + int64(n)*msgOverhead + logOverhead
	case !l.here && (l.last > 0 || l.restarted):
		return logOverhead // a tombstone
	}
	return 0
}

// settle brings l's place on the list and its share of the total up to
// date; touched (a push) moves it to the most recently pushed end, and so
// does becoming a tombstone. The caller holds l's stripe.
func (b *Broker) settle(l *userLog, touched bool, now int64) {
	cost := l.cost()
	if cost == 0 && l.counted == 0 {
		return // not listed and not to be: nothing to account (every push with history off)
	}
	tomb := cost > 0 && l.retained() == 0
	b.lru.Lock()
	defer b.lru.Unlock()
	b.total += cost - l.counted
	switch {
	case cost == 0 && l.counted > 0:
		b.unlink(l)
	case cost > 0 && (l.counted == 0 || touched || tomb && !l.tomb):
		if l.counted > 0 {
			b.unlink(l)
		}
		b.append(l)
		l.listedAt = l.pushedAt
		if tomb {
			l.listedAt = now
		}
	}
	l.counted, l.tomb = cost, tomb
}

func (b *Broker) unlink(l *userLog) {
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

func (b *Broker) append(l *userLog) {
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
// message has expired. It runs after a publish and from Run, outside every
// stripe lock, and stops after a bounded number of steps so that one
// publisher never pays for a large backlog at once (the next call
// continues).
func (b *Broker) enforceTotal(now int64) {
	for range 64 {
		b.lru.Lock()
		l := b.head
		over := b.total > b.opts.Total
		expired := l != nil && now-l.listedAt >= int64(b.opts.TTL)
		b.lru.Unlock()
		if l == nil || !over && !expired {
			return
		}
		b.forget(l.user, l, over && !expired, now)
	}
}

// forget drops the messages of victim, user's log, if it is still the
// least recently pushed one, which makes it a tombstone (or, when its user
// is connected here, just a cursor); a tombstone goes entirely, and the
// user's next push starts a new epoch.
func (b *Broker) forget(user string, victim *userLog, evict bool, now int64) {
	st := b.stripe(user)
	st.mu.Lock()
	defer st.mu.Unlock()
	b.lru.Lock()
	still := b.head == victim
	if still && evict {
		b.evicted += int64(victim.retained())
	}
	b.lru.Unlock()
	if !still || st.logs[user] != victim {
		return // pushed to meanwhile: another round picks the new oldest
	}
	if victim.retained() == 0 {
		b.bury(st, victim)
		return
	}
	victim.drop(victim.retained())
	victim.msgs, victim.head = nil, 0
	b.settle(victim, false, now)
}

// bury forgets a tombstone. The caller holds its stripe.
func (b *Broker) bury(st *stripe, l *userLog) {
	b.lru.Lock()
	b.total -= l.counted
	if l.counted > 0 {
		b.unlink(l)
	}
	l.counted = 0
	b.lru.Unlock()
	delete(st.logs, l.user)
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
