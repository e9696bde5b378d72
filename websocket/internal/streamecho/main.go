// Command streamecho echoes one message of -bytes bytes through the
// streaming API, inside this process: a NewPullServer connection echoes it
// with NextReader and NextWriter, and a Dial client writes it with
// NextWriter while it reads the echo with NextReader and checks every byte.
// It prints "ok BYTES" and waits for its stdin to close, so that the
// caller (TestStreamEchoRSS) can read its peak RSS from /proc. It is a
// separate program so that it is built without the race detector, whose
// shadow memory would swamp what is measured.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

func main() {
	n := flag.Int64("bytes", 1<<30, "message size")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("ok %d\n", *n)
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin)) // wait for the caller's measurement
}

func run(n int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv := websocket.NewPullServer(websocket.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	echoed := make(chan error, 1)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := srv.Accept(w, r, nil)
		if err != nil {
			echoed <- err
			return
		}
		echoed <- echo(ctx, c)
	})}
	go func() { _ = hs.Serve(ln) }() // ends with Close below
	defer hs.Close()

	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/", nil, nil)
	if err != nil {
		return err
	}
	defer func() { _ = c.CloseNow(); <-c.Done() }()
	wrote := make(chan error, 1)
	go func() { wrote <- send(ctx, c, n) }()
	if err := check(ctx, c, n); err != nil {
		return err
	}
	if err := <-wrote; err != nil {
		return err
	}
	if err := <-echoed; err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	return srv.Shutdown(ctx, websocket.StatusNormalClosure, "")
}

// echo sends back the first message of c.
func echo(ctx context.Context, c *websocket.Conn) error {
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

// stream is the deterministic content: 8 bytes per PCG step.
type stream struct{ rng *rand.Rand }

func newStream() *stream { return &stream{rand.New(rand.NewPCG(1, 2))} }

func (s *stream) fill(b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], s.rng.Uint64())
	}
}

const piece = 64 << 10

func send(ctx context.Context, c *websocket.Conn, n int64) error {
	w, err := c.NextWriter(ctx, websocket.BinaryMessage)
	if err != nil {
		return err
	}
	s, buf := newStream(), make([]byte, piece)
	for left := n; left > 0; left -= piece {
		s.fill(buf)
		if _, err := w.Write(buf[:min(piece, left)]); err != nil {
			return err
		}
	}
	return w.Close()
}

func check(ctx context.Context, c *websocket.Conn, n int64) error {
	_, r, err := c.NextReader(ctx)
	if err != nil {
		return err
	}
	s, want, got := newStream(), make([]byte, piece), make([]byte, piece)
	for off := int64(0); off < n; off += piece {
		s.fill(want)
		k := int(min(piece, n-off))
		if _, err := io.ReadFull(r, got[:k]); err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		if string(got[:k]) != string(want[:k]) {
			return fmt.Errorf("echo differs within bytes %d-%d", off, off+int64(k))
		}
	}
	if _, err := r.Read(got); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after %d bytes: got %v, want io.EOF", n, err)
	}
	return nil
}
