package wire_test

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/wsgate/wsgate/wire"
)

// seedFrames adds every golden binary vector to a fuzz corpus.
func seedFrames(f *testing.F) {
	for _, v := range readLines[frameVector](f, "frames.jsonl") {
		f.Add(unhex(f, v.Hex))
	}
}

// FuzzDecodeFrame: anything DecodeFrame accepts re-encodes to the very same
// bytes (the binary form has exactly one spelling), and survives a trip
// through the JSON form when its strings are valid UTF-8.
func FuzzDecodeFrame(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr wire.Frame
		if wire.DecodeFrame(b, &fr) != nil {
			return
		}
		enc, err := wire.AppendFrame(nil, &fr)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("AppendFrame(DecodeFrame(%x)) = %x, %v", b, enc, err)
		}
		var again wire.Frame
		if err := wire.DecodeFrame(enc, &again); err != nil || !equalFrames(&again, &fr) {
			t.Fatalf("second decode = %+v, %v; want %+v", again, err, fr)
		}
		js, err := wire.AppendJSON(nil, &fr)
		if err != nil {
			t.Fatalf("AppendJSON: %v", err)
		}
		if fr.Type == wire.TypeError && !utf8.Valid(fr.Payload) ||
			!utf8.Valid(fr.ConnID) || !utf8.Valid(fr.UserID) {
			return // the JSON form replaces invalid UTF-8 in strings
		}
		var fromJSON wire.Frame
		if err := wire.DecodeJSON(js, &fromJSON); err != nil || !equalFrames(&fromJSON, &fr) {
			t.Fatalf("DecodeJSON(%s) = %+v, %v; want %+v", js, fromJSON, err, fr)
		}
	})
}

// FuzzDecodeSimple: accepted messages re-encode to the same bytes.
func FuzzDecodeSimple(f *testing.F) {
	for _, v := range readLines[simpleVector](f, "simple.jsonl") {
		f.Add(unhex(f, v.Hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, p, err := wire.DecodeSimple(b)
		if (err != nil) != (len(b) < 4) {
			t.Fatalf("DecodeSimple(%x) error = %v with %d bytes", b, err, len(b))
		}
		if err != nil {
			return
		}
		if enc := wire.AppendSimple(nil, a, p); !bytes.Equal(enc, b) {
			t.Fatalf("AppendSimple(DecodeSimple(%x)) = %x", b, enc)
		}
	})
}

// FuzzJSON: anything DecodeJSON accepts encodes to a canonical text that
// decodes to an equal frame and re-encodes to itself, and whose binary form
// round-trips too.
func FuzzJSON(f *testing.F) {
	for _, v := range readLines[frameVector](f, "frames.jsonl") {
		if v.JSON != "" {
			f.Add([]byte(v.JSON))
		}
	}
	for _, v := range readLines[jsonVector](f, "json.jsonl") {
		f.Add([]byte(v.Input))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr wire.Frame
		if wire.DecodeJSON(b, &fr) != nil {
			return
		}
		js, err := wire.AppendJSON(nil, &fr)
		if err != nil {
			t.Fatalf("AppendJSON: %v", err)
		}
		var again wire.Frame
		if err := wire.DecodeJSON(js, &again); err != nil || !equalFrames(&again, &fr) {
			t.Fatalf("DecodeJSON(AppendJSON) = %+v, %v; want %+v (from %s via %s)", again, err, fr, b, js)
		}
		if js2, _ := wire.AppendJSON(nil, &again); !bytes.Equal(js2, js) {
			t.Fatalf("canonical form not stable: %s then %s", js, js2)
		}
		bin, err := wire.AppendFrame(nil, &fr)
		if err != nil {
			return // a hello id longer than 65535 bytes is valid JSON but not encodable
		}
		var fromBin wire.Frame
		if err := wire.DecodeFrame(bin, &fromBin); err != nil || !equalFrames(&fromBin, &fr) {
			t.Fatalf("binary round trip = %+v, %v; want %+v", fromBin, err, fr)
		}
	})
}
