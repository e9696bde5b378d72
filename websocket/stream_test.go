package websocket_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/wsgate/wsgate/websocket"
)

// streamPayload is n deterministic bytes.
func streamPayload(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// writeStreamed sends data through NextWriter in pieces of piece bytes.
func writeStreamed(t *testing.T, c *websocket.Conn, typ websocket.MessageType, data []byte, piece int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
	defer cancel()
	w, err := c.NextWriter(ctx, typ)
	if err != nil {
		t.Fatalf("NextWriter: %v", err)
	}
	for len(data) > 0 {
		n := min(piece, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatalf("write: %v", err)
		}
		data = data[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
}

// A streamed message echoed by a Handler server (whole messages) comes back
// whole, and reads back through NextReader.
func TestStreamRoundTrip(t *testing.T) {
	rtEachMode(t, func(t *testing.T, mode websocket.Mode) {
		_, url := rtServer(t, websocket.Config{Mode: mode}, rtEcho())
		c := rtDial(t, url, nil)
		for _, tc := range []struct {
			typ   websocket.MessageType
			size  int
			piece int
		}{
			{websocket.BinaryMessage, 0, 1},
			{websocket.BinaryMessage, 3 << 20, 64 << 10},
			{websocket.TextMessage, 100 << 10, 7}, // many tiny frames
		} {
			data := streamPayload(tc.size)
			if tc.typ == websocket.TextMessage {
				data = bytes.Repeat([]byte("κόσμε "), tc.size/8)
			}
			writeStreamed(t, c, tc.typ, data, tc.piece)
			ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
			typ, r, err := c.NextReader(ctx)
			if err != nil {
				t.Fatalf("NextReader: %v", err)
			}
			got, err := io.ReadAll(r)
			cancel()
			if err != nil || typ != tc.typ || !bytes.Equal(got, data) {
				t.Fatalf("got type %v, %d bytes, err %v; want type %v, %d bytes", typ, len(got), err, tc.typ, len(data))
			}
		}
	})
}

// While a message writer is open, other data writes fail rather than
// interleave their frames with its frames; pings still go out.
func TestStreamWriterExclusive(t *testing.T) {
	_, url := rtServer(t, websocket.Config{}, rtEcho())
	c := rtDial(t, url, nil)
	ctx := context.Background()
	w, err := c.NextWriter(ctx, websocket.BinaryMessage)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, []byte("x")); err == nil {
		t.Error("WriteMessage during a streamed message: got nil error")
	}
	if _, err := c.NextWriter(ctx, websocket.BinaryMessage); err == nil {
		t.Error("second NextWriter: got nil error")
	}
	if err := c.Ping(nil); err != nil {
		t.Errorf("Ping during a streamed message: %v", err)
	}
	if _, err := w.Write([]byte("part")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, []byte("after")); err != nil {
		t.Errorf("WriteMessage after Close: %v", err)
	}
	if _, got := rtRead(t, c); string(got) != "part" {
		t.Errorf("got %q, want the streamed message", got)
	}
	if _, got := rtRead(t, c); string(got) != "after" {
		t.Errorf("got %q, want the message after it", got)
	}
}

// pullEcho runs a NewPullServer that echoes every message through
// NextReader and NextWriter, for as long as the connection lives.
func pullEcho(t *testing.T, cfg websocket.Config) string {
	t.Helper()
	srv := websocket.NewPullServer(cfg)
	hs := rtServe(t, srv)
	done := make(chan struct{})
	hs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := srv.Accept(w, r, nil)
		if err != nil {
			return
		}
		go func() {
			defer func() { done <- struct{}{} }()
			for echoOne(c) == nil {
			}
		}()
	})
	t.Cleanup(func() { <-done }) // runs after Shutdown ended the connection
	return rtURL(hs)
}

func echoOne(c *websocket.Conn) error {
	ctx := context.Background() // the connection's end bounds it
	typ, r, err := c.NextReader(ctx)
	if err != nil {
		return err
	}
	w, err := c.NextWriter(ctx, typ)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	return w.Close()
}

// A pull server streams messages larger than its ReadLimit; Read on the
// same connection still enforces the limit with 1009.
func TestPullServerStreamsPastReadLimit(t *testing.T) {
	url := pullEcho(t, websocket.Config{ReadLimit: 64 << 10})
	c := rtDial(t, url, &websocket.Config{ReadLimit: 64 << 10})
	data := streamPayload(4 << 20)
	writeStreamed(t, c, websocket.BinaryMessage, data, 256<<10)
	ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
	defer cancel()
	_, r, err := c.NextReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if n, err := io.Copy(h, r); err != nil || n != int64(len(data)) {
		t.Fatalf("read %d bytes, err %v; want %d", n, err, len(data))
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("echo differs from what was sent")
	}
	// The same message through Read is too big: 1009, then the end.
	writeStreamed(t, c, websocket.BinaryMessage, data[:1<<20], 256<<10)
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("Read of a message over ReadLimit: got %v, want the 1009 close", err)
	}
}

// A reader left unfinished is skipped by the next NextReader, and then
// fails.
func TestStreamReaderSkippedAndStale(t *testing.T) {
	_, url := rtServer(t, websocket.Config{}, rtEcho())
	c := rtDial(t, url, nil)
	first := streamPayload(256 << 10)
	writeStreamed(t, c, websocket.BinaryMessage, first, 16<<10)
	if err := c.WriteMessage(websocket.TextMessage, []byte("second")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
	defer cancel()
	_, r1, err := c.NextReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(r1, buf); err != nil || !bytes.Equal(buf, first[:1000]) {
		t.Fatalf("first 1000 bytes: %v", err)
	}
	typ, data, err := c.Read(ctx)
	if err != nil || typ != websocket.TextMessage || string(data) != "second" {
		t.Fatalf("got %v %q %v, want the second message", typ, data, err)
	}
	if _, err := r1.Read(buf); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("stale reader: got %v, want an error", err)
	}
}
