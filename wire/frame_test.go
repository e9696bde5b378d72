package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/wire"
)

// headerLen is the size of each type's fixed part; a prefix at least this
// long of a frame with a payload is itself a valid frame.
func headerLen(t wire.FrameType) (n int, hasPayload bool) {
	switch t {
	case wire.TypeRequest:
		return 9, true
	case wire.TypeReply, wire.TypeRefresh:
		return 5, true
	case wire.TypeError:
		return 7, true
	case wire.TypePush:
		return 13, true
	}
	return 0, false
}

// TestTruncatedEveryByte decodes every prefix of every golden frame: it
// must fail, unless the type ends in a payload and the prefix still holds
// the header, in which case the payload is the shorter tail.
func TestTruncatedEveryByte(t *testing.T) {
	for _, v := range readLines[frameVector](t, "frames.jsonl") {
		if v.Error != "" {
			continue
		}
		full := unhex(t, v.Hex)
		for i := range len(full) {
			prefix := bytes.Clone(full[:i]) // exact capacity: overreads would panic
			var f wire.Frame
			err := wire.DecodeFrame(prefix, &f)
			n, hasPayload := headerLen(wire.FrameType(full[0]))
			if hasPayload && i >= n {
				if err != nil || !bytes.Equal(f.Payload, full[n:i]) {
					t.Errorf("%s[:%d]: got %x, %v; want payload %x", v.Name, i, f.Payload, err, full[n:i])
				}
				continue
			}
			if err == nil {
				t.Errorf("%s[:%d]: decoded %+v, want an error", v.Name, i, f)
			}
			if !equalFrames(&f, &wire.Frame{}) {
				t.Errorf("%s[:%d]: frame after error = %+v, want zero", v.Name, i, f)
			}
		}
	}
}

func TestHelloIDLengthLimit(t *testing.T) {
	maxID := bytes.Repeat([]byte{'u'}, 65535)
	f := wire.Frame{Type: wire.TypeHello, ConnID: maxID, UserID: maxID, Seq: 1}
	b, err := wire.AppendFrame(nil, &f)
	if err != nil {
		t.Fatalf("AppendFrame with 65535-byte ids: %v", err)
	}
	if got, want := len(b), 27+2*65535; got != want {
		t.Fatalf("len = %d, want %d", got, want)
	}
	var got wire.Frame
	if err := wire.DecodeFrame(b, &got); err != nil || !equalFrames(&got, &f) {
		t.Fatalf("round trip = %v, %v", err, got.Type)
	}
	for _, tooLong := range []wire.Frame{
		{Type: wire.TypeHello, ConnID: append(maxID, 'x')},
		{Type: wire.TypeHello, UserID: append(maxID, 'x')},
	} {
		dst := []byte("keep")
		out, err := wire.AppendFrame(dst, &tooLong)
		if !errors.Is(err, wire.ErrFieldTooLong) || string(out) != "keep" {
			t.Errorf("AppendFrame(66536-byte id) = %q, %v; want dst unchanged, ErrFieldTooLong", out, err)
		}
	}
}

