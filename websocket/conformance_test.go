package websocket_test

// Black-box RFC 6455 conformance: a real Server (reactor and blocking mode)
// behind httptest, a raw TCP client that writes frames byte by byte, and
// assertions on the exact bytes the server answers with.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate/websocket"
)

// Opcodes as they appear on the wire.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// ioLimit bounds every blocking read or write of a test: a liveness bound,
// never a speed assertion.
const ioLimit = 10 * time.Second

// closeMe makes the echo handler start the close handshake itself.
const closeMe = "please close"

// startEchoServer runs a Server that echoes every message (and closes with
// 1000 "bye" when it receives closeMe) behind httptest on 127.0.0.1.
func startEchoServer(t *testing.T, cfg websocket.Config) *httptest.Server {
	t.Helper()
	srv := websocket.NewServer(cfg, websocket.Handler{
		OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
			if typ == websocket.TextMessage && string(data) == closeMe {
				_ = c.Close(websocket.StatusNormalClosure, "bye") // the test checks the frame
				return
			}
			// A failed echo (the conn is closing) shows up in the raw client's assertions.
			_ = c.WriteMessage(typ, data)
		},
	})
	return rtServe(t, srv)
}

// rawClient speaks WebSocket by hand over one TCP connection.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// dialRaw connects to hs and performs the opening handshake by hand.
func dialRaw(t *testing.T, hs *httptest.Server) *rawClient {
	t.Helper()
	c, _ := dialRawHeaders(t, hs, "")
	return c
}

// dialRawHeaders is dialRaw with extra request header lines (each ending
// in \r\n); it also returns the 101 response.
func dialRawHeaders(t *testing.T, hs *httptest.Server, headers string) (*rawClient, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() }) // may already be closed by the test
	c := &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
	c.write([]byte("GET /ws HTTP/1.1\r\nHost: " + hs.Listener.Addr().String() +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + headers + "\r\n"))
	resp := c.readResponse()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: got status %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: got Sec-WebSocket-Accept %q, want the RFC 6455 §1.3 value", got)
	}
	return c, resp
}

