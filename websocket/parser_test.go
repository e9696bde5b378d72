package websocket

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// frameEvent is one sink callback, recorded for comparison.
type frameEvent struct {
	kind string // "msg", "ping", "pong", "close"
	typ  MessageType
	data string
	code StatusCode
}

func (e frameEvent) String() string {
	d := e.data
	if len(d) > 40 {
		d = fmt.Sprintf("%q...(%d bytes)", d[:40], len(d))
	} else {
		d = fmt.Sprintf("%q", d)
	}
	return fmt.Sprintf("%s(%d,%s,%d)", e.kind, e.typ, d, e.code)
}

// recordSink is a frameSink that records events; failOn makes the callback of
// that kind return errSink.
type recordSink struct {
	events []frameEvent
	failOn string
}

var errSink = errors.New("sink error")

func (r *recordSink) add(e frameEvent) error {
	r.events = append(r.events, e)
	if e.kind == r.failOn {
		return errSink
	}
	return nil
}

func (r *recordSink) onMessage(typ MessageType, data []byte) error {
	return r.add(frameEvent{kind: "msg", typ: typ, data: string(data)})
}
func (r *recordSink) onChunk(typ MessageType, data []byte, last bool) error {
	kind := "chunk"
	if last {
		kind = "last"
	}
	return r.add(frameEvent{kind: kind, typ: typ, data: string(data)})
}
func (r *recordSink) onPing(p []byte) error { return r.add(frameEvent{kind: "ping", data: string(p)}) }
func (r *recordSink) onPong(p []byte) error { return r.add(frameEvent{kind: "pong", data: string(p)}) }
func (r *recordSink) onClose(code StatusCode, reason string) error {
	return r.add(frameEvent{kind: "close", data: reason, code: code})
}

// feedSplit cuts input into the pieces handed to feed.
type feedSplit struct {
	name  string
	split func(b []byte) [][]byte
}

func feedWhole(b []byte) [][]byte { return [][]byte{b} }

func feedBytewise(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

func randomSplit(seed uint64) func(b []byte) [][]byte {
	return func(b []byte) [][]byte {
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		var out [][]byte
		for len(b) > 0 {
			n := min(len(b), rng.IntN(17)) // includes empty pieces
			if rng.IntN(8) == 0 {
				n = min(len(b), rng.IntN(len(b)+1))
			}
			out = append(out, b[:n])
			b = b[n:]
		}
		return out
	}
}

// splitters is every way a table test feeds its input.
func feedSplits() []feedSplit {
	s := []feedSplit{{"whole", feedWhole}, {"bytewise", feedBytewise}}
	for seed := range uint64(8) {
		s = append(s, feedSplit{fmt.Sprintf("random%d", seed), randomSplit(seed)})
	}
	return s
}

// run feeds a copy of input (feed unmasks in place) split by split.
func runParser(cfg parserConfig, input []byte, split func([]byte) [][]byte) ([]frameEvent, error) {
	var p parser
	p.init(cfg)
	defer p.release()
	var r recordSink
	for _, piece := range split(bytes.Clone(input)) {
		if err := p.feed(piece, &r); err != nil {
			return r.events, err
		}
	}
	return r.events, nil
}

var coreTestKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// frm builds a frame as a client (masked) would send it to the server.
func clientFrame(op opcode, fin bool, payload string) []byte {
	return appendFrame(nil, op, fin, false, []byte(payload), true, coreTestKey)
}

// rawFrame builds a frame from raw first byte, with a masked payload and the
// given length encoding: lenBytes 0 (7-bit), 2 or 8.
func rawClientFrame(b0 byte, payload []byte, lenBytes int) []byte {
	b := []byte{b0}
	switch lenBytes {
	case 0:
		b = append(b, maskBit|byte(len(payload)))
	case 2:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(payload)))
	}
	b = append(b, coreTestKey[:]...)
	start := len(b)
	b = append(b, payload...)
	maskBytes(coreTestKey, 0, b[start:])
	return b
}

func concatFrames(frames ...[]byte) []byte { return slices.Concat(frames...) }

func closeFrameBody(code uint16, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, code)) + reason
}

func msgEvent(typ MessageType, data string) frameEvent {
	return frameEvent{kind: "msg", typ: typ, data: data}
}

