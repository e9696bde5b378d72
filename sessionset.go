package wsgate

import "math/bits"

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
