package websocket_test

// The Autobahn|Testsuite cases where a valid message is followed by an
// invalid frame (3.2-3.4, 4.1.3-4.1.5, 4.2.3-4.2.5, 5.15), reproduced on
// raw TCP against our server (both modes) and against our clients (pull
// mode and event mode). The strict answer is: the echo of the valid
// message, then the close frame with 1002, and nothing for what follows
// the bad frame (a ping: no pong).

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

// chop is how a case's bytes are written.
type chop int

const (
	chopOne   chop = iota // all frames in one write (Autobahn "sync")
	chopFrame             // one write per frame
	chopOctet             // one write per byte
)

type failCase struct {
	id     string
	chop   chop
	frames []frame
	echo   frame // the echo the valid part deserves
}

// autobahnFailCases are the named cases, as the suite's case files
// describe them.
func autobahnFailCases() []failCase {
	hello := text("Hello, World!")
	ping := frame{op: opPing, fin: true, payload: []byte("Hello, World!")}
	reserved := func(op byte, payload string) frame {
		return frame{op: op, fin: true, payload: []byte(payload)}
	}
	rsv := func(bits byte) frame { f := hello; f.rsv = bits; return f }
	cases := []failCase{
		// 3.2-3.4: RSV = 2, 3, 4 (RSV bits as a 3-bit number: 4 is RSV1,
		// which no extension negotiated here allows).
		{"3.2", chopOne, []frame{hello, rsv(0x20), ping}, hello},
		{"3.3", chopFrame, []frame{hello, rsv(0x30), ping}, hello},
		{"3.4", chopOctet, []frame{hello, rsv(0x40), ping}, hello},
		// 4.1.3-4.1.5: reserved non-control opcodes 5, 6, 7.
		{"4.1.3", chopOne, []frame{hello, reserved(5, ""), ping}, hello},
		{"4.1.4", chopOne, []frame{hello, reserved(6, "reserved opcode payload"), ping}, hello},
		{"4.1.5", chopOne, []frame{hello, reserved(7, "reserved opcode payload"), ping}, hello},
		// 4.2.3-4.2.5: reserved control opcodes 13, 14, 15.
		{"4.2.3", chopOne, []frame{hello, reserved(13, ""), ping}, hello},
		{"4.2.4", chopOne, []frame{hello, reserved(14, "reserved opcode payload"), ping}, hello},
		{"4.2.5", chopOne, []frame{hello, reserved(15, "reserved opcode payload"), ping}, hello},
		// 5.15: a message in two fragments, then a continuation with
		// nothing to continue, then a text message.
		{"5.15", chopOne, []frame{
			{op: opText, payload: []byte("fragment1")},
			{op: opCont, fin: true, payload: []byte("fragment2")},
			{op: opCont, payload: []byte("fragment3")},
			text("fragment4"),
		}, text("fragment1fragment2")},
	}
	return cases
}

// writeCase writes frames with the case's chopping; unmasked for a server.
func writeCase(t *testing.T, conn net.Conn, fc failCase, fromServer bool) {
	t.Helper()
	var chunks [][]byte
	var all []byte
	for _, f := range fc.frames {
		f.unmasked = fromServer
		b := f.encode()
		all = append(all, b...)
		chunks = append(chunks, b)
	}
	switch fc.chop {
	case chopOne:
		chunks = [][]byte{all}
	case chopOctet:
		chunks = chunks[:0]
		for i := range all {
			chunks = append(chunks, all[i:i+1])
		}
	}
	_ = conn.SetWriteDeadline(time.Now().Add(ioLimit)) // failure shows in Write
	for _, b := range chunks {
		if _, err := conn.Write(b); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
}

func TestAutobahnMessageBeforeProtocolErrorServer(t *testing.T) {
	for _, fc := range autobahnFailCases() {
		t.Run(fc.id, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, mode websocket.Mode) {
				c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
				writeCase(t, c.conn, fc, false)
				c.expectMessage(fc.echo.op, fc.echo.payload)
				c.expectFailure(1002)
			})
		})
	}
}

// The reply may come from a slow handler: the close waits for it (within
// CloseTimeout), while reading stops at the bad frame.
func TestProtocolErrorWaitsForSlowHandler(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		release := make(chan struct{})
		srv := websocket.NewServer(websocket.Config{Mode: mode}, websocket.Handler{
			OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
				<-release
				_ = c.WriteMessage(typ, data) // the test checks the echo arrives
			},
		})
		c := dialRaw(t, rtServe(t, srv))
		c.send(text("one"), text("two"), frame{op: 0x3, fin: true})
		// The close must not overtake the replies: had it been sent when
		// the bad frame was parsed (while the handler is held), it would be
		// the first frame read here.
		close(release)
		c.expectMessage(opText, []byte("one"))
		c.expectMessage(opText, []byte("two"))
		c.expectFailure(1002)
	})
}

// rawServerConn accepts one connection on ln, answers its handshake and
// returns it, for tests that play the server by hand.
func rawServerConn(t *testing.T, ln net.Listener) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, br, _ := rawServerConnExt(t, ln, "")
	return conn, br
}