func (c *rawClient) readResponse() *http.Response {
	c.t.Helper()
	if err := c.conn.SetReadDeadline(time.Now().Add(ioLimit)); err != nil {
		c.t.Fatalf("set deadline: %v", err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	return resp
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if err := c.conn.SetWriteDeadline(time.Now().Add(ioLimit)); err != nil {
		c.t.Fatalf("set deadline: %v", err)
	}
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// writeBytewise writes b one byte per Write call, so the server sees every
// possible split of its frames.
func (c *rawClient) writeBytewise(b []byte) {
	c.t.Helper()
	for i := range b {
		c.write(b[i : i+1])
	}
}

// frame is one WebSocket frame as the client sends or receives it.
type frame struct {
	op       byte
	fin      bool
	rsv      byte // RSV1..3 as the top bits 0x40, 0x20, 0x10
	payload  []byte
	unmasked bool // client frames are masked unless this is set
}

// maskKey is the fixed masking key of client frames (any key is valid).
var maskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// encode renders f on the wire, choosing the minimal length encoding.
func (f frame) encode() []byte {
	b0 := f.op | f.rsv
	if f.fin {
		b0 |= 0x80
	}
	var maskBit byte = 0x80
	if f.unmasked {
		maskBit = 0
	}
	out := []byte{b0}
	n := len(f.payload)
	switch {
	case n < 126:
		out = append(out, maskBit|byte(n))
	case n <= 0xffff:
		out = append(out, maskBit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, maskBit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if f.unmasked {
		return append(out, f.payload...)
	}
	out = append(out, maskKey[:]...)
	for i, p := range f.payload {
		out = append(out, p^maskKey[i%4])
	}
	return out
}

func text(s string) frame      { return frame{op: opText, fin: true, payload: []byte(s)} }
func binaryMsg(b []byte) frame { return frame{op: opBinary, fin: true, payload: b} }

func closeFrame(code uint16, reason string) frame {
	p := binary.BigEndian.AppendUint16(nil, code)
	return frame{op: opClose, fin: true, payload: append(p, reason...)}
}

func (c *rawClient) send(frames ...frame) {
	c.t.Helper()
	var b []byte
	for _, f := range frames {
		b = append(b, f.encode()...)
	}
	c.write(b)
}

// readFrame reads one server frame, failing the test on I/O errors.
func (c *rawClient) readFrame() frame {
	c.t.Helper()
	f, err := c.tryReadFrame()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

func (c *rawClient) tryReadFrame() (frame, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(ioLimit)); err != nil {
		return frame{}, err
	}
	var hdr [2]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return frame{}, err
	}
	if hdr[1]&0x80 != 0 {
		return frame{}, errors.New("server frame is masked (RFC 6455 §5.1 forbids it)")
	}
	n, err := c.readLength(hdr[1] & 0x7f)
	if err != nil {
		return frame{}, err
	}
	if n > 1<<24 {
		return frame{}, fmt.Errorf("server frame of %d bytes, too large for a test", n)
	}
	f := frame{op: hdr[0] & 0x0f, fin: hdr[0]&0x80 != 0, rsv: hdr[0] & 0x70, payload: make([]byte, n), unmasked: true}
	if _, err := io.ReadFull(c.br, f.payload); err != nil {
		return frame{}, err
	}
	return f, nil
}

func (c *rawClient) readLength(l7 byte) (uint64, error) {
	switch l7 {
	case 126:
		var b [2]byte
		_, err := io.ReadFull(c.br, b[:])
		return uint64(binary.BigEndian.Uint16(b[:])), err
	case 127:
		var b [8]byte
		_, err := io.ReadFull(c.br, b[:])
		return binary.BigEndian.Uint64(b[:]), err
	}
	return uint64(l7), nil
}

// expectMessage reads one unfragmented data frame and checks it.
func (c *rawClient) expectMessage(op byte, payload []byte) {
	c.t.Helper()
	f := c.readFrame()
	if f.op != op || !f.fin || f.rsv != 0 {
		c.t.Fatalf("got frame op=%#x fin=%v rsv=%#x, want op=%#x fin=true rsv=0", f.op, f.fin, f.rsv, op)
	}
	if !bytes.Equal(f.payload, payload) {
		c.t.Fatalf("got payload %q, want %q", trunc(f.payload), trunc(payload))
	}
}

// trunc keeps failure messages readable for large payloads.
func trunc(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:64:64], "..."...)
	}
	return b
}

// expectCloseCode reads the server's close frame, checks its code and reason
// encoding, and returns the reason.
func (c *rawClient) expectCloseCode(want uint16) string {
	c.t.Helper()
	f := c.readFrame()
	if f.op != opClose {
		c.t.Fatalf("got frame op=%#x payload %q, want a close frame with code %d", f.op, trunc(f.payload), want)
	}
	if !f.fin || len(f.payload) < 2 {
		c.t.Fatalf("got close frame fin=%v payload %q, want fin and a code", f.fin, f.payload)
	}
	if got := binary.BigEndian.Uint16(f.payload); got != uint16(want) {
		c.t.Fatalf("got close code %d (reason %q), want %d", got, f.payload[2:], want)
	}
	if !utf8.Valid(f.payload[2:]) {
		c.t.Errorf("got close reason %q, want valid UTF-8", f.payload[2:])
	}
	return string(f.payload[2:])
}

// expectTCPClose checks that the server closes the connection: the next read
// ends with EOF (or a reset), not with more data or a timeout.
func (c *rawClient) expectTCPClose() {
	c.t.Helper()
	f, err := c.tryReadFrame()
	if err == nil {
		c.t.Fatalf("got frame op=%#x payload %q, want the server to close TCP", f.op, trunc(f.payload))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("server kept the connection open for %v, want it closed", ioLimit)
	}
}

// expectFailure checks the server fails the connection with code: its close
// frame, then (after our close reply) the end of TCP.
func (c *rawClient) expectFailure(code uint16) {
	c.t.Helper()
	c.expectCloseCode(code)
	// The server may already have closed TCP; then the reply cannot be sent,
	// which is fine: the read below sees the end either way.
	_ = c.conn.SetWriteDeadline(time.Now().Add(ioLimit))
	_, _ = c.conn.Write(closeFrame(code, "").encode())
	c.expectTCPClose()
}

func TestConformanceEchoSplitWrites(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		hs := startEchoServer(t, websocket.Config{Mode: mode})
		c := dialRaw(t, hs)

		c.writeBytewise(text("Hello, wsgate").encode())
		c.expectMessage(opText, []byte("Hello, wsgate"))

		// A 16-bit length and a 64-bit length frame, byte by byte.
		mid := bytes.Repeat([]byte("0123456789abcdef"), 40)
		c.writeBytewise(binaryMsg(mid).encode())
		c.expectMessage(opBinary, mid)
		big := bytes.Repeat([]byte{0xa5, 0x5a, 0x00, 0xff}, 17000)
		c.writeChunks(binaryMsg(big).encode(), 997)
		c.expectMessage(opBinary, big)

		// A fragmented text message, split inside a UTF-8 sequence.
		msg := "κόσμε — 世界"
		parts := []frame{
			{op: opText, payload: []byte(msg[:3])},
			{op: opCont, payload: []byte(msg[3:10])},
			{op: opCont, fin: true, payload: []byte(msg[10:])},
		}
		for _, p := range parts {
			c.writeBytewise(p.encode())
		}
		c.expectMessage(opText, []byte(msg))
	})
}

