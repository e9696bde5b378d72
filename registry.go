package wsgate

import (
	"hash/maphash"
	"sync"
)

// registryShards spreads the indexes over independent locks so that
// connects, disconnects and pushes on different keys rarely contend.
const registryShards = 64

// maxPooledSnapshot is the largest snapshot slice kept for reuse; a bigger
// one (a huge topic) is left to the garbage collector.
const maxPooledSnapshot = 1 << 16

// registry indexes open sessions by connection id, by user and by topic.
// Each index entry lives in the shard its key hashes to, so one session is
// spread over several shards and no operation ever holds two shard locks.
//
// Readers snapshot the sessions they need into a pooled slice, unlock, and
// only then write to connections: no I/O and no user code runs under a lock.
type registry struct {
	ids       *idGenerator // parses the ids looked up (conn)
	seed      maphash.Seed
	shards    [registryShards]regShard
	snapshots sync.Pool // *[]*session
}

type regShard struct {
	mu sync.Mutex
	// conns holds the sessions by their id's counter (session.id), which
	// also picks the shard.
	conns sessionSet
	// users holds each user's devices (a list linked through
	// session.next, usually a handful) by user id.
	users  userIndex
	topics map[string]subscribers
	_      [64]byte // keep neighbouring shard locks off one cache line
}

func newRegistry(ids *idGenerator) *registry {
	r := &registry{ids: ids, seed: maphash.MakeSeed()}
	for i := range r.shards {
		sh := &r.shards[i]
		sh.topics = make(map[string]subscribers)
	}
	return r
}

func (r *registry) shard(key string) *regShard {
	return &r.shards[maphash.String(r.seed, key)%registryShards]
}

// userShard returns the shard of user and the hash that keys it there.
func (r *registry) userShard(user string) (*regShard, uint64) {
	h := maphash.String(r.seed, user)
	return &r.shards[h%registryShards], h
}

// connShard returns the shard of the connection whose id has counter n.
// Counters are consecutive, so they spread evenly.
func (r *registry) connShard(n uint64) *regShard {
	return &r.shards[n%registryShards]
}

// add indexes s by id and user and returns how many sessions its user now
// has (0 for an anonymous session). Topics are added later by subscribe.
func (r *registry) add(s *session) int {
	sh := r.connShard(s.id)
	sh.mu.Lock()
	sh.conns.add(s)
	sh.mu.Unlock()
	user := s.identity.UserID
	if user == "" {
		return 0
	}
	sh, h := r.userShard(user)
	sh.mu.Lock()
	s.next = sh.users.head(h, user)
	sh.users.set(h, user, s, r.seed)
	n := devices(s)
	sh.mu.Unlock()
	return n
}

// remove drops every index entry of s, including its subscriptions, and
// returns how many sessions its user still has (-1 for an anonymous one).
func (r *registry) remove(s *session) int {
	for t := range s.topics.all() {
		r.unsubscribe(s, t)
	}
	sh := r.connShard(s.id)
	sh.mu.Lock()
	sh.conns.remove(s)
	sh.mu.Unlock()
	user := s.identity.UserID
	if user == "" {
		return -1
	}
	sh, h := r.userShard(user)
	sh.mu.Lock()
	head := unlink(sh.users.head(h, user), s)
	sh.users.set(h, user, head, r.seed)
	n := devices(head)
	sh.mu.Unlock()
	return n
}

// unlink removes s from the list that starts at head and returns the
// list's new head. The caller holds the user's shard lock.
func unlink(head, s *session) *session {
	if head == s {
		next := s.next
		s.next = nil
		return next
	}
	for p := head; p != nil; p = p.next {
		if p.next == s {
			p.next = s.next
			s.next = nil
			break
		}
	}
	return head
}

// devices counts the sessions of the list that starts at head. The
// caller holds the user's shard lock.
func devices(head *session) int {
	n := 0
	for p := head; p != nil; p = p.next {
		n++
	}
	return n
}

// subscribe adds s to topic's subscribers and returns the topic as the
// registry keeps it, for s's own list: one string per topic rather than
// one per subscription.
func (r *registry) subscribe(s *session, topic string) string {
	sh := r.shard(topic)
	sh.mu.Lock()
	subs, ok := sh.topics[topic]
	if !ok {
		subs.topic = topic
	}
	subs.add(s)
	sh.topics[topic] = subs
	sh.mu.Unlock()
	return subs.topic
}

// unsubscribe removes s from topic's subscribers and forgets empty topics.
func (r *registry) unsubscribe(s *session, topic string) {
	sh := r.shard(topic)
	sh.mu.Lock()
	if subs, ok := sh.topics[topic]; ok && subs.remove(s) {
		if subs.n == 0 {
			delete(sh.topics, topic)
		} else {
			sh.topics[topic] = subs
		}
	}
	sh.mu.Unlock()
}

// conn returns the session with id, or nil: also for any text that is not
// exactly an id this server issued (idGenerator.parse).
func (r *registry) conn(id string) *session {
	n := r.ids.parse(id)
	if n == 0 {
		return nil
	}
	sh := r.connShard(n)
	sh.mu.Lock()
	s := sh.conns.find(n)
	sh.mu.Unlock()
	return s
}

// appendUser appends user's sessions to dst.
func (r *registry) appendUser(dst []*session, user string) []*session {
	sh, h := r.userShard(user)
	sh.mu.Lock()
	for p := sh.users.head(h, user); p != nil; p = p.next {
		dst = append(dst, p)
	}
	sh.mu.Unlock()
	return dst
}

// userCount returns how many sessions user has open.
func (r *registry) userCount(user string) int {
	sh, h := r.userShard(user)
	sh.mu.Lock()
	n := devices(sh.users.head(h, user))
	sh.mu.Unlock()
	return n
}

// appendTopic appends topic's subscribers to dst.
func (r *registry) appendTopic(dst []*session, topic string) []*session {
	sh := r.shard(topic)
	sh.mu.Lock()
	if subs, ok := sh.topics[topic]; ok {
		dst = subs.appendTo(dst)
	}
	sh.mu.Unlock()
	return dst
}

// appendShard appends every session whose id falls in shard i; walking all
// shards visits every session once.
func (r *registry) appendShard(dst []*session, i int) []*session {
	sh := &r.shards[i]
	sh.mu.Lock()
	dst = sh.conns.appendTo(dst)
	sh.mu.Unlock()
	return dst
}

// counts returns the number of sessions, distinct users and live topics.
func (r *registry) counts() (conns, users, topics int) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		conns += sh.conns.n
		users += sh.users.n
		topics += len(sh.topics)
		sh.mu.Unlock()
	}
	return conns, users, topics
}

// getSnapshot returns an empty pooled slice for recipients.
func (r *registry) getSnapshot() *[]*session {
	if p, ok := r.snapshots.Get().(*[]*session); ok {
		return p
	}
	s := make([]*session, 0, 64)
	return &s
}

// putSnapshot clears p (so it does not keep closed sessions alive) and
// returns it to the pool.
func (r *registry) putSnapshot(p *[]*session) {
	if cap(*p) > maxPooledSnapshot {
		return
	}
	clear(*p)
	*p = (*p)[:0]
	r.snapshots.Put(p)
}
