package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestAcceptKey(t *testing.T) {
	// RFC 6455 section 1.3.
	if got, want := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestClientFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 0xffff, 0x10000} {
		payload := bytes.Repeat([]byte{0x5a}, n)
		f := clientFrame(opBinary, payload)
		if f[0] != 0x82 || f[1]&0x80 == 0 {
			t.Fatalf("size %d: got header %#x %#x, want FIN+binary, masked", n, f[0], f[1])
		}
		hdr := 2
		switch f[1] & 0x7f {
		case 126:
			hdr += 2
		case 127:
			hdr += 8
		}
		key, body := f[hdr:hdr+4], f[hdr+4:]
		for i := range body {
			body[i] ^= key[i%4]
		}
		if !bytes.Equal(body, payload) {
			t.Errorf("size %d: unmasked payload differs (got %d bytes)", n, len(body))
		}
	}
}

// serverFrame builds an unmasked frame the way a server sends it.
func serverFrame(op byte, payload []byte) []byte {
	f := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		f = append(f, byte(n))
	case n <= 0xffff:
		f = binary.BigEndian.AppendUint16(append(f, 126), uint16(n))
	default:
		f = binary.BigEndian.AppendUint64(append(f, 127), uint64(n))
	}
	return append(f, payload...)
}

func TestReadData(t *testing.T) {
	var in []byte
	in = append(in, serverFrame(opPing, []byte("p"))...)
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		in = append(in, serverFrame(opBinary, bytes.Repeat([]byte{1}, n))...)
	}
	in = append(in, serverFrame(opClose, []byte{3, 232})...)
	br := bufio.NewReader(bytes.NewReader(in))
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		op, p, err := readData(br, nil)
		if err != nil || op != opBinary || len(p) != n {
			t.Fatalf("got op %d, %d bytes, %v; want binary, %d bytes", op, len(p), err, n)
		}
	}
	if _, _, err := readData(br, nil); err == nil {
		t.Error("close frame: got nil error, want one")
	}
}

func TestReadFrameRejectsMaskedAndOversized(t *testing.T) {
	for name, in := range map[string][]byte{
		"masked":     {0x82, 0x81, 0, 0, 0, 0, 0},
		"fragmented": {0x02, 0x00},
		"rsv":        {0xc2, 0x00},
		"oversized":  binary.BigEndian.AppendUint64([]byte{0x82, 127}, maxFrame+1),
	} {
		if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), nil); err == nil {
			t.Errorf("%s: got nil error, want one", name)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1, math.NaN(), 3}, math.NaN()},
		{nil, math.NaN()},
	}
	for _, tt := range tests {
		ss := make([]sample, len(tt.in))
		for i, v := range tt.in {
			ss[i].rssKiB = v
		}
		got := median(ss, func(s sample) float64 { return s.rssKiB })
		if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("median(%v): got %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestClient runs the client role against an in-process gorilla echo server
// through its whole conversation: ready, verify, go, quit.
func TestClient(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, p); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	cfg := clientConfig{
		addr: strings.TrimPrefix(srv.URL, "http://"), path: "/echo",
		conns: 20, conc: 4, msgs: 1000, size: 64, window: 8, timeout: 10 * time.Second,
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runClient(ctx, cfg, strings.NewReader("verify\ngo\nquit\n"), &out); err != nil {
		t.Fatalf("runClient: %v\noutput:\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"ready 20 ", "verified 20", "done msgs=1000 "}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines %q, want %d", len(lines), lines, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: got %q, want prefix %q", i, lines[i], w)
		}
	}
}