type parserCase struct {
	name   string
	cfg    *parserConfig // nil: parserServerCfg
	input  []byte
	want   []frameEvent
	status StatusCode // 0: no error
}

var parserServerCfg = parserConfig{server: true, readLimit: 1 << 20}

func parserCases() []parserCase {
	long := strings.Repeat("x", 70000)
	bad := "caf\xc3" // truncated 2-byte sequence
	cs := []parserCase{
		{name: "text", input: clientFrame(opText, true, "Hello"), want: []frameEvent{msgEvent(TextMessage, "Hello")}},
		{name: "binary", input: clientFrame(opBinary, true, "\x00\xff"), want: []frameEvent{msgEvent(BinaryMessage, "\x00\xff")}},
		{name: "empty text", input: clientFrame(opText, true, ""), want: []frameEvent{msgEvent(TextMessage, "")}},
		{name: "empty binary", input: clientFrame(opBinary, true, ""), want: []frameEvent{msgEvent(BinaryMessage, "")}},
		{name: "empty fragments", input: concatFrames(clientFrame(opText, false, ""), clientFrame(opContinuation, true, "")),
			want: []frameEvent{msgEvent(TextMessage, "")}},
		{name: "many frames", input: concatFrames(clientFrame(opText, true, "a"), clientFrame(opBinary, true, "b"), clientFrame(opPing, true, "p"), clientFrame(opPong, true, "q")),
			want: []frameEvent{msgEvent(TextMessage, "a"), msgEvent(BinaryMessage, "b"), {kind: "ping", data: "p"}, {kind: "pong", data: "q"}}},
		{name: "fragmented with control frames", input: concatFrames(clientFrame(opText, false, "Hel"), clientFrame(opPing, true, "1"),
			clientFrame(opContinuation, false, ""), clientFrame(opPong, true, "2"), clientFrame(opContinuation, true, "lo")),
			want: []frameEvent{{kind: "ping", data: "1"}, {kind: "pong", data: "2"}, msgEvent(TextMessage, "Hello")}},
		{name: "utf8 split across fragments", input: concatFrames(clientFrame(opText, false, "κό\xcf"), clientFrame(opContinuation, true, "\x83με")),
			want: []frameEvent{msgEvent(TextMessage, "κόσμε")}},
		{name: "16-bit length", input: clientFrame(opBinary, true, strings.Repeat("a", 256)), want: []frameEvent{msgEvent(BinaryMessage, strings.Repeat("a", 256))}},
		{name: "64-bit length", input: clientFrame(opBinary, true, long), want: []frameEvent{msgEvent(BinaryMessage, long)}},
		{name: "non-minimal 16-bit length", input: rawClientFrame(0x82, []byte("abc"), 2), want: []frameEvent{msgEvent(BinaryMessage, "abc")}},
		{name: "non-minimal 64-bit length", input: rawClientFrame(0x82, []byte("abc"), 8), want: []frameEvent{msgEvent(BinaryMessage, "abc")}},
		{name: "ping 125", input: clientFrame(opPing, true, strings.Repeat("p", 125)), want: []frameEvent{{kind: "ping", data: strings.Repeat("p", 125)}}},
		{name: "ping empty", input: clientFrame(opPing, true, ""), want: []frameEvent{{kind: "ping"}}},

		{name: "64-bit length msb", input: []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, status: 1002},
		{name: "unmasked to server", input: appendFrame(nil, opText, true, false, []byte("hi"), false, coreTestKey), status: 1002},
		{name: "masked to client", cfg: &parserConfig{}, input: clientFrame(opText, true, "hi"), status: 1002},
		{name: "rsv1 without extension", input: rawClientFrame(0xC1, []byte("hi"), 0), status: 1002},
		{name: "rsv2", input: rawClientFrame(0xA1, []byte("hi"), 0), status: 1002},
		{name: "rsv3", input: rawClientFrame(0x91, []byte("hi"), 0), status: 1002},
		{name: "rsv2 with deflate", cfg: &deflateServerCfg, input: rawClientFrame(0xA1, []byte("hi"), 0), status: 1002},
		{name: "rsv1 on continuation", cfg: &deflateServerCfg,
			input: concatFrames(clientFrame(opBinary, false, "a"), rawClientFrame(0xC0, []byte("b"), 0)), status: 1002},
		{name: "rsv1 on ping", cfg: &deflateServerCfg, input: rawClientFrame(0xC9, nil, 0), status: 1002},
		{name: "control 126 bytes", input: rawClientFrame(0x89, make([]byte, 126), 2), status: 1002},
		{name: "control 126 bytes 7-bit", input: []byte{0x89, 0xFE, 0, 0x7E, 1, 2, 3, 4}, status: 1002},
		{name: "fragmented ping", input: clientFrame(opPing, false, "x"), status: 1002},
		{name: "fragmented close", input: clientFrame(opClose, false, ""), status: 1002},
		{name: "continuation without message", input: clientFrame(opContinuation, true, "x"), status: 1002},
		{name: "continuation after message", input: concatFrames(clientFrame(opText, true, "a"), clientFrame(opContinuation, true, "b")),
			want: []frameEvent{msgEvent(TextMessage, "a")}, status: 1002},
		{name: "text inside fragmented", input: concatFrames(clientFrame(opText, false, "a"), clientFrame(opText, true, "b")), status: 1002},
		{name: "binary inside fragmented", input: concatFrames(clientFrame(opBinary, false, "a"), clientFrame(opBinary, true, "b")), status: 1002},

		{name: "invalid utf8", input: clientFrame(opText, true, "\xff"), status: 1007},
		{name: "truncated utf8", input: clientFrame(opText, true, bad), status: 1007},
		{name: "truncated utf8 fragmented", input: concatFrames(clientFrame(opText, false, bad), clientFrame(opContinuation, true, "")), status: 1007},
		{name: "invalid utf8 before fin", input: clientFrame(opText, false, "ok\xc0\xafmore"), status: 1007},
		{name: "surrogate", input: clientFrame(opText, true, "\xed\xa0\x80"), status: 1007},
		{name: "binary not utf8 checked", input: clientFrame(opBinary, true, "\xff"), want: []frameEvent{msgEvent(BinaryMessage, "\xff")}},

		{name: "close empty", input: clientFrame(opClose, true, ""), want: []frameEvent{{kind: "close", code: 1005}}},
		{name: "close code reason", input: clientFrame(opClose, true, closeFrameBody(1000, "bye")), want: []frameEvent{{kind: "close", code: 1000, data: "bye"}}},
		{name: "close 1 byte", input: clientFrame(opClose, true, "\x03"), status: 1002},
		{name: "close bad reason", input: clientFrame(opClose, true, closeFrameBody(1000, "\xff")), status: 1007},
		{name: "close 123-byte reason", input: clientFrame(opClose, true, closeFrameBody(4000, strings.Repeat("r", 123))),
			want: []frameEvent{{kind: "close", code: 4000, data: strings.Repeat("r", 123)}}},
		{name: "input after close ignored", input: concatFrames(clientFrame(opClose, true, ""), clientFrame(opText, true, "late"), []byte{0xFF, 0xFF}),
			want: []frameEvent{{kind: "close", code: 1005}}},

		{name: "over limit header only", cfg: &parserConfig{server: true, readLimit: 10}, input: clientFrame(opBinary, true, strings.Repeat("a", 11))[:8], status: 1009},
		{name: "at limit", cfg: &parserConfig{server: true, readLimit: 10}, input: clientFrame(opBinary, true, strings.Repeat("a", 10)),
			want: []frameEvent{msgEvent(BinaryMessage, strings.Repeat("a", 10))}},
		{name: "over limit fragmented", cfg: &parserConfig{server: true, readLimit: 10},
			input: concatFrames(clientFrame(opBinary, false, "123456"), clientFrame(opContinuation, true, "12345")), status: 1009},
		{name: "control frames not counted", cfg: &parserConfig{server: true, readLimit: 3},
			input: concatFrames(clientFrame(opBinary, false, "12"), clientFrame(opPing, true, "pingping"), clientFrame(opContinuation, true, "3")),
			want:  []frameEvent{{kind: "ping", data: "pingping"}, msgEvent(BinaryMessage, "123")}},
	}
	for _, op := range []opcode{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		cs = append(cs, parserCase{name: fmt.Sprintf("reserved opcode %d", op), input: clientFrame(op, true, ""), status: 1002})
	}
	for _, c := range []struct {
		code uint16
		ok   bool
	}{
		{0, false}, {999, false}, {1000, true}, {1001, true}, {1002, true}, {1003, true}, {1004, false},
		{1005, false}, {1006, false}, {1007, true}, {1011, true}, {1012, true}, {1013, true}, {1014, true},
		{1015, false}, {1016, false}, {1100, false}, {2000, false}, {2999, false}, {3000, true}, {3999, true},
		{4000, true}, {4999, true}, {5000, false}, {65535, false},
	} {
		pc := parserCase{name: fmt.Sprintf("close code %d", c.code), input: clientFrame(opClose, true, closeFrameBody(c.code, ""))}
		if c.ok {
			pc.want = []frameEvent{{kind: "close", code: StatusCode(c.code)}}
		} else {
			pc.status = 1002
		}
		cs = append(cs, pc)
	}
	return cs
}

