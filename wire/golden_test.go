package wire_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/wire"
)

// The files in testdata are written by hand (checked by an independent
// script, not by this package) and are read by both these tests and the JS
// client's node test, so the two codecs cannot drift apart.

// frameVector is one line of testdata/frames.jsonl.
type frameVector struct {
	Name  string        `json:"name"`
	Hex   string        `json:"hex"`
	Frame *vectorFields `json:"frame"`
	JSON  string        `json:"json"`
	Error string        `json:"error"`
}

// vectorFields spells a frame's fields independently of the JSON form:
// payload as hex, seq as a decimal string (JavaScript numbers cannot hold
// every uint64).
type vectorFields struct {
	Type       string `json:"type"`
	Action     uint32 `json:"action"`
	ID         uint32 `json:"id"`
	Seq        string `json:"seq"`
	Epoch      string `json:"epoch"`
	Code       uint16 `json:"code"`
	Payload    string `json:"payload"`
	Conn       string `json:"conn"`
	User       string `json:"user"`
	MaxMessage uint32 `json:"maxMessage"`
	Heartbeat  uint16 `json:"heartbeat"`
}

// errorKinds maps the vectors' error names to the package's sentinels.
var errorKinds = map[string]error{
	"short":        wire.ErrShortFrame,
	"unknown-type": wire.ErrUnknownType,
	"trailing":     wire.ErrTrailingBytes,
	"bad-json":     wire.ErrBadJSON,
}