// writeChunks writes b in pieces of n bytes.
func (c *rawClient) writeChunks(b []byte, n int) {
	c.t.Helper()
	for len(b) > 0 {
		k := min(n, len(b))
		c.write(b[:k])
		b = b[k:]
	}
}

func TestConformanceEmptyMessages(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
		c.send(text(""), binaryMsg(nil))
		c.expectMessage(opText, []byte{})
		c.expectMessage(opBinary, []byte{})
		// An empty fragmented message: empty first frame and empty continuation.
		c.send(frame{op: opBinary}, frame{op: opCont, fin: true})
		c.expectMessage(opBinary, []byte{})
	})
}

func TestConformancePingPong(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
		for _, payload := range [][]byte{nil, []byte("ping-1"), bytes.Repeat([]byte{0xfe}, 125)} {
			c.send(frame{op: opPing, fin: true, payload: payload})
			c.expectMessage(opPong, payload)
		}
		// An unsolicited pong is ignored: the next echo still arrives.
		c.send(frame{op: opPong, fin: true, payload: []byte("x")}, text("after pong"))
		c.expectMessage(opText, []byte("after pong"))
	})
}

func TestConformancePipelined(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
		const n = 200
		var b []byte
		for i := range n {
			b = append(b, text(fmt.Sprintf("message %03d", i)).encode()...)
		}
		c.write(b)
		for i := range n {
			c.expectMessage(opText, fmt.Appendf(nil, "message %03d", i))
		}
	})
}

func TestConformancePingInsideFragmentedMessage(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
		c.send(
			frame{op: opText, payload: []byte("frag")},
			frame{op: opPing, fin: true, payload: []byte("mid")},
			frame{op: opCont, payload: []byte("men")},
			frame{op: opPong, fin: true, payload: []byte("unsolicited")},
			frame{op: opCont, fin: true, payload: []byte("ted")},
		)
		c.expectMessage(opPong, []byte("mid"))
		c.expectMessage(opText, []byte("fragmented"))
	})
}

