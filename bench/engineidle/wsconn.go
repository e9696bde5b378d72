package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// The client side of the benchmark speaks just enough RFC 6455 by hand that an
// idle connection costs it a net.Conn and nothing else: no goroutine, no
// buffers. It is not what is measured.

const (
	opText   = 1
	opBinary = 2
	opClose  = 8
	opPing   = 9
	opPong   = 10

	// maxFrame bounds what the client accepts from a server.
	maxFrame = 1 << 20
	wsGUID   = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

// dialWS connects and performs the opening handshake. The returned reader
// holds whatever the server sent after its 101 response.
func dialWS(ctx context.Context, addr, path, deflate string) (net.Conn, *bufio.Reader, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("engineidle: dial: %w", err)
	}
	br, err := handshake(ctx, conn, addr, path, deflate)
	if err != nil {
		_ = conn.Close() // the handshake error is the one worth reporting
		return nil, nil, err
	}
	return conn, br, nil
}

// deflateOffers are the Sec-WebSocket-Extensions lines of the -deflate
// choices.
var deflateOffers = map[string]string{
	"":         "",
	"on":       "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n",
	"takeover": "Sec-WebSocket-Extensions: permessage-deflate\r\n",
}

func handshake(ctx context.Context, conn net.Conn, addr, path, deflate string) (*bufio.Reader, error) {
	offer, ok := deflateOffers[deflate]
	if !ok {
		return nil, fmt.Errorf("engineidle: -deflate %q: want \"\", on or takeover", deflate)
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return nil, fmt.Errorf("engineidle: handshake: %w", err)
		}
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails on Linux
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n" + offer + "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, fmt.Errorf("engineidle: handshake: %w", err)
	}
	br := bufio.NewReaderSize(conn, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("engineidle: handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("engineidle: handshake: got status %s, want 101", resp.Status)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
		return nil, fmt.Errorf("engineidle: handshake: got Sec-WebSocket-Accept %q, want %q", got, want)
	}
	ext := resp.Header.Get("Sec-WebSocket-Extensions")
	if deflate != "" && !strings.HasPrefix(ext, "permessage-deflate") {
		return nil, fmt.Errorf("engineidle: handshake: got Sec-WebSocket-Extensions %q, want permessage-deflate", ext)
	}
	if deflate == "takeover" && strings.Contains(ext, "no_context_takeover") {
		return nil, fmt.Errorf("engineidle: handshake: got %q, want context takeover both ways (start the server with -compress-takeover)", ext)
	}
	return br, nil
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// clientFrame returns one masked, final frame. The key is fixed: the server
// must unmask whatever it is, and a constant frame can be written many times.
func clientFrame(op byte, payload []byte) []byte {
	key := [4]byte{0x1f, 0x2e, 0x3d, 0x4c}
	f := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

// compressedFrame is clientFrame of msg compressed (RFC 7692: RSV1 set, sync
// tail removed), without context takeover, valid in every negotiation.
func compressedFrame(op byte, msg []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed) // the level is valid
	_, _ = w.Write(msg)                          // a bytes.Buffer does not fail
	_ = w.Flush()
	f := clientFrame(op, bytes.TrimSuffix(b.Bytes(), []byte(syncTail)))
	f[0] |= 0x40
	return f
}

const syncTail = "\x00\x00\xff\xff"

// inflate decompresses a compressed message payload. The server's
// compressor may keep context between messages; the client sends and checks
// one message per connection at a time and ignores context, which is fine
// for the idle probe (the first compressed message of its connection); the
// verify phase passes the first echo as dict. Comparing the echo checks it.
func inflate(p, dict []byte) ([]byte, error) {
	r := flate.NewReaderDict(io.MultiReader(bytes.NewReader(p), strings.NewReader(syncTail+"\x01\x00\x00\xff\xff")), dict)
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("engineidle: inflate: %w", err)
	}
	return out, nil
}

// readFrame reads one unmasked server frame into buf (grown as needed) and
// returns its opcode and payload, inflated if compressed. Fragmented
// messages are not expected from an echo of a small message and are
// reported as errors.
func readFrame(br *bufio.Reader, buf []byte) (byte, []byte, error) {
	return readFrameDict(br, buf, nil)
}

// readFrameDict is readFrame inflating with dict, the server's context.
func readFrameDict(br *bufio.Reader, buf, dict []byte) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 || h[0]&0x30 != 0 || h[1]&0x80 != 0 {
		return 0, nil, fmt.Errorf("engineidle: unexpected frame header %#x %#x", h[0], h[1])
	}
	n, err := payloadLen(br, h[1]&0x7f)
	if err != nil {
		return 0, nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		return 0, nil, err
	}
	if h[0]&0x40 != 0 {
		p, err := inflate(buf, dict)
		return h[0] & 0x0f, p, err
	}
	return h[0] & 0x0f, buf, nil
}

func payloadLen(br *bufio.Reader, l byte) (int, error) {
	var ext [8]byte
	switch l {
	case 126:
		if _, err := io.ReadFull(br, ext[:2]); err != nil {
			return 0, err
		}
		return int(binary.BigEndian.Uint16(ext[:2])), nil
	case 127:
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint64(ext[:])
		if n > maxFrame {
			return 0, fmt.Errorf("engineidle: frame of %d bytes, limit %d", n, maxFrame)
		}
		return int(n), nil
	}
	return int(l), nil
}

// readData returns the next data frame, skipping pings and pongs; a close
// frame is an error.
func readData(br *bufio.Reader, buf []byte) (byte, []byte, error) {
	return readDataDict(br, buf, nil)
}

// readDataDict is readData inflating with dict (see inflate).
func readDataDict(br *bufio.Reader, buf, dict []byte) (byte, []byte, error) {
	for {
		op, p, err := readFrameDict(br, buf, dict)
		if err != nil {
			return 0, nil, err
		}
		switch op {
		case opText, opBinary:
			return op, p, nil
		case opClose:
			return 0, nil, fmt.Errorf("engineidle: server sent close frame %x", p)
		case opPing, opPong:
			continue
		default:
			return 0, nil, fmt.Errorf("engineidle: unexpected opcode %d", op)
		}
	}
}

var errEchoMismatch = errors.New("engineidle: echo differs from what was sent")