var deflateServerCfg = parserConfig{server: true, readLimit: 1 << 20, deflate: &deflateParams{}}

func TestParserTable(t *testing.T) {
	for _, tc := range parserCases() {
		cfg := parserServerCfg
		if tc.cfg != nil {
			cfg = *tc.cfg
		}
		for _, sp := range feedSplits() {
			t.Run(tc.name+"/"+sp.name, func(t *testing.T) {
				events, err := runParser(cfg, tc.input, sp.split)
				checkParse(t, events, err, tc.want, tc.status)
			})
		}
	}
}

// checkRun compares a parser run with the expected events and close code.
func checkParse(t *testing.T, events []frameEvent, err error, want []frameEvent, status StatusCode) {
	t.Helper()
	if status == 0 && err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if status != 0 {
		if got := CloseStatus(err); got != status {
			t.Fatalf("got error %v (status %d), want status %d", err, got, status)
		}
	}
	if !slices.Equal(events, want) {
		i := 0
		for i < min(len(events), len(want)) && events[i] == want[i] {
			i++
		}
		if len(events) < 10 && len(want) < 10 {
			t.Fatalf("got events %v, want %v", events, want)
		}
		t.Fatalf("got %d events, want %d; first difference at %d: got %v, want %v",
			len(events), len(want), i, events[i:min(i+3, len(events))], want[i:min(i+3, len(want))])
	}
}