func TestConformanceProtocolErrors(t *testing.T) {
	long := bytes.Repeat([]byte("p"), 126)
	tests := []struct {
		name   string
		frames []frame
		want   uint16
	}{
		{"unmasked frame", []frame{{op: opText, fin: true, payload: []byte("hi"), unmasked: true}}, 1002},
		{"rsv1 without extension", []frame{{op: opText, fin: true, rsv: 0x40, payload: []byte("hi")}}, 1002},
		{"rsv2", []frame{{op: opBinary, fin: true, rsv: 0x20}}, 1002},
		{"rsv3", []frame{{op: opBinary, fin: true, rsv: 0x10}}, 1002},
		{"rsv on ping", []frame{{op: opPing, fin: true, rsv: 0x40}}, 1002},
		{"fragmented ping", []frame{{op: opPing, payload: []byte("x")}}, 1002},
		{"fragmented close", []frame{{op: opClose, payload: []byte{0x03, 0xe8}}}, 1002},
		{"ping payload 126", []frame{{op: opPing, fin: true, payload: long}}, 1002},
		{"close payload 126", []frame{{op: opClose, fin: true, payload: append([]byte{0x03, 0xe8}, long[2:]...)}}, 1002},
		{"close payload 1 byte", []frame{{op: opClose, fin: true, payload: []byte{0x03}}}, 1002},
		{"continuation without start", []frame{{op: opCont, fin: true, payload: []byte("x")}}, 1002},
		{"new message inside fragmented one", []frame{{op: opText, payload: []byte("a")}, text("b")}, 1002},
		{"binary inside fragmented text", []frame{{op: opText, payload: []byte("a")}, binaryMsg([]byte("b"))}, 1002},
		{"echo then error", []frame{text("ok"), {op: 0x3, fin: true}}, 1002},
	}
	for op := byte(3); op <= 0xf; op++ {
		if op == opClose || op == opPing || op == opPong {
			continue
		}
		tests = append(tests, struct {
			name   string
			frames []frame
			want   uint16
		}{fmt.Sprintf("reserved opcode %#x", op), []frame{{op: op, fin: true, payload: []byte("x")}}, 1002})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, mode websocket.Mode) {
				c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
				c.send(tt.frames...)
				if tt.name == "echo then error" {
					// The message before the bad frame is answered before the
					// close (see failorder_test.go).
					c.expectMessage(opText, []byte("ok"))
				}
				c.expectFailure(tt.want)
			})
		})
	}
}

func TestConformanceCloseCodes(t *testing.T) {
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		t.Run(fmt.Sprintf("invalid %d", code), func(t *testing.T) {
			forEachMode(t, func(t *testing.T, mode websocket.Mode) {
				c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
				c.send(closeFrame(code, ""))
				c.expectFailure(1002)
			})
		})
	}
	for _, code := range []uint16{1000, 1001, 1003, 1007, 1011, 3000, 4000, 4999} {
		t.Run(fmt.Sprintf("valid %d", code), func(t *testing.T) {
			forEachMode(t, func(t *testing.T, mode websocket.Mode) {
				c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
				c.send(closeFrame(code, "reason"))
				c.expectCloseCode(code)
				c.expectTCPClose()
			})
		})
	}
}

func TestConformanceInvalidUTF8(t *testing.T) {
	tests := []struct {
		name   string
		frames []frame
	}{
		{"text", []frame{text("hello \xff world")}},
		{"surrogate", []frame{text("\xed\xa0\x80")}},
		{"overlong", []frame{text("\xc0\xaf")}},
		{"truncated at end", []frame{text("ok \xe2\x82")}},
		{"split across fragments, bad end", []frame{
			{op: opText, payload: []byte("\xe2\x82")},
			{op: opCont, fin: true, payload: []byte("x")},
		}},
		{"close reason", []frame{closeFrame(1000, "bad \xff reason")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, mode websocket.Mode) {
				c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
				c.send(tt.frames...)
				c.expectFailure(1007)
			})
		})
	}
}

// The first fragment is already invalid; the server must fail the connection
// without waiting for the rest of the message, which never comes.
func TestConformanceInvalidUTF8FailsFast(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
		c.send(frame{op: opText, payload: []byte("valid start \xce\xba then \xff")})
		c.expectFailure(1007)
	})
}

func TestConformanceOversize(t *testing.T) {
	tests := []struct {
		name   string
		frames []frame
	}{
		{"single frame", []frame{binaryMsg(bytes.Repeat([]byte("x"), 1500))}},
		{"fragments", []frame{
			{op: opText, payload: bytes.Repeat([]byte("a"), 600)},
			{op: opCont, payload: bytes.Repeat([]byte("b"), 600)},
			{op: opCont, fin: true, payload: []byte("c")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, mode websocket.Mode) {
				c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode, ReadLimit: 1024}))
				c.send(binaryMsg(bytes.Repeat([]byte("y"), 1024))) // exactly the limit is fine
				c.expectMessage(opBinary, bytes.Repeat([]byte("y"), 1024))
				c.send(tt.frames...)
				c.expectFailure(1009)
			})
		})
	}
}