// rawServerConnExt is rawServerConn answering with the
// Sec-WebSocket-Extensions value ext ("" for none); it also returns the
// request.
func rawServerConnExt(t *testing.T, ln net.Listener, ext string) (net.Conn, *bufio.Reader, *http.Request) {
	t.Helper()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() }) // may be closed already
	_ = conn.SetDeadline(time.Now().Add(ioLimit))
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(h[:]) + "\r\n"
	if ext != "" {
		resp += "Sec-WebSocket-Extensions: " + ext + "\r\n"
	}
	if _, err := io.WriteString(conn, resp+"\r\n"); err != nil {
		t.Fatalf("write response: %v", err)
	}
	return conn, br, req
}

// readClientFrame reads one masked client frame and unmasks it.
func readClientFrame(br *bufio.Reader) (frame, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return frame{}, err
	}
	if hdr[1]&0x80 == 0 {
		return frame{}, errors.New("client frame is not masked (RFC 6455 §5.1 requires it)")
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return frame{}, errors.New("client frame too large for this test")
	}
	var key [4]byte
	if _, err := io.ReadFull(br, key[:]); err != nil {
		return frame{}, err
	}
	f := frame{op: hdr[0] & 0x0f, fin: hdr[0]&0x80 != 0, rsv: hdr[0] & 0x70, payload: make([]byte, n)}
	if _, err := io.ReadFull(br, f.payload); err != nil {
		return frame{}, err
	}
	for i := range f.payload {
		f.payload[i] ^= key[i%4]
	}
	return f, nil
}

// expectClientStrict checks what a client sent after a failure case: the
// echo, the close frame with 1002, then the end of TCP (the side that
// fails a connection closes it).
func expectClientStrict(t *testing.T, br *bufio.Reader, echo frame) {
	t.Helper()
	f, err := readClientFrame(br)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if f.op != echo.op || string(f.payload) != string(echo.payload) {
		t.Fatalf("got frame op=%#x payload %q, want the echo op=%#x %q", f.op, trunc(f.payload), echo.op, echo.payload)
	}
	f, err = readClientFrame(br)
	if err != nil {
		t.Fatalf("read close: %v", err)
	}
	if f.op != opClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != 1002 {
		t.Fatalf("got frame op=%#x payload %q, want a close frame with 1002", f.op, trunc(f.payload))
	}
	if f, err := readClientFrame(br); err == nil {
		t.Fatalf("got frame op=%#x after the close frame, want the end of TCP", f.op)
	}
}

func TestAutobahnMessageBeforeProtocolErrorPullClient(t *testing.T) {
	for _, fc := range autobahnFailCases() {
		t.Run(fc.id, func(t *testing.T) {
			leakcheck.Check(t)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatalf("listen: %v", err)
			}
			defer ln.Close()
			ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
			defer cancel()
			type dialed struct {
				c   *websocket.Conn
				err error
			}
			ch := make(chan dialed, 1)
			go func() {
				c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/", nil, nil)
				ch <- dialed{c, err}
			}()
			conn, br := rawServerConn(t, ln)
			d := <-ch
			if d.err != nil {
				t.Fatalf("dial: %v", d.err)
			}
			c := d.c
			defer func() { _ = c.CloseNow(); <-c.Done() }()
			writeCase(t, conn, fc, true)
			// The program answers every message it reads, as Autobahn's echo client does.
			echoed := make(chan error, 1)
			go func() {
				for {
					typ, data, err := c.Read(ctx)
					if err != nil {
						echoed <- err
						return
					}
					_ = c.WriteMessage(typ, data) // checked on the wire
				}
			}()
			expectClientStrict(t, br, fc.echo)
			_ = conn.Close() // the server's FIN: Read ends
			if err := <-echoed; websocket.CloseStatus(err) != 1002 {
				t.Errorf("got Read error %v, want the 1002 close", err)
			}
		})
	}
}

func TestAutobahnMessageBeforeProtocolErrorEventClient(t *testing.T) {
	for _, fc := range autobahnFailCases() {
		t.Run(fc.id, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, mode websocket.Mode) {
				leakcheck.Check(t)
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatalf("listen: %v", err)
				}
				defer ln.Close()
				closed := make(chan error, 1)
				d := websocket.NewDialer(websocket.Config{Mode: mode}, websocket.Handler{
					OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
						_ = c.WriteMessage(typ, data) // checked on the wire
					},
					OnClose: func(_ *websocket.Conn, err error) { closed <- err },
				})
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
					defer cancel()
					_ = d.Shutdown(ctx, websocket.StatusGoingAway, "") // the test checked what matters
				}()
				ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
				defer cancel()
				dialErr := make(chan error, 1)
				go func() {
					_, _, err := d.Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
					dialErr <- err
				}()
				conn, br := rawServerConn(t, ln)
				if err := <-dialErr; err != nil {
					t.Fatalf("dial: %v", err)
				}
				writeCase(t, conn, fc, true)
				expectClientStrict(t, br, fc.echo)
				_ = conn.Close()
				select {
				case err := <-closed:
					if websocket.CloseStatus(err) != 1002 {
						t.Errorf("got OnClose error %v, want the 1002 close", err)
					}
				case <-time.After(rtLimit):
					t.Fatalf("OnClose not called within %v", rtLimit)
				}
			})
		})
	}
}
