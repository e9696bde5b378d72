package wsgate

import "math/bits"

// subscribers is one topic's set of sessions, in its registry shard
// (guarded by the shard's lock): an open-addressing hash table of session
// pointers with linear probing, placed by the session's id counter and
// deleted by backward shift, so that it needs no tombstones.
//
// It exists for memory: a map[*session]struct{} pads each slot to 16
// bytes, so a big topic cost about 31 bytes per subscriber at the load
// its growth leaves it at (18,000 subscribers, bench/peer scenario idle);
// here a slot is one pointer, about 14 bytes per subscriber, and a topic
// with one subscriber costs a two-slot table instead of a map with a
// 136-byte group. A snapshot (appendTopic) is a scan of one array, which
// is faster than walking a map.
type subscribers struct {
	topic string     // the topic, shared by its subscribers' lists (session.topics)
	slots []*session // len a power of two (or 0); nil = free
	n     int        // sessions in slots
}

// minSubscriberSlots is the smallest table.
const minSubscriberSlots = 2

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
func (t *subscribers) add(s *session) bool {
	if (t.n+1)*4 > len(t.slots)*3 { // keep at most 3/4 full
		t.resize(max(2*len(t.slots), minSubscriberSlots))
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

// remove deletes s; it reports false if s was not there. A table that
// falls below 1/8 full halves, so that memory returns when a big topic
// empties.
func (t *subscribers) remove(s *session) bool {
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
	if len(t.slots) > minSubscriberSlots && t.n*8 < len(t.slots) {
		t.resize(len(t.slots) / 2)
	}
	return true
}

// resize moves the sessions into a table of size slots.
func (t *subscribers) resize(size int) {
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
func (t *subscribers) appendTo(dst []*session) []*session {
	for _, s := range t.slots {
		if s != nil {
			dst = append(dst, s)
		}
	}
	return dst
}