func TestConformanceClientCloseHandshake(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
		c.send(text("before close"))
		c.expectMessage(opText, []byte("before close"))
		c.send(closeFrame(1000, "bye"))
		c.expectCloseCode(1000)
		// We send nothing more: the server closes TCP first (RFC 6455 §7.1.1).
		c.expectTCPClose()
	})
}

// A message and a close frame in one write (Autobahn case 7.1.1 and every
// 1.x case sent in bulk): the handler still gets the message and its reply
// goes out before the close echo, since the server's close must follow its
// last data frame (RFC 6455 §5.5.1).
func TestConformanceMessageThenClose(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
		c.send(text("last words"), closeFrame(1000, "bye"))
		c.expectMessage(opText, []byte("last words"))
		c.expectCloseCode(1000)
		c.expectTCPClose()
	})
}

func TestConformanceClientCloseWithoutCode(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
		c.send(frame{op: opClose, fin: true})
		f := c.readFrame()
		if f.op != opClose {
			t.Fatalf("got frame op=%#x, want close", f.op)
		}
		// 1005 must not be sent: an empty payload or 1000 are the answers.
		if len(f.payload) != 0 && binary.BigEndian.Uint16(f.payload) != 1000 {
			t.Errorf("got close payload %q, want empty or code 1000", f.payload)
		}
		c.expectTCPClose()
	})
}

func TestConformanceServerCloseHandshake(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode}))
		c.send(text(closeMe))
		if reason := c.expectCloseCode(1000); reason != "bye" {
			t.Errorf("got close reason %q, want %q", reason, "bye")
		}
		c.send(closeFrame(1000, ""))
		c.expectTCPClose()
	})
}

func TestConformanceSilentClientAfterServerClose(t *testing.T) {
	const closeTimeout = 300 * time.Millisecond
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		c := dialRaw(t, startEchoServer(t, websocket.Config{Mode: mode, CloseTimeout: closeTimeout}))
		c.send(text(closeMe))
		c.expectCloseCode(1000)
		start := time.Now()
		c.expectTCPClose() // we never answer: the server gives up after CloseTimeout
		// Lower bound only: dropping at once would not give us a chance to reply.
		if waited := time.Since(start); waited < closeTimeout/2 {
			t.Errorf("server dropped TCP after %v, want it to wait about CloseTimeout (%v) for our close frame", waited, closeTimeout)
		}
	})
}

func TestConformanceHandshakeErrors(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(req string) string
		wantStatus int
	}{
		{"POST", func(r string) string { return strings.Replace(r, "GET", "POST", 1) }, 405},
		{"no Upgrade", func(r string) string { return strings.Replace(r, "Upgrade: websocket\r\n", "", 1) }, 400},
		{"no Connection", func(r string) string { return strings.Replace(r, "Connection: Upgrade\r\n", "", 1) }, 400},
		{"bad key", func(r string) string { return strings.Replace(r, "dGhlIHNhbXBsZSBub25jZQ==", "short", 1) }, 400},
		{"version 8", func(r string) string { return strings.Replace(r, "Version: 13", "Version: 8", 1) }, 426},
		{"foreign origin", func(r string) string {
			return strings.Replace(r, "\r\n\r\n", "\r\nOrigin: https://evil.example\r\n\r\n", 1)
		}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, mode websocket.Mode) {
				hs := startEchoServer(t, websocket.Config{Mode: mode})
				conn, err := net.Dial("tcp", hs.Listener.Addr().String())
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer conn.Close()
				c := &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
				c.write([]byte(tt.edit("GET /ws HTTP/1.1\r\nHost: " + hs.Listener.Addr().String() +
					"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
					"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")))
				resp := c.readResponse()
				body, _ := io.ReadAll(resp.Body) // reason text, checked below
				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("got status %d (%q), want %d", resp.StatusCode, body, tt.wantStatus)
				}
				if !strings.HasPrefix(string(body), "websocket: ") {
					t.Errorf("got body %q, want a plain-text \"websocket: \" reason", body)
				}
				if tt.wantStatus == 426 && resp.Header.Get("Sec-WebSocket-Version") != "13" {
					t.Errorf("got 426 without Sec-WebSocket-Version: 13")
				}
				if tt.wantStatus == 405 && resp.Header.Get("Allow") != "GET" {
					t.Errorf("got 405 without Allow: GET")
				}
			})
		})
	}
}
