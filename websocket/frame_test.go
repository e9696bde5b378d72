package websocket

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestAppendFrameRFC6455Examples(t *testing.T) {
	hello := []byte("Hello")
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"unmasked text", appendFrame(nil, opText, true, false, hello, false, [4]byte{}),
			[]byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"masked text", appendFrame(nil, opText, true, false, hello, true, [4]byte{0x37, 0xfa, 0x21, 0x3d}),
			[]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		{"first fragment", appendFrame(nil, opText, false, false, []byte("Hel"), false, [4]byte{}),
			[]byte{0x01, 0x03, 0x48, 0x65, 0x6c}},
		{"last fragment", appendFrame(nil, opContinuation, true, false, []byte("lo"), false, [4]byte{}),
			[]byte{0x80, 0x02, 0x6c, 0x6f}},
		{"ping", appendFrame(nil, opPing, true, false, hello, false, [4]byte{}),
			[]byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"masked pong", appendFrame(nil, opPong, true, false, hello, true, [4]byte{0x37, 0xfa, 0x21, 0x3d}),
			[]byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		{"compressed", appendFrame(nil, opText, true, true, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, false, [4]byte{}),
			[]byte{0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}},
		{"appends", appendFrame([]byte("xy"), opBinary, true, false, nil, false, [4]byte{}),
			[]byte{'x', 'y', 0x82, 0x00}},
	}
	for _, tc := range tests {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: got % x, want % x", tc.name, tc.got, tc.want)
		}
	}
}

// TestAppendFrameLengths checks the minimal length encoding at every boundary.
func TestAppendFrameLengths(t *testing.T) {
	tests := []struct {
		n    int
		want []byte // header after byte 0
	}{
		{0, []byte{0x00}},
		{125, []byte{0x7d}},
		{126, []byte{0x7e, 0x00, 0x7e}},
		{65535, []byte{0x7e, 0xff, 0xff}},
		{65536, []byte{0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
	}
	for _, tc := range tests {
		payload := make([]byte, tc.n)
		for _, mask := range []bool{false, true} {
			f := appendFrame(nil, opBinary, true, false, payload, mask, [4]byte{1, 2, 3, 4})
			want := append([]byte(nil), tc.want...)
			if mask {
				want[0] |= maskBit
				want = append(want, 1, 2, 3, 4)
			}
			if got := f[1 : 1+len(want)]; !bytes.Equal(got, want) {
				t.Errorf("n=%d mask=%v: got header % x, want % x", tc.n, mask, got, want)
			}
			if h := headerSize(tc.n, mask); len(f) != h+tc.n || h != 1+len(want) {
				t.Errorf("n=%d mask=%v: got frame %d bytes, headerSize %d, want %d", tc.n, mask, len(f), h, 1+len(want)+tc.n)
			}
		}
	}
}

// TestAppendFrameKeepsPayload checks masking works on the copy only.
func TestAppendFrameKeepsPayload(t *testing.T) {
	payload := []byte("do not touch")
	appendFrame(nil, opText, true, false, payload, true, [4]byte{9, 9, 9, 9})
	if string(payload) != "do not touch" {
		t.Fatalf("got payload %q modified", payload)
	}
}

func maskNaive(key [4]byte, pos int, b []byte) int {
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}

// TestMaskBytes compares the word-at-a-time masking with a byte loop at
// every length and key offset, and checks that masking in pieces equals
// masking at once.
func TestMaskBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for n := range 100 {
		for pos := range 4 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			want := bytes.Clone(b)
			wantPos := maskNaive(key, pos, want)
			gotPos := maskBytes(key, pos, b)
			if !bytes.Equal(b, want) || gotPos != wantPos {
				t.Fatalf("n=%d pos=%d: got % x pos %d, want % x pos %d", n, pos, b, gotPos, want, wantPos)
			}
		}
	}
	b := make([]byte, 1000)
	for i := range b {
		b[i] = byte(i)
	}
	want := bytes.Clone(b)
	maskNaive(key, 0, want)
	pos := 0
	for rest := b; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(40))
		pos = maskBytes(key, pos, rest[:n])
		rest = rest[n:]
	}
	if !bytes.Equal(b, want) {
		t.Fatal("got pieces masked differently from the feedWhole")
	}
}

func BenchmarkMaskBytes(b *testing.B) {
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		maskBytes([4]byte{1, 2, 3, 4}, 1, buf)
	}
}

// smallFrameSink answers each message with a frame appended to a reused
// buffer: the server's echo hot path.
type smallFrameSink struct {
	out []byte
}

func (s *smallFrameSink) onMessage(typ MessageType, data []byte) error {
	s.out = appendFrame(s.out[:0], opcode(typ), true, false, data, false, [4]byte{})
	return nil
}
func (s *smallFrameSink) onChunk(MessageType, []byte, bool) error { return nil }
func (s *smallFrameSink) onPing([]byte) error                     { return nil }
func (s *smallFrameSink) onPong([]byte) error                     { return nil }
func (s *smallFrameSink) onClose(StatusCode, string) error        { return nil }

// smallFrameFixture returns a masked 64-byte binary frame, a buffer to copy
// it into, a parser and a sink with a warm output buffer.
func smallFrameFixture() (frame, buf []byte, p *parser, s *smallFrameSink) {
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte(i)
	}
	frame = appendFrame(nil, opBinary, true, false, payload, true, [4]byte{0xa, 0xb, 0xc, 0xd})
	p = &parser{}
	p.init(parserConfig{server: true, readLimit: 1 << 20})
	return frame, make([]byte, len(frame)), p, &smallFrameSink{out: make([]byte, 0, 128)}
}

func BenchmarkParseAndFrameSmall(b *testing.B) {
	frame, buf, p, s := smallFrameFixture()
	defer p.release()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, frame) // feed unmasks in place
		if err := p.feed(buf, s); err != nil {
			b.Fatal(err)
		}
	}
	if len(s.out) != 66 {
		b.Fatalf("got reply %d bytes, want 66", len(s.out))
	}
}

// TestParseAndFrameSmallAllocs pins the hot path at zero allocations:
// parsing a feedWhole small frame and framing the reply.
func TestParseAndFrameSmallAllocs(t *testing.T) {
	frame, buf, p, s := smallFrameFixture()
	defer p.release()
	allocs := testing.AllocsPerRun(1000, func() {
		copy(buf, frame)
		if err := p.feed(buf, s); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("got %v allocs per message, want 0", allocs)
	}
	if want := appendFrame(nil, opBinary, true, false, frame[6:], false, [4]byte{}); len(s.out) != len(want) {
		t.Fatalf("got reply %d bytes, want %d", len(s.out), len(want))
	}
}
