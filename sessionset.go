package wsgate

import (
	"hash/maphash"
	"math/bits"
)

// slotTable is the hash table under sessionSet and userIndex: session
// pointers in an array of a power-of-two length (nil = free), at most 3/4
// full, with linear probing from the slot the top bits of a 64-bit hash
// pick, deletion by backward shift (so that it needs no tombstones), and
// halving when a table of more than shrinkFloor slots falls below 1/8
// full. What is hashed is its user's: moving a session during a deletion
// or a resize asks hash for that session's hash.
type slotTable struct {
	slots []*session // len a power of two (or 0); nil = free
	n     int        // sessions in slots
}

// sessionSet is a set of sessions, guarded by its registry shard's lock,
// in a slotTable placed by the session's id counter. The registry keeps
// its connections (by id) and each topic's subscribers in one.
//
// It exists for memory: a map[uint64]*session takes 16 bytes a slot and
// a map[*session]struct{} pads its slots to 16 bytes too, so each cost
// about 31 bytes per session at the load their growth leaves them at
// (18,000 connections, bench/peer scenario idle); here a slot is one
// pointer, about 14 bytes per session, and a topic with one subscriber
// costs a two-slot table instead of a map with a 136-byte group. A
// snapshot (appendTo) is a scan of one array, faster than walking a map.
type sessionSet struct {
	slotTable
}

// subscribers is one topic's subscribers.
type subscribers struct {
	topic string // the topic, shared by its subscribers' lists (session.topics)
	sessionSet
}

// minSetSlots is the smallest table; tables up to shrinkFloor slots are
// not halved, so that connections or subscriptions coming and going in a
// small set do not reallocate its table each time.
const (
	minSetSlots = 2
	shrinkFloor = 16
)

// slotOf returns the slot where a session with hash h belongs in a table
// of mask+1 slots: the hash's top bits.
func slotOf(h uint64, mask int) int {
	b := bits.Len(uint(mask))
	if b == 0 {
		return 0
	}
	return int(h >> (64 - b))
}

// insert puts s, whose hash is h and which is not in t, in the first free
// slot of its probe run, growing the table first if it would be fuller
// than 3/4.
func (t *slotTable) insert(s *session, h uint64, hash func(*session) uint64) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(max(2*len(t.slots), minSetSlots), hash)
	}
	mask := len(t.slots) - 1
	i := slotOf(h, mask)
	for t.slots[i] != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = s
	t.n++
}

// deleteAt empties slot i. Backward shift: each later session of the
// probe run moves into the hole if its home does not lie (cyclically)
// between the hole and it. A table of more than shrinkFloor slots that
// falls below 1/8 full halves, so that memory returns when a big topic or
// a busy node empties.
func (t *slotTable) deleteAt(i int, hash func(*session) uint64) {
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j] != nil; j = (j + 1) & mask {
		if h := slotOf(hash(t.slots[j]), mask); (j-h)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = nil
	t.n--
	if len(t.slots) > shrinkFloor && t.n*8 < len(t.slots) {
		t.resize(len(t.slots)/2, hash)
	}
}

// resize moves the sessions into a table of size slots.
func (t *slotTable) resize(size int, hash func(*session) uint64) {
	old := t.slots
	t.slots = make([]*session, size)
	mask := size - 1
	for _, s := range old {
		if s == nil {
			continue
		}
		i := slotOf(hash(s), mask)
		for t.slots[i] != nil {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// appendTo appends every session to dst.
func (t *slotTable) appendTo(dst []*session) []*session {
	for _, s := range t.slots {
		if s != nil {
			dst = append(dst, s)
		}
	}
	return dst
}

// fibonacci is the hash of an id counter in a sessionSet: Fibonacci
// hashing, which spreads consecutive counters evenly and cannot be
// steered by clients, who do not choose their ids.
func fibonacci(id uint64) uint64 { return id * 0x9e3779b97f4a7c15 }

// idHash is a session's hash in a sessionSet.
func idHash(s *session) uint64 { return fibonacci(s.id) }

// home returns the slot where a session with id counter id belongs in a
// sessionSet's table of mask+1 slots.
func home(id uint64, mask int) int { return slotOf(fibonacci(id), mask) }

// add inserts s; it reports false if s was already there.
func (t *sessionSet) add(s *session) bool {
	if t.n > 0 {
		mask := len(t.slots) - 1
		i := home(s.id, mask)
		for ; t.slots[i] != nil; i = (i + 1) & mask {
			if t.slots[i] == s {
				return false
			}
		}
		if (t.n+1)*4 <= len(t.slots)*3 {
			t.slots[i] = s // the free slot that ended the search: no growth, no second probe
			t.n++
			return true
		}
	}
	t.insert(s, idHash(s), idHash)
	return true
}

// find returns the session with id counter id, or nil.
func (t *sessionSet) find(id uint64) *session {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := home(id, mask); t.slots[i] != nil; i = (i + 1) & mask {
		if t.slots[i].id == id {
			return t.slots[i]
		}
	}
	return nil
}

// remove deletes s; it reports false if s was not there.
func (t *sessionSet) remove(s *session) bool {
	if t.n == 0 {
		return false
	}
	mask := len(t.slots) - 1
	i := home(s.id, mask)
	for t.slots[i] != s {
		if t.slots[i] == nil {
			return false
		}
		i = (i + 1) & mask
	}
	t.deleteAt(i, idHash)
	return true
}

// userIndex is a shard's index of users: the first session of each user's
// list (linked through session.next), in a slotTable placed by the hash of
// the user id (the one that picked the shard) and told apart by the id
// itself, so that users whose hashes collide just probe on. A slot is one
// pointer where a map from the hash took 16 bytes (and one from the id
// 24). Deleting and growing need the hashes of other users, which it
// recomputes from their ids with seed.
type userIndex struct {
	slotTable
}

// head returns the first session of user (hash h), or nil.
func (x *userIndex) head(h uint64, user string) *session {
	if x.n == 0 {
		return nil
	}
	mask := len(x.slots) - 1
	for i := slotOf(h, mask); x.slots[i] != nil; i = (i + 1) & mask {
		if x.slots[i].identity.UserID == user {
			return x.slots[i]
		}
	}
	return nil
}

// set makes head the first session of user (hash h); nil forgets the user.
func (x *userIndex) set(h uint64, user string, head *session, seed maphash.Seed) {
	hash := func(s *session) uint64 { return maphash.String(seed, s.identity.UserID) }
	if x.n > 0 {
		mask := len(x.slots) - 1
		for i := slotOf(h, mask); x.slots[i] != nil; i = (i + 1) & mask {
			if x.slots[i].identity.UserID != user {
				continue
			}
			if head != nil {
				x.slots[i] = head
			} else {
				x.deleteAt(i, hash)
			}
			return
		}
	}
	if head != nil {
		x.insert(head, h, hash)
	}
}