// TestParserRFC6455Examples decodes the examples of RFC 6455 §5.7.
func TestParserRFC6455Examples(t *testing.T) {
	b256 := make([]byte, 256)
	b64k := make([]byte, 65536)
	for i := range b64k {
		b64k[i] = byte(i * 7)
	}
	copy(b256, b64k)
	tests := []struct {
		name   string
		server bool
		input  []byte
		want   []frameEvent
	}{
		{"unmasked text", false, []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}, []frameEvent{msgEvent(TextMessage, "Hello")}},
		{"masked text", true, []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, []frameEvent{msgEvent(TextMessage, "Hello")}},
		{"fragmented text", false, []byte{0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}, []frameEvent{msgEvent(TextMessage, "Hello")}},
		{"unmasked ping", false, []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}, []frameEvent{{kind: "ping", data: "Hello"}}},
		{"masked pong", true, []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, []frameEvent{{kind: "pong", data: "Hello"}}},
		{"256 bytes", false, append([]byte{0x82, 0x7E, 0x01, 0x00}, b256...), []frameEvent{msgEvent(BinaryMessage, string(b256))}},
		{"64 KiB", false, append([]byte{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}, b64k...), []frameEvent{msgEvent(BinaryMessage, string(b64k))}},
	}
	for _, tc := range tests {
		for _, sp := range feedSplits() {
			t.Run(tc.name+"/"+sp.name, func(t *testing.T) {
				events, err := runParser(parserConfig{server: tc.server}, tc.input, sp.split)
				checkParse(t, events, err, tc.want, 0)
			})
		}
	}
}

// TestParserUTF8FailFast checks that invalid text fails on the byte that
// makes it invalid, before the frame or the message is complete.
func TestParserUTF8FailFast(t *testing.T) {
	payload := "valid prefix κόσμε \xf4\x90 rest that never matters"
	bad := strings.Index(payload, "\xf4\x90") + 1 // 0x90 cannot follow 0xF4
	input := clientFrame(opText, false, payload)
	hdr := len(input) - len(payload)
	var p parser
	p.init(parserServerCfg)
	defer p.release()
	var r recordSink
	for i := range input {
		err := p.feed(input[i:i+1], &r)
		if i < hdr+bad {
			if err != nil {
				t.Fatalf("byte %d: got error %v before the invalid byte %d", i, err, hdr+bad)
			}
			continue
		}
		if got := CloseStatus(err); got != StatusInvalidFramePayloadData {
			t.Fatalf("byte %d: got %v, want 1007 on the invalid byte", i, err)
		}
		return
	}
	t.Fatal("never failed")
}

