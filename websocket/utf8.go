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
// prefix. Between sequences, bytes are ASCII-checked eight at a time; other
// bytes take two table lookups.
func (s *utf8State) write(b []byte) bool {
	st := *s
	for i := 0; i < len(b); i++ {
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
		st = utf8State(utf8Transitions[int(st)*utf8Classes+int(utf8ByteClass[b[i]])])
		if st == utf8Reject {
			*s = st
			return false
		}
	}
	*s = st
	return true
}

// complete reports whether the input so far is valid and ends on a sequence
// boundary, i.e. it is a whole valid UTF-8 text.
func (s utf8State) complete() bool { return s == utf8Accept }

// utf8Classes is the number of byte classes: bytes that every state treats
// alike share a class.
const utf8Classes = 12

// utf8ByteClass maps a byte to its class: 0 ASCII, 1 80-8F, 2 90-9F,
// 3 A0-BF, 4 never valid (C0, C1, F5-FF), 5 C2-DF, 6 E0, 7 E1-EC and EE-EF,
// 8 ED, 9 F0, 10 F1-F3, 11 F4. Tables are strings so they are constant.
const utf8ByteClass = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 00-0F
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 10-1F
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 20-2F
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 30-3F
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 40-4F
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 50-5F
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 60-6F
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 70-7F
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" + // 80-8F
	"\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02" + // 90-9F
	"\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03" + // A0-AF
	"\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03" + // B0-BF
	"\x04\x04\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05" + // C0-CF
	"\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05" + // D0-DF
	"\x06\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x08\x07\x07" + // E0-EF
	"\x09\x0a\x0a\x0a\x0b\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04" // F0-FF

// utf8Transitions[state*utf8Classes+class] is the next state.
const utf8Transitions = "" +
	"\x00\x01\x01\x01\x01\x02\x05\x03\x06\x07\x04\x08" + // utf8Accept
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" + // utf8Reject
	"\x01\x00\x00\x00\x01\x01\x01\x01\x01\x01\x01\x01" + // utf8Need1
	"\x01\x02\x02\x02\x01\x01\x01\x01\x01\x01\x01\x01" + // utf8Need2
	"\x01\x03\x03\x03\x01\x01\x01\x01\x01\x01\x01\x01" + // utf8Need3
	"\x01\x01\x01\x02\x01\x01\x01\x01\x01\x01\x01\x01" + // utf8AfterE0
	"\x01\x02\x02\x01\x01\x01\x01\x01\x01\x01\x01\x01" + // utf8AfterED
	"\x01\x01\x03\x03\x01\x01\x01\x01\x01\x01\x01\x01" + // utf8AfterF0
	"\x01\x03\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" // utf8AfterF4

// validUTF8 reports whether b is a complete valid UTF-8 text.
func validUTF8(b []byte) bool {
	var s utf8State
	return s.write(b) && s.complete()
}
