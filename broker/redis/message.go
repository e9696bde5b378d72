package redis

import (
	"errors"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/wire"
)

// A message on the channel is text up to the payload, so that the publish
// script can build it with string concatenation:
//
//	kind ":" epoch ":" seq ":" wm ":" action ":" len(target) ":" target payload
//
// kind is u (user), t (topic), c (connection) or a (all); epoch, seq and
// wm (the store's write mark after the push) are 0 except for a user;
// numbers are decimal. The payload is raw bytes.

var errBadMessage = errors.New("wsgate: redis broker: malformed channel message")

// encode lays out a message that is not to a user; the publish script
// writes user messages itself.
func encode(m *broker.Message) []byte {
	kind, target := byte('a'), ""
	switch {
	case m.Target.User != "":
		kind, target = 'u', m.Target.User
	case m.Target.Topic != "":
		kind, target = 't', m.Target.Topic
	case m.Target.Conn != "":
		kind, target = 'c', m.Target.Conn
	}
	b := make([]byte, 0, 40+len(target)+len(m.Payload))
	b = append(b, kind, ':')
	for _, n := range [...]uint64{m.Epoch, m.Seq, 0, uint64(m.Action), uint64(len(target))} {
		b = strconv.AppendUint(b, n, 10)
		b = append(b, ':')
	}
	b = append(b, target...)
	return append(b, m.Payload...)
}

// decode parses a channel message and returns it with the write mark it
// carries. The payload is copied out of s, so the message may be kept.
func decode(s string) (*broker.Message, uint64, error) {
	if len(s) < 2 || s[1] != ':' {
		return nil, 0, errBadMessage
	}
	kind, rest := s[0], s[2:]
	var nums [5]uint64
	for i := range nums {
		field, tail, ok := strings.Cut(rest, ":")
		n, err := strconv.ParseUint(field, 10, 64)
		if !ok || err != nil {
			return nil, 0, errBadMessage
		}
		nums[i], rest = n, tail
	}
	epoch, seq, wm, action, n := nums[0], nums[1], nums[2], nums[3], nums[4]
	if action > 0xFFFFFFFF || n > uint64(len(rest)) {
		return nil, 0, errBadMessage
	}
	target := rest[:n]
	m := &broker.Message{Action: wire.Action(action), Payload: []byte(rest[n:]), Epoch: epoch, Seq: seq}
	switch kind {
	case 'u':
		m.Target.User = target
	case 't':
		m.Target.Topic = target
	case 'c':
		m.Target.Conn = target
	case 'a':
		m.Target.All = true
	default:
		return nil, 0, errBadMessage
	}
	user := kind == 'u'
	if target == "" && !m.Target.All || user != (seq != 0) || user != (epoch != 0) {
		return nil, 0, errBadMessage
	}
	return m, wm, nil
}