func TestLargePayloadRoundTrip(t *testing.T) {
	payload := bytes.Repeat([]byte{0xab}, 1<<20)
	for _, typ := range []wire.FrameType{wire.TypeRequest, wire.TypeReply, wire.TypeError, wire.TypePush} {
		f := wire.Frame{Type: typ, Payload: payload}
		b, err := wire.AppendFrame(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		var got wire.Frame
		if err := wire.DecodeFrame(b, &got); err != nil || !equalFrames(&got, &f) {
			t.Errorf("%s: 1 MiB payload round trip failed: %v", typ, err)
		}
	}
}

func TestAppendUnknownType(t *testing.T) {
	for _, typ := range []wire.FrameType{0, 9, 255} {
		f := wire.Frame{Type: typ}
		if b, err := wire.AppendFrame([]byte("x"), &f); !errors.Is(err, wire.ErrUnknownType) || string(b) != "x" {
			t.Errorf("AppendFrame(type %d) = %q, %v; want ErrUnknownType", typ, b, err)
		}
		if b, err := wire.AppendJSON([]byte("x"), &f); !errors.Is(err, wire.ErrUnknownType) || string(b) != "x" {
			t.Errorf("AppendJSON(type %d) = %q, %v; want ErrUnknownType", typ, b, err)
		}
	}
}

func TestDecodeAliasesInput(t *testing.T) {
	b := []byte{1, 0, 0, 0, 100, 0, 0, 0, 7, 'h', 'i'}
	var f wire.Frame
	if err := wire.DecodeFrame(b, &f); err != nil {
		t.Fatal(err)
	}
	b[9] = 'H'
	if got := string(f.Payload); got != "Hi" {
		t.Fatalf("payload after editing input = %q, want %q (payload aliases input)", got, "Hi")
	}
}

func TestAllocs(t *testing.T) {
	hello := wire.Frame{Type: wire.TypeHello, ConnID: []byte("c1"), UserID: []byte("alice"), Seq: 9}
	push := wire.Frame{Type: wire.TypePush, Action: 120, Seq: 5, Payload: []byte(`{"n":5}`)}
	encodedHello, _ := wire.AppendFrame(nil, &hello)
	encodedPush, _ := wire.AppendFrame(nil, &push)
	buf := make([]byte, 0, 256)
	var f wire.Frame
	var sink error
	checks := map[string]func(){
		"DecodeFrame push":  func() { sink = wire.DecodeFrame(encodedPush, &f) },
		"DecodeFrame hello": func() { sink = wire.DecodeFrame(encodedHello, &f) },
		"DecodeFrame error": func() { sink = wire.DecodeFrame(encodedPush[:3], &f) },
		"AppendFrame push":  func() { buf, sink = wire.AppendFrame(buf[:0], &push) },
		"AppendFrame hello": func() { buf, sink = wire.AppendFrame(buf[:0], &hello) },
		"DecodeSimple":      func() { _, _, sink = wire.DecodeSimple(encodedPush) },
		"AppendSimple":      func() { buf = wire.AppendSimple(buf[:0], 110, push.Payload) },
		"AppendSimpleError": func() { buf = wire.AppendSimpleError(buf[:0], 110, "unknown action 110") },
	}
	for name, fn := range checks {
		if n := testing.AllocsPerRun(200, fn); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, n)
		}
	}
	_ = sink // results are irrelevant here; only allocations are measured
}

func TestDecodeSimpleShort(t *testing.T) {
	for n := range 4 {
		if _, _, err := wire.DecodeSimple(make([]byte, n)); !errors.Is(err, wire.ErrShortMessage) {
			t.Errorf("DecodeSimple(%d bytes) error = %v, want ErrShortMessage", n, err)
		}
	}
	if got, want := wire.ErrShortMessage.Error(), "wsgate: message shorter than 4 bytes"; got != want {
		t.Errorf("ErrShortMessage = %q, want %q (the text clients see)", got, want)
	}
}

// TestJSONInvalidUTF8Input covers inputs that are not valid UTF-8, which
// the shared vector files (JSON text) cannot hold.
func TestJSONInvalidUTF8Input(t *testing.T) {
	tests := []struct{ in, payload string }{
		{"{\"type\":\"reply\",\"text\":\"\xff\"}", "\uFFFD"},   // string fields replace it
		{"{\"type\":\"reply\",\"json\":\"\xff\"}", "\"\xff\""}, // a json value's text is kept
	}
	for _, tc := range tests {
		var f wire.Frame
		if err := wire.DecodeJSON([]byte(tc.in), &f); err != nil || string(f.Payload) != tc.payload {
			t.Errorf("DecodeJSON(%q) = %q, %v; want %q", tc.in, f.Payload, err, tc.payload)
		}
	}
}

