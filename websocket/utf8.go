package websocket

import "encoding/binary"

// utf8State is a streaming UTF-8 validator: a DFA whose state is the part of
// a multi-byte sequence still expected. It fails on the first byte that
// cannot start or continue a valid sequence (RFC 3629 and Unicode Table 3-7:
// no overlong forms, no surrogates, nothing above U+10FFFF), so a text
// message split across frames and reads is rejected as soon as the bad byte
// arrives (RFC 6455 §8.1), not when the message ends. The zero value is the
// initial state.
type utf8State uint8

const (
	utf8Accept  utf8State = iota // between sequences
	utf8Reject                   // an invalid byte was seen; sticky
	utf8Need1                    // one continuation byte (80-BF) left
	utf8Need2                    // two continuation bytes left
	utf8Need3                    // three continuation bytes left (after F1-F3)
	utf8AfterE0                  // E0: next is A0-BF (no overlong)
	utf8AfterED                  // ED: next is 80-9F (no surrogates)
	utf8AfterF0                  // F0: next is 90-BF (no overlong)
	utf8AfterF4                  // F4: next is 80-8F (≤ U+10FFFF)
)

// asciiMask has the high bit of every byte of a word set.
const asciiMask = 0x8080808080808080

// write advances the validator over b and reports whether b is still a valid
// prefix. Bytes are ASCII-checked eight at a time between sequences.
func (s *utf8State) write(b []byte) bool {
	st := *s
	for i := 0; i < len(b); {
		if st == utf8Accept {
			for len(b)-i >= 8 && binary.LittleEndian.Uint64(b[i:])&asciiMask == 0 {
				i += 8
			}
			for i < len(b) && b[i] < 0x80 {
				i++
			}
			if i == len(b) {
				break
			}
		}
		st = utf8Step(st, b[i])
		if st == utf8Reject {
			*s = st
			return false
		}
		i++
	}
	*s = st
	return true
}

// complete reports whether the input so far is valid and ends on a sequence
// boundary, i.e. it is a whole valid UTF-8 text.
func (s utf8State) complete() bool { return s == utf8Accept }

// utf8Step is the DFA transition for one byte.
func utf8Step(s utf8State, c byte) utf8State {
	switch s {
	case utf8Accept:
		return utf8Start(c)
	case utf8Need1:
		if c&0xC0 == 0x80 {
			return utf8Accept
		}
	case utf8Need2:
		if c&0xC0 == 0x80 {
			return utf8Need1
		}
	case utf8Need3:
		if c&0xC0 == 0x80 {
			return utf8Need2
		}
	case utf8AfterE0:
		if c >= 0xA0 && c <= 0xBF {
			return utf8Need1
		}
	case utf8AfterED:
		if c >= 0x80 && c <= 0x9F {
			return utf8Need1
		}
	case utf8AfterF0:
		if c >= 0x90 && c <= 0xBF {
			return utf8Need2
		}
	case utf8AfterF4:
		if c >= 0x80 && c <= 0x8F {
			return utf8Need2
		}
	}
	return utf8Reject
}

// utf8Start is the transition from utf8Accept: the lead byte decides how
// many continuation bytes follow and which range the first one must be in.
func utf8Start(c byte) utf8State {
	switch {
	case c < 0x80:
		return utf8Accept
	case c < 0xC2: // continuation byte or overlong 2-byte lead
		return utf8Reject
	case c < 0xE0:
		return utf8Need1
	case c == 0xE0:
		return utf8AfterE0
	case c == 0xED:
		return utf8AfterED
	case c < 0xF0:
		return utf8Need2
	case c == 0xF0:
		return utf8AfterF0
	case c < 0xF4:
		return utf8Need3
	case c == 0xF4:
		return utf8AfterF4
	}
	return utf8Reject
}

// validUTF8 reports whether b is a complete valid UTF-8 text.
func validUTF8(b []byte) bool {
	var s utf8State
	return s.write(b) && s.complete()
}
