//go:build linux

package hostile

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// rawConn is a WebSocket client that writes whatever bytes a test asks
// for: the suite sends frames no well-behaved client would, so it cannot
// use one. It speaks only what the cases need.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

// upgrade opens a TCP connection to addr and sends an upgrade request for
// path with the extra header lines (each "Name: value"). It returns the
// response status and, when it is not 101, the start of its body; the
// connection is usable for frames when it is 101.
func upgrade(addr, path string, extra ...string) (*rawConn, int, string, error) {
	return upgradeWith(func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 10*time.Second) }, addr, path, extra...)
}

// upgradeSpread is upgrade from the attack addresses (dialTCPErr), for
// the cases that open more handshakes at once than one address may.
func (g *gateway) upgradeSpread(path string, extra ...string) (*rawConn, int, string, error) {
	return upgradeWith(g.dialTCPErr, g.addr, path, extra...)
}

func upgradeWith(dial func() (net.Conn, error), addr, path string, extra ...string) (*rawConn, int, string, error) {
	c, err := dial()
	if err != nil {
		return nil, 0, "", err
	}
	rc := &rawConn{Conn: c, br: bufio.NewReader(c)}
	key := make([]byte, 16)
	_, _ = rand.Read(key) // crypto/rand does not fail
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n", path, addr)
	fmt.Fprintf(&b, "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n", base64.StdEncoding.EncodeToString(key))
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // failures show below
	if _, err := io.WriteString(c, b.String()); err != nil {
		_ = c.Close() // failed handshake
		return nil, 0, "", err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		_ = c.Close() // failed handshake
		return nil, 0, "", err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10)) // a short body is enough to see the reason
		_ = c.Close()                                           // refused
		return nil, resp.StatusCode, strings.TrimSpace(string(body)), nil
	}
	_ = c.SetDeadline(time.Time{}) // the cases set their own
	return rc, resp.StatusCode, "", nil
}

// Opcodes.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
)

// header returns a frame header: b0 is FIN, RSV and opcode; the payload
// length is encoded in the form named by lenBytes (0: 7-bit, 2, 8), and
// the frame is masked with an all-zero key (so the payload goes as is).
func header(b0 byte, length uint64, lenBytes int) []byte {
	h := []byte{b0, 0x80}
	switch lenBytes {
	case 0:
		h[1] |= byte(length)
	case 2:
		h[1] |= 126
		h = binary.BigEndian.AppendUint16(h, uint16(length))
	default:
		h[1] |= 127
		h = binary.BigEndian.AppendUint64(h, length)
	}
	return append(h, 0, 0, 0, 0) // mask key
}

// frame returns a whole masked frame with the shortest length form.
func frame(b0 byte, payload []byte) []byte {
	n := len(payload)
	lb := 0
	switch {
	case n > 0xffff:
		lb = 8
	case n > 125:
		lb = 2
	}
	return append(header(b0, uint64(n), lb), payload...)
}

// closeResult is how the server ended a connection.
type closeResult struct {
	code   int // 0: no close frame
	reason string
	err    error // why reading ended without a close frame
}

func (r closeResult) String() string {
	if r.code != 0 {
		return fmt.Sprintf("close %d %q", r.code, r.reason)
	}
	return fmt.Sprintf("no close frame (%v)", r.err)
}

// readClose reads frames until the server's close frame, skipping data
// and control frames, for at most d.
func (c *rawConn) readClose(d time.Duration) closeResult {
	_ = c.SetReadDeadline(time.Now().Add(d)) // shows as a timeout below
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return closeResult{err: err}
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(c.br, e[:]); err != nil {
				return closeResult{err: err}
			}
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(c.br, e[:]); err != nil {
				return closeResult{err: err}
			}
			n = binary.BigEndian.Uint64(e[:])
		}
		if h[0]&0x0f != opClose {
			if _, err := io.CopyN(io.Discard, c.br, int64(n)); err != nil {
				return closeResult{err: err}
			}
			continue
		}
		p := make([]byte, min(n, 125))
		if _, err := io.ReadFull(c.br, p); err != nil {
			return closeResult{err: err}
		}
		if len(p) < 2 {
			return closeResult{code: 1005}
		}
		return closeResult{code: int(binary.BigEndian.Uint16(p)), reason: string(p[2:])}
	}
}

// isReset reports whether err is the peer resetting or closing the
// connection under a write or read.
func isReset(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}