// TestJSONReencodeVerbatimValue: a json value with whitespace is not
// canonical, so it comes back as text, with the same bytes.
func TestJSONReencodeVerbatimValue(t *testing.T) {
	var f wire.Frame
	if err := wire.DecodeJSON([]byte(`{"type":"reply","id":1,"json":{"a": 1}}`), &f); err != nil {
		t.Fatal(err)
	}
	got, _ := wire.AppendJSON(nil, &f)
	if want := `{"type":"reply","id":1,"text":"{\"a\": 1}"}`; string(got) != want {
		t.Fatalf("AppendJSON = %s, want %s", got, want)
	}
}

func TestJSONInvalidUTF8Message(t *testing.T) {
	f := wire.Frame{Type: wire.TypeError, ID: 1, Code: 4, Payload: []byte("a\xffb\xe6\x88")}
	got, _ := wire.AppendJSON(nil, &f)
	if want := `{"type":"error","id":1,"code":4,"message":"a` + "\uFFFD" + `b` + "\uFFFD\uFFFD" + `"}`; string(got) != want {
		t.Fatalf("AppendJSON = %s, want %s", got, want)
	}
}

func TestFrameWithEncodingJSON(t *testing.T) {
	in := wire.Frame{Type: wire.TypePush, Action: 120, Seq: 5, Payload: []byte(`{"n":5}`)}
	b, err := json.Marshal(struct{ F wire.Frame }{in})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"F":{"type":"push","action":120,"seq":5,"json":{"n":5}}}`; string(b) != want {
		t.Fatalf("json.Marshal = %s, want %s", b, want)
	}
	var out struct{ F wire.Frame }
	if err := json.Unmarshal(b, &out); err != nil || !equalFrames(&out.F, &in) {
		t.Fatalf("json.Unmarshal = %+v, %v; want %+v", out.F, err, in)
	}
}

func TestErrorType(t *testing.T) {
	var err error = &wire.Error{Code: wire.CodeUnknownAction, Message: "unknown action 999"}
	if got, want := err.Error(), "wsgate: unknown action 999 (unknown action)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeUnknownAction {
		t.Errorf("errors.As failed for %v", err)
	}
	if got, want := (&wire.Error{Code: 1234}).Error(), "wsgate: application error 1234"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{wire.TypeHello.String(), "hello"},
		{wire.FrameType(99).String(), "unknown"},
		{wire.CodeNotSubscribed.String(), "not subscribed"},
		{wire.ErrorCode(500).String(), "error 500"},
		{wire.CloseSlowConsumer.String(), "slow consumer"},
		{wire.CloseGoingAway.String(), "going away"},
		{wire.CloseCode(4123).String(), "close 4123"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for _, e := range []error{wire.ErrShortFrame, wire.ErrUnknownType, wire.ErrTrailingBytes,
		wire.ErrFieldTooLong, wire.ErrBadJSON, wire.ErrShortMessage} {
		if !strings.HasPrefix(e.Error(), "wsgate: ") {
			t.Errorf("error %q does not start with \"wsgate: \"", e)
		}
	}
}

func TestActionIsApp(t *testing.T) {
	for a, want := range map[wire.Action]bool{0: false, 1: false, wire.MaxSystemAction: false, wire.MinAppAction: true, 110: true, wire.SimpleErrorBit - 1: true, wire.SimpleErrorBit: false, wire.SimpleErrorBit | 110: false} {
		if got := a.IsApp(); got != want {
			t.Errorf("Action(%d).IsApp(): got %v, want %v", a, got, want)
		}
	}
}

func TestAppendPresenceReply(t *testing.T) {
	for n, want := range map[int][]byte{0: {0, 0, 0, 0}, 3: {0, 0, 0, 3}, 1 << 40: {0xff, 0xff, 0xff, 0xff}, -1: {0, 0, 0, 0}} {
		if got := wire.AppendPresenceReply(nil, n); !bytes.Equal(got, want) {
			t.Errorf("AppendPresenceReply(%d): got % x, want % x", n, got, want)
		}
	}
}
