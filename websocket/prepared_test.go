package websocket

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestPreparedMessagePlain(t *testing.T) {
	data := []byte("broadcast me")
	pm, err := NewPreparedMessage(TextMessage, data)
	if err != nil {
		t.Fatal(err)
	}
	data[0] = 'X' // the message owns a copy
	got, err := pm.frame(false)
	if err != nil {
		t.Fatal(err)
	}
	want := appendFrame(nil, opText, true, false, []byte("broadcast me"), false, [4]byte{})
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
	if pm.typ != TextMessage || string(pm.data) != "broadcast me" {
		t.Fatalf("got typ %d data %q", pm.typ, pm.data)
	}
}

func TestPreparedMessageCompressed(t *testing.T) {
	text := strings.Repeat("compress this broadcast ", 40)
	pm, err := NewPreparedMessage(BinaryMessage, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	frames := make([][]byte, 8)
	for i := range frames {
		wg.Go(func() {
			f, err := pm.frame(true)
			if err != nil {
				t.Error(err)
			}
			frames[i] = f
		})
	}
	wg.Wait()
	for _, f := range frames[1:] {
		if &f[0] != &frames[0][0] {
			t.Fatal("got the compressed frame built more than once")
		}
	}
	if frames[0][0] != finBit|rsv1Bit|byte(opBinary) || len(frames[0]) >= len(text) {
		t.Fatalf("got first byte %#x and %d bytes, want a compressed binary frame shorter than %d", frames[0][0], len(frames[0]), len(text))
	}
	cfg := deflateClientCfg
	events, err := runParser(cfg, frames[0], feedWhole)
	checkParse(t, events, err, []frameEvent{msgEvent(BinaryMessage, text)}, 0)
}

func TestPreparedMessageErrors(t *testing.T) {
	if _, err := NewPreparedMessage(MessageType(8), nil); err == nil {
		t.Fatal("got no error for a close message type, want one")
	}
	if _, err := NewPreparedMessage(TextMessage, []byte("\xff")); err == nil {
		t.Fatal("got no error for invalid UTF-8 text, want one")
	}
	pm, err := NewPreparedMessage(BinaryMessage, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := pm.frame(false); !bytes.Equal(f, []byte{0x82, 0x00}) {
		t.Fatalf("got % x for an empty message, want 82 00", f)
	}
}
