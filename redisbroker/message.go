package redisbroker

import (
	"errors"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/wire"
)

// A message on the channel is text up to the payload, so that the publish
// script can build it with string concatenation:
//
//	kind ":" seq ":" action ":" len(target) ":" target payload
//
// kind is u (user), t (topic), c (connection) or a (all); seq is 0 except
// for a user; numbers are decimal. The payload is raw bytes.

var errBadMessage = errors.New("redisbroker: malformed channel message")

// encode lays out a message that is not to a user; the publish script
// writes user messages itself.
func encode(m *wsgate.Message) []byte {
	kind, target := byte('a'), ""
	switch {
	case m.Target.User != "":
		kind, target = 'u', m.Target.User
	case m.Target.Topic != "":
		kind, target = 't', m.Target.Topic
	case m.Target.Conn != "":
		kind, target = 'c', m.Target.Conn
	}
	b := make([]byte, 0, 32+len(target)+len(m.Payload))
	b = append(b, kind, ':')
	b = strconv.AppendUint(b, m.Seq, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(m.Action), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(len(target)), 10)
	b = append(b, ':')
	b = append(b, target...)
	return append(b, m.Payload...)
}

// decode parses a channel message. The payload is copied out of s, so the
// message may be kept.
func decode(s string) (*wsgate.Message, error) {
	if len(s) < 2 || s[1] != ':' {
		return nil, errBadMessage
	}
	kind, rest := s[0], s[2:]
	var nums [3]uint64
	for i := range nums {
		field, tail, ok := strings.Cut(rest, ":")
		n, err := strconv.ParseUint(field, 10, 64)
		if !ok || err != nil {
			return nil, errBadMessage
		}
		nums[i], rest = n, tail
	}
	seq, action, n := nums[0], nums[1], nums[2]
	if action > 0xFFFFFFFF || n > uint64(len(rest)) {
		return nil, errBadMessage
	}
	target := rest[:n]
	m := &wsgate.Message{Action: wire.Action(action), Payload: []byte(rest[n:]), Seq: seq}
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
		return nil, errBadMessage
	}
	if target == "" && !m.Target.All || (kind != 'u') != (seq == 0) {
		return nil, errBadMessage
	}
	return m, nil
}
