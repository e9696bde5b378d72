package websocket

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

func TestUTF8Cases(t *testing.T) {
	tests := []struct {
		in    string
		valid bool
	}{
		{"", true},
		{"plain ascii, longer than eight bytes", true},
		{"κόσμε", true},
		{"\u0080\u07ff\u0800\uffff\U00010000\U0010ffff", true},
		{"\ud7ff\ue000", true},
		{"\xc0\x80", false},         // overlong NUL
		{"\xc1\xbf", false},         // overlong
		{"\xe0\x80\x80", false},     // overlong
		{"\xe0\x9f\xbf", false},     // overlong
		{"\xf0\x8f\xbf\xbf", false}, // overlong
		{"\xed\xa0\x80", false},     // surrogate D800
		{"\xed\xbf\xbf", false},     // surrogate DFFF
		{"\xf4\x90\x80\x80", false}, // above U+10FFFF
		{"\xf5\x80\x80\x80", false},
		{"\xff", false},
		{"\x80", false},
		{"abc\xe2\x82", false}, // truncated
		{"12345678\xce", false},
		{"\xce\xbaxxxxxxxxxxxxxxxxxxxx\xed\xa0\x80", false},
	}
	for _, tc := range tests {
		if got := validUTF8([]byte(tc.in)); got != tc.valid {
			t.Errorf("validUTF8(%q): got %v, want %v", tc.in, got, tc.valid)
		}
		if got := utf8.ValidString(tc.in); got != tc.valid {
			t.Errorf("table error: utf8.ValidString(%q) = %v", tc.in, got)
		}
	}
}

// utf8Sample returns random bytes biased to the interesting ranges.
func utf8Sample(rng *rand.Rand, n int) []byte {
	interesting := []byte{0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
		0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff}
	b := make([]byte, n)
	for i := range b {
		if rng.IntN(3) == 0 {
			b[i] = byte(rng.Uint32())
		} else {
			b[i] = interesting[rng.IntN(len(interesting))]
		}
	}
	if rng.IntN(2) == 0 { // valid text with one corruption
		s := []rune("aκό日🙂\u07ff\uffff\U0010ffff")
		b = b[:0]
		for range n {
			b = utf8.AppendRune(b, s[rng.IntN(len(s))])
		}
		if len(b) > 0 && rng.IntN(2) == 0 {
			b[rng.IntN(len(b))] = interesting[rng.IntN(len(interesting))]
		}
	}
	return b
}

// TestUTF8MatchesStdlib compares the streaming validator, fed in random
// pieces, with unicode/utf8.Valid.
func TestUTF8MatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for range 20000 {
		b := utf8Sample(rng, rng.IntN(24))
		var s utf8State
		ok := true
		for rest := b; len(rest) > 0 && ok; {
			n := min(len(rest), 1+rng.IntN(10))
			ok = s.write(rest[:n])
			rest = rest[n:]
		}
		if got, want := ok && s.complete(), utf8.Valid(b); got != want {
			t.Fatalf("% x: got %v, want %v", b, got, want)
		}
	}
}

// validPrefix reports whether some completion of up to 3 bytes makes b
// valid UTF-8: the reference for failing fast.
func validPrefix(b []byte) bool {
	if utf8.Valid(b) {
		return true
	}
	cont := []byte{0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf}
	var try func(p []byte, depth int) bool
	try = func(p []byte, depth int) bool {
		if utf8.Valid(p) {
			return true
		}
		if depth == 0 {
			return false
		}
		for _, c := range cont {
			if try(append(p[:len(p):len(p)], c), depth-1) {
				return true
			}
		}
		return false
	}
	return try(b, 3)
}

// TestUTF8FailsFast checks the validator rejects exactly at the first byte
// after which no continuation can make the input valid.
func TestUTF8FailsFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 5000 {
		b := utf8Sample(rng, 1+rng.IntN(12))
		var s utf8State
		for i := range b {
			got := s.write(b[i : i+1])
			if want := validPrefix(b[:i+1]); got != want {
				t.Fatalf("% x byte %d: got valid prefix %v, want %v", b, i, got, want)
			}
			if !got {
				break
			}
		}
	}
}

func BenchmarkUTF8ASCII(b *testing.B) {
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = 'a' + byte(i%26)
	}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if !validUTF8(buf) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkUTF8Mixed(b *testing.B) {
	buf := []byte{}
	for len(buf) < 4096 {
		buf = append(buf, "κόσμε hello 日本語 🙂 "...)
	}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if !validUTF8(buf) {
			b.Fatal("invalid")
		}
	}
}

// TestUTF8TablesMatchTable37 checks the DFA tables against the well-formed
// byte sequences of Unicode Table 3-7, for every byte in every state.
func TestUTF8TablesMatchTable37(t *testing.T) {
	in := func(c, lo, hi byte) bool { return c >= lo && c <= hi }
	next := func(s utf8State, c byte) utf8State {
		switch s {
		case utf8Accept:
			switch {
			case c < 0x80:
				return utf8Accept
			case in(c, 0xC2, 0xDF):
				return utf8Need1
			case c == 0xE0:
				return utf8AfterE0
			case in(c, 0xE1, 0xEC), in(c, 0xEE, 0xEF):
				return utf8Need2
			case c == 0xED:
				return utf8AfterED
			case c == 0xF0:
				return utf8AfterF0
			case in(c, 0xF1, 0xF3):
				return utf8Need3
			case c == 0xF4:
				return utf8AfterF4
			}
		case utf8Need1:
			if in(c, 0x80, 0xBF) {
				return utf8Accept
			}
		case utf8Need2:
			if in(c, 0x80, 0xBF) {
				return utf8Need1
			}
		case utf8Need3:
			if in(c, 0x80, 0xBF) {
				return utf8Need2
			}
		case utf8AfterE0:
			if in(c, 0xA0, 0xBF) {
				return utf8Need1
			}
		case utf8AfterED:
			if in(c, 0x80, 0x9F) {
				return utf8Need1
			}
		case utf8AfterF0:
			if in(c, 0x90, 0xBF) {
				return utf8Need2
			}
		case utf8AfterF4:
			if in(c, 0x80, 0x8F) {
				return utf8Need2
			}
		}
		return utf8Reject
	}
	for s := utf8Accept; s <= utf8AfterF4; s++ {
		for c := range 256 {
			want := next(s, byte(c))
			got := utf8State(utf8Transitions[int(s)*utf8Classes+int(utf8ByteClass[c])])
			if got != want {
				t.Fatalf("state %d byte %#x: got %d, want %d", s, c, got, want)
			}
		}
	}
}