// readLines decodes every line of a testdata JSON-lines file into a T.
func readLines[T any](t testing.TB, name string) []T {
	t.Helper()
	file, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var out []T
	sc := bufio.NewScanner(file)
	for line := 1; sc.Scan(); line++ {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s:%d: %v", name, line, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no vectors", name)
	}
	return out
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func (v *vectorFields) frame(t *testing.T) wire.Frame {
	t.Helper()
	f := wire.Frame{
		Action: wire.Action(v.Action), ID: v.ID, Code: wire.ErrorCode(v.Code),
		Payload: unhex(t, v.Payload), ConnID: []byte(v.Conn), UserID: []byte(v.User),
		MaxMessage: v.MaxMessage, Heartbeat: v.Heartbeat,
	}
	for ft := wire.FrameType(1); ft < 16; ft++ {
		if ft.String() == v.Type {
			f.Type = ft
		}
	}
	if f.Type == 0 {
		t.Fatalf("vector type %q unknown", v.Type)
	}
	if v.Seq != "" {
		seq, err := strconv.ParseUint(v.Seq, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		f.Seq = seq
	}
	if v.Epoch != "" {
		epoch, err := strconv.ParseUint(v.Epoch, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		f.Epoch = epoch
	}
	return f
}

// equalFrames compares field by field; nil and empty slices are equal.
func equalFrames(a, b *wire.Frame) bool {
	return a.Type == b.Type && a.Action == b.Action && a.ID == b.ID && a.Seq == b.Seq && a.Epoch == b.Epoch &&
		a.Code == b.Code && a.MaxMessage == b.MaxMessage && a.Heartbeat == b.Heartbeat &&
		bytes.Equal(a.Payload, b.Payload) && bytes.Equal(a.ConnID, b.ConnID) &&
		bytes.Equal(a.UserID, b.UserID)
}

func TestGoldenFrames(t *testing.T) {
	for _, v := range readLines[frameVector](t, "frames.jsonl") {
		t.Run(v.Name, func(t *testing.T) {
			b := unhex(t, v.Hex)
			var got wire.Frame
			err := wire.DecodeFrame(b, &got)
			if v.Error != "" {
				want := errorKinds[v.Error]
				if !errors.Is(err, want) {
					t.Fatalf("DecodeFrame error = %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeFrame: %v", err)
			}
			want := v.Frame.frame(t)
			if !equalFrames(&got, &want) {
				t.Fatalf("DecodeFrame = %+v, want %+v", got, want)
			}
			checkEncodings(t, &want, b, v.JSON)
		})
	}
}

// checkEncodings checks both encoders against the vector and DecodeJSON
// against the fields.
func checkEncodings(t *testing.T, want *wire.Frame, bin []byte, text string) {
	t.Helper()
	enc, err := wire.AppendFrame(nil, want)
	if err != nil || !bytes.Equal(enc, bin) {
		t.Fatalf("AppendFrame = %x, %v; want %x", enc, err, bin)
	}
	js, err := wire.AppendJSON(nil, want)
	if err != nil || string(js) != text {
		t.Fatalf("AppendJSON = %s, %v; want %s", js, err, text)
	}
	var got wire.Frame
	if err := wire.DecodeJSON([]byte(text), &got); err != nil {
		t.Fatalf("DecodeJSON: %v", err)
	}
	if !equalFrames(&got, want) {
		t.Fatalf("DecodeJSON = %+v, want %+v", got, *want)
	}
}

type simpleVector struct {
	Name    string `json:"name"`
	Hex     string `json:"hex"`
	Action  uint32 `json:"action"`
	Payload string `json:"payload"`
	Error   string `json:"error"`
}

func TestGoldenSimple(t *testing.T) {
	for _, v := range readLines[simpleVector](t, "simple.jsonl") {
		t.Run(v.Name, func(t *testing.T) {
			b := unhex(t, v.Hex)
			a, p, err := wire.DecodeSimple(b)
			if v.Error != "" {
				if !errors.Is(err, wire.ErrShortMessage) {
					t.Fatalf("DecodeSimple error = %v, want %v", err, wire.ErrShortMessage)
				}
				return
			}
			want := unhex(t, v.Payload)
			if err != nil || a != wire.Action(v.Action) || !bytes.Equal(p, want) {
				t.Fatalf("DecodeSimple = %d, %x, %v; want %d, %x", a, p, err, v.Action, want)
			}
			enc := wire.AppendSimple(nil, a, p)
			if a&wire.SimpleErrorBit != 0 {
				enc = wire.AppendSimpleError(nil, a&^wire.SimpleErrorBit, string(p))
			}
			if !bytes.Equal(enc, b) {
				t.Fatalf("encode = %x, want %x", enc, b)
			}
		})
	}
}

type jsonVector struct {
	Name  string `json:"name"`
	Input string `json:"input"`
	Hex   string `json:"hex"`
	Error string `json:"error"`
}

func TestGoldenJSON(t *testing.T) {
	for _, v := range readLines[jsonVector](t, "json.jsonl") {
		t.Run(v.Name, func(t *testing.T) {
			var f wire.Frame
			err := wire.DecodeJSON([]byte(v.Input), &f)
			if v.Error != "" {
				if want := errorKinds[v.Error]; !errors.Is(err, want) {
					t.Fatalf("DecodeJSON error = %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeJSON: %v", err)
			}
			got, err := wire.AppendFrame(nil, &f)
			if want := unhex(t, v.Hex); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("AppendFrame(DecodeJSON) = %x, %v; want %x", got, err, want)
			}
		})
	}
}

type closeVector struct {
	Code      uint16 `json:"code"`
	Reconnect bool   `json:"reconnect"`
	Backoff   bool   `json:"backoff"`
}

func TestGoldenCloseCodes(t *testing.T) {
	for _, v := range readLines[closeVector](t, "close_codes.jsonl") {
		c := wire.CloseCode(v.Code)
		if got := c.Reconnect(); got != v.Reconnect {
			t.Errorf("CloseCode(%d).Reconnect() = %v, want %v", v.Code, got, v.Reconnect)
		}
		if got := c.Backoff(); got != v.Backoff {
			t.Errorf("CloseCode(%d).Backoff() = %v, want %v", v.Code, got, v.Backoff)
		}
	}
}

type backoffVector struct {
	Attempt int     `json:"attempt"`
	Random  float64 `json:"random"`
	MS      int64   `json:"ms"`
}

func TestGoldenBackoff(t *testing.T) {
	for _, v := range readLines[backoffVector](t, "backoff.jsonl") {
		got := wire.Backoff{}.Delay(v.Attempt, v.Random)
		if want := time.Duration(v.MS) * time.Millisecond; got != want {
			t.Errorf("Delay(%d, %v) = %v, want %v", v.Attempt, v.Random, got, want)
		}
	}
}
