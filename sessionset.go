package wsgate

import (
	"hash/maphash"
	"math/bits"
)

// sessionSet is a set of sessions, guarded by its registry shard's lock:
// an open-addressing hash table of session pointers with linear probing,
// placed by the session's id counter and deleted by backward shift, so
// that it needs no tombstones. The registry keeps its connections (by id)
// and each topic's subscribers in one.
//
// It exists for memory: a map[uint64]*session takes 16 bytes a slot and
// a map[*session]struct{} pads its slots to 16 bytes too, so each cost
// about 31 bytes per session at the load their growth leaves them at
// (18,000 connections, bench/peer scenario idle); here a slot is one
// pointer, about 14 bytes per session, and a topic with one subscriber
// costs a two-slot table instead of a map with a 136-byte group. A
// snapshot (appendTo) is a scan of one array, faster than walking a map.
type sessionSet struct {
	slots []*session // len a power of two (or 0); nil = free
	n     int        // sessions in slots
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

// home returns the slot where a session with id counter id belongs in a
// table of mask+1 slots: Fibonacci hashing, which spreads consecutive
// counters evenly and cannot be steered by clients, who do not choose
// their ids.
func home(id uint64, mask int) int {
	b := bits.Len(uint(mask))
	if b == 0 {
		return 0
	}
	return int((id * 0x9e3779b97f4a7c15) >> (64 - b))
}

// add inserts s; it reports false if s was already there.
func (t *sessionSet) add(s *session) bool {
	if (t.n+1)*4 > len(t.slots)*3 { // keep at most 3/4 full
		t.resize(max(2*len(t.slots), minSetSlots))
	}
	mask := len(t.slots) - 1
	for i := home(s.id, mask); ; i = (i + 1) & mask {
		switch t.slots[i] {
		case nil:
			t.slots[i] = s
			t.n++
			return true
		case s:
			return false
		}
	}
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

// remove deletes s; it reports false if s was not there. A table of more
// than shrinkFloor slots that falls below 1/8 full halves, so that memory
// returns when a big topic or a busy node empties.
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
	// Backward shift: move each later session of the probe run into the
	// hole if its home does not lie (cyclically) between the hole and it.
	for j := (i + 1) & mask; t.slots[j] != nil; j = (j + 1) & mask {
		if h := home(t.slots[j].id, mask); (j-h)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = nil
	t.n--
	if len(t.slots) > shrinkFloor && t.n*8 < len(t.slots) {
		t.resize(len(t.slots) / 2)
	}
	return true
}

// resize moves the sessions into a table of size slots.
func (t *sessionSet) resize(size int) {
	old := t.slots
	t.slots = make([]*session, size)
	mask := size - 1
	for _, s := range old {
		if s == nil {
			continue
		}
		i := home(s.id, mask)
		for t.slots[i] != nil {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// appendTo appends every session to dst.
func (t *sessionSet) appendTo(dst []*session) []*session {
	for _, s := range t.slots {
		if s != nil {
			dst = append(dst, s)
		}
	}
	return dst
}

// userIndex is a shard's index of users: the first session of each user's
// list (linked through session.next), in an open-addressing table like
// sessionSet's, placed by the hash of the user id (the one that picked the
// shard) and told apart by the id itself, so that users whose hashes
// collide just probe on. A slot is one pointer where a map from the hash
// took 16 bytes (and one from the id 24). Deleting and growing need the
// hashes of other users, which it recomputes from their ids with seed.
type userIndex struct {
	slots []*session // len a power of two (or 0); nil = free
	n     int        // users in slots
}

// userHome returns the slot where a user with hash h belongs in a table of
// mask+1 slots: the hash's top bits (its low bits picked the shard).
func userHome(h uint64, mask int) int {
	b := bits.Len(uint(mask))
	if b == 0 {
		return 0
	}
	return int(h >> (64 - b))
}

// head returns the first session of user (hash h), or nil.
func (x *userIndex) head(h uint64, user string) *session {
	if x.n == 0 {
		return nil
	}
	mask := len(x.slots) - 1
	for i := userHome(h, mask); x.slots[i] != nil; i = (i + 1) & mask {
		if x.slots[i].identity.UserID == user {
			return x.slots[i]
		}
	}
	return nil
}

// set makes head the first session of user (hash h); nil forgets the user.
func (x *userIndex) set(h uint64, user string, head *session, seed maphash.Seed) {
	if x.n > 0 {
		mask := len(x.slots) - 1
		for i := userHome(h, mask); x.slots[i] != nil; i = (i + 1) & mask {
			if x.slots[i].identity.UserID != user {
				continue
			}
			if head != nil {
				x.slots[i] = head
			} else {
				x.delete(i, seed)
			}
			return
		}
	}
	if head == nil {
		return
	}
	if (x.n+1)*4 > len(x.slots)*3 { // keep at most 3/4 full
		x.resize(max(2*len(x.slots), minSetSlots), seed)
	}
	mask := len(x.slots) - 1
	i := userHome(h, mask)
	for x.slots[i] != nil {
		i = (i + 1) & mask
	}
	x.slots[i] = head
	x.n++
}

// delete empties slot i by backward shift (as sessionSet.remove does) and
// halves a table of more than shrinkFloor slots that falls below 1/8 full.
func (x *userIndex) delete(i int, seed maphash.Seed) {
	mask := len(x.slots) - 1
	for j := (i + 1) & mask; x.slots[j] != nil; j = (j + 1) & mask {
		h := userHome(maphash.String(seed, x.slots[j].identity.UserID), mask)
		if (j-h)&mask >= (j-i)&mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = nil
	x.n--
	if len(x.slots) > shrinkFloor && x.n*8 < len(x.slots) {
		x.resize(len(x.slots)/2, seed)
	}
}

// resize moves the users into a table of size slots.
func (x *userIndex) resize(size int, seed maphash.Seed) {
	old := x.slots
	x.slots = make([]*session, size)
	mask := size - 1
	for _, p := range old {
		if p == nil {
			continue
		}
		i := userHome(maphash.String(seed, p.identity.UserID), mask)
		for x.slots[i] != nil {
			i = (i + 1) & mask
		}
		x.slots[i] = p
	}
}