// TestParserLimitBeforePayload checks the read limit is enforced from the
// header alone, before any payload is buffered.
func TestParserLimitBeforePayload(t *testing.T) {
	var p parser
	p.init(parserConfig{server: true, readLimit: 1000})
	defer p.release()
	hdr := []byte{0x82, 0xFF, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4} // 2 GiB frame
	err := p.feed(hdr, &recordSink{})
	if got := CloseStatus(err); got != StatusMessageTooBig {
		t.Fatalf("got %v, want 1009", err)
	}
	if p.msg != nil {
		t.Fatalf("got a %d-byte buffer, want none", cap(*p.msg))
	}
}

// TestParserSinkError checks a sink error is returned as is.
func TestParserSinkError(t *testing.T) {
	for _, kind := range []string{"msg", "ping", "pong", "close"} {
		var p parser
		p.init(parserServerCfg)
		r := &recordSink{failOn: kind}
		input := concatFrames(clientFrame(opText, true, "a"), clientFrame(opPing, true, "b"), clientFrame(opPong, true, "c"), clientFrame(opClose, true, ""))
		err := p.feed(input, r)
		if !errors.Is(err, errSink) {
			t.Errorf("%s: got %v, want the sink error", kind, err)
		}
		p.release()
	}
}

// TestParserIdleHoldsNoBuffers checks that after messages split across
// reads every pooled buffer is returned, and the parser stays small.
func TestParserIdleHoldsNoBuffers(t *testing.T) {
	var p parser
	p.init(deflateServerCfg)
	defer p.release()
	input := concatFrames(clientFrame(opText, false, "Hel"), clientFrame(opPing, true, "1"), clientFrame(opContinuation, true, "lo"),
		compressedFrame(true, "hello hello hello"))
	var r recordSink
	for _, piece := range feedBytewise(input) {
		if err := p.feed(piece, &r); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.events) != 3 {
		t.Fatalf("got %d events, want 3", len(r.events))
	}
	if p.msg != nil || p.aux != nil {
		t.Fatalf("got buffers held while idle: msg=%v aux=%v", p.msg != nil, p.aux != nil)
	}
	if size := unsafeSizeofParser(); size > 56 {
		t.Fatalf("got parser size %d bytes, want ≤ 56 (part of every Conn)", size)
	}
}

// TestParserInPlaceDelivery checks a feedWhole frame is delivered as a
// sub-slice of the input, not a copy.
func TestParserInPlaceDelivery(t *testing.T) {
	input := clientFrame(opBinary, true, "zero copy")
	var p parser
	p.init(parserServerCfg)
	var got []byte
	s := &funcSink{msg: func(_ MessageType, d []byte) error { got = d; return nil }}
	if err := p.feed(input, s); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || &got[0] != &input[len(input)-len(got)] {
		t.Fatal("got a copy, want a sub-slice of the input")
	}
}

// funcSink adapts functions to frameSink; nil funcs accept silently.
type funcSink struct {
	msg func(MessageType, []byte) error
}

func (f *funcSink) onMessage(t MessageType, d []byte) error {
	if f.msg != nil {
		return f.msg(t, d)
	}
	return nil
}
func (f *funcSink) onChunk(MessageType, []byte, bool) error { return nil }
func (f *funcSink) onPing([]byte) error                     { return nil }
func (f *funcSink) onPong([]byte) error                     { return nil }
func (f *funcSink) onClose(StatusCode, string) error        { return nil }

// TestParserRandomMessages round-trips random messages of all sizes, mixed
// with control frames, through every feedSplit.
func TestParserRandomMessages(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var input []byte
	var want []frameEvent
	for range 60 {
		n := []int{0, 1, 125, 126, 127, 65535, 65536, rng.IntN(300), rng.IntN(70000)}[rng.IntN(9)]
		data := make([]byte, n)
		for i := range data {
			data[i] = byte('a' + rng.IntN(26))
		}
		typ := MessageType(1 + rng.IntN(2))
		frags := 1 + rng.IntN(3)
		for f := range frags {
			part := data[f*n/frags : (f+1)*n/frags]
			op := opContinuation
			if f == 0 {
				op = opcode(typ)
			}
			last := f == frags-1
			input = appendFrame(input, op, last, false, part, true, [4]byte{byte(f), 2, 3, 4})
			if last {
				want = append(want, msgEvent(typ, string(data)))
			}
			if rng.IntN(3) == 0 {
				input = appendFrame(input, opPing, true, false, []byte("p"), true, coreTestKey)
				want = append(want, frameEvent{kind: "ping", data: "p"})
			}
		}
	}
	for _, sp := range feedSplits()[:4] {
		t.Run(sp.name, func(t *testing.T) {
			events, err := runParser(parserServerCfg, input, sp.split)
			checkParse(t, events, err, want, 0)
		})
	}
}

// Compile-time check that the sinks implement the interface.
var (
	_ frameSink = (*recordSink)(nil)
	_ frameSink = (*funcSink)(nil)
)

func unsafeSizeofParser() uintptr { return unsafe.Sizeof(parser{}) }

// fuzzLimits are the read limits FuzzParser picks from.
var fuzzLimits = [...]int64{1, 16, 125, 1000, 1 << 16, 1 << 20, 5, 300}

// fuzzParserConfig decodes the mode byte: bit 0 server, bit 1 deflate,
// bit 2 context takeover, bits 3-5 the read limit.
func fuzzParserConfig(mode byte) parserConfig {
	cfg := parserConfig{server: mode&1 != 0, readLimit: fuzzLimits[mode>>3&7], contextTakeover: mode&4 != 0}
	if mode&2 != 0 {
		cfg.deflate = &deflateParams{}
	}
	return cfg
}

// checkedSink verifies every event against the parser's guarantees.
type checkedSink struct {
	t      *testing.T
	limit  int64
	events []frameEvent
}

func (s *checkedSink) onMessage(typ MessageType, data []byte) error {
	if typ != TextMessage && typ != BinaryMessage {
		s.t.Fatalf("got message type %d", typ)
	}
	if typ == TextMessage && !utf8.Valid(data) {
		s.t.Fatalf("got invalid UTF-8 text %q", data)
	}
	if int64(len(data)) > s.limit {
		s.t.Fatalf("got %d-byte message over the %d limit", len(data), s.limit)
	}
	s.events = append(s.events, msgEvent(typ, string(data)))
	return nil
}

func (s *checkedSink) control(kind string, p []byte) error {
	if len(p) > maxControlPayload {
		s.t.Fatalf("got %d-byte %s", len(p), kind)
	}
	s.events = append(s.events, frameEvent{kind: kind, data: string(p)})
	return nil
}

func (s *checkedSink) onChunk(MessageType, []byte, bool) error {
	s.t.Fatal("got a chunk from a parser not in stream mode")
	return nil
}
func (s *checkedSink) onPing(p []byte) error { return s.control("ping", p) }
func (s *checkedSink) onPong(p []byte) error { return s.control("pong", p) }
func (s *checkedSink) onClose(code StatusCode, reason string) error {
	if code != StatusNoStatusRcvd && !validCloseCode(code) || !utf8.ValidString(reason) {
		s.t.Fatalf("got close %d %q", int(code), reason)
	}
	s.events = append(s.events, frameEvent{kind: "close", code: code, data: reason})
	return nil
}

// fuzzRun feeds a copy of data in the given pieces through a checked sink.
func fuzzRun(t *testing.T, cfg parserConfig, data []byte, split func([]byte) [][]byte) ([]frameEvent, StatusCode, bool) {
	var p parser
	p.init(cfg)
	defer p.release()
	s := &checkedSink{t: t, limit: cfg.readLimit}
	for _, piece := range split(bytes.Clone(data)) {
		if err := p.feed(piece, s); err != nil {
			if CloseStatus(err) < 0 {
				t.Fatalf("got error without a close code: %v", err)
			}
			return s.events, CloseStatus(err), true
		}
	}
	return s.events, 0, false
}

// FuzzParser checks the parser never panics, never delivers invalid text
// or a message over the limit, and decodes the same events with the same
// error however the input is split.
func FuzzParser(f *testing.F) {
	for _, seed := range fuzzParserSeeds() {
		f.Add(seed.data, seed.mode)
	}
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		cfg := fuzzParserConfig(mode)
		want, wantCode, _ := fuzzRun(t, cfg, data, feedWhole)
		splits := []func([]byte) [][]byte{randomSplit(uint64(len(data)) ^ uint64(mode)<<32)}
		if len(data) <= 4096 {
			splits = append(splits, feedBytewise)
		}
		for _, split := range splits {
			got, code, _ := fuzzRun(t, cfg, data, split)
			if code != wantCode || !slices.Equal(got, want) {
				t.Fatalf("split input: got %v status %d, whole input: %v status %d", got, code, want, wantCode)
			}
		}
	})
}

type fuzzParserSeed struct {
	data []byte
	mode byte
}

// fuzzParserSeeds are valid and invalid streams for both roles, with and
// without compression; testdata/fuzz/FuzzParser holds them plus inputs
// found by fuzzing.
func fuzzParserSeeds() []fuzzParserSeed {
	unmasked := func(op opcode, fin, rsv1 bool, p string) []byte {
		return appendFrame(nil, op, fin, rsv1, []byte(p), false, [4]byte{})
	}
	var d deflater
	hello, _ := d.compress(nil, []byte(strings.Repeat("hello κόσμε ", 20)))
	const server, deflate, limit1M = 1, 2, 5 << 3
	return []fuzzParserSeed{
		{clientFrame(opText, true, "Hello"), server | limit1M},
		{concatFrames(clientFrame(opText, false, "κό\xcf"), clientFrame(opPing, true, "p"), clientFrame(opContinuation, true, "\x83με")), server | limit1M},
		{concatFrames(clientFrame(opBinary, true, strings.Repeat("b", 300)), clientFrame(opClose, true, closeFrameBody(1000, "bye"))), server | limit1M},
		{clientFrame(opText, true, "\xed\xa0\x80"), server | limit1M},
		{clientFrame(opBinary, true, strings.Repeat("z", 2000)), server | 3<<3},
		{appendFrame(nil, opText, true, true, hello, true, coreTestKey), server | deflate | limit1M},
		{appendFrame(nil, opText, true, true, hello, true, coreTestKey), server | deflate | 3<<3},
		{[]byte{0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00}, deflate | 4 | limit1M},
		{[]byte{0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00}, deflate | limit1M},
		{concatFrames(unmasked(opText, true, false, "Hello"), unmasked(opPong, true, false, ""), unmasked(opClose, true, false, "")), limit1M},
		{[]byte{0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'}, limit1M},
		{[]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, server | limit1M},
	}
}

// In stream mode an uncompressed message arrives in pieces as it is read,
// with no read limit, and invalid UTF-8 fails at the piece that has it.
func TestParserStreamMode(t *testing.T) {
	var p parser
	p.init(parserConfig{server: true, readLimit: 4, stream: true})
	in := append(clientFrame(opText, false, "héllo"), clientFrame(opContinuation, true, " wörld")...)
	var r recordSink
	for _, piece := range feedBytewise(in) {
		if err := p.feed(piece, &r); err != nil {
			t.Fatalf("feed: %v", err)
		}
	}
	var got string
	for i, e := range r.events {
		if want := "chunk"; i == len(r.events)-1 {
			want = "last"
			if e.kind != want {
				t.Fatalf("last event %+v, want kind %q", e, want)
			}
		} else if e.kind != want {
			t.Fatalf("event %d: %+v, want kind %q", i, e, want)
		}
		got += e.data
	}
	if got != "héllo wörld" || len(r.events) < 10 {
		t.Fatalf("got %q in %d pieces, want the message over the 4-byte limit, byte by byte", got, len(r.events))
	}

	p.init(parserConfig{server: true, stream: true})
	r = recordSink{}
	bad := append(clientFrame(opText, false, "ok"), clientFrame(opContinuation, false, "\xff")...)
	err := p.feed(bad, &r)
	if CloseStatus(err) != StatusInvalidFramePayloadData || len(r.events) != 1 {
		t.Fatalf("got %v after %d pieces, want 1007 after the valid piece", err, len(r.events))
	}
}
