package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// HandshakeError is a connection attempt the server answered with an HTTP
// status instead of upgrading: 401 for a missing or bad token, 403 for a
// foreign origin, 429 and 503 when it is busy.
type HandshakeError struct {
	StatusCode int
	Err        error // the engine's error; its text includes the server's message
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("wsgate: handshake refused with HTTP %d: %v", e.StatusCode, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// terminal reports whether dialing again cannot help: the protocol makes
// 401 and 403 final, like close codes 4500 and 4501; anything else (429,
// 5xx, a proxy's 404 during a deploy) is retried with backoff.
func (e *HandshakeError) terminal() bool {
	return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// position is where the client stands in its user's push sequence.
type position struct {
	epoch, seq uint64
	known      bool // false until the first hello: the client has no position yet
}

// connect opens one connection and waits for the server's hello, within
// Options.DialTimeout. A client with a known position names it in the
// handshake (wire.ResumeParam), so that the server sends every push after
// it before anything newer.
func (c *Client) connect(ctx context.Context, from position) (*websocket.Conn, Hello, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	h := c.opts.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	tok, err := c.dialToken(ctx)
	if err != nil {
		return nil, Hello{}, err
	}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	target, err := resumeURL(c.url, from)
	if err != nil {
		return nil, Hello{}, err
	}
	conn, resp, err := websocket.Dial(ctx, target, &c.wsCfg, &websocket.DialOptions{
		Header:       h,
		Subprotocols: []string{wire.Subprotocol},
		TLSConfig:    c.opts.TLSConfig,
	})
	if err != nil {
		if resp != nil {
			return nil, Hello{}, &HandshakeError{StatusCode: resp.StatusCode, Err: err}
		}
		return nil, Hello{}, fmt.Errorf("wsgate: dial %s: %w", c.url, err)
	}
	if p := conn.Subprotocol(); p != wire.Subprotocol {
		_ = conn.CloseNow() // unusable; the error below says why
		return nil, Hello{}, fmt.Errorf("wsgate: %s did not accept subprotocol %s (got %q); is it a wsgate /ws endpoint?", c.url, wire.Subprotocol, p)
	}
	hello, err := readHello(ctx, conn)
	if err != nil {
		_ = conn.CloseNow() // nothing more to say to a server that broke the protocol
		return nil, Hello{}, err
	}
	return conn, hello, nil
}

// resumeURL adds the position to the endpoint's query, replacing one the
// caller put there.
func resumeURL(endpoint string, from position) (string, error) {
	if !from.known {
		return endpoint, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("wsgate: url %q: %w", endpoint, err)
	}
	q := u.Query()
	q.Set(wire.ResumeParam, string(wire.FormatResume(nil, from.epoch, from.seq)))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// readHello reads the first frame, which the protocol makes a hello. A close
// instead (a token rejected after the upgrade) is returned as is, so the
// caller sees its code.
func readHello(ctx context.Context, conn *websocket.Conn) (Hello, error) {
	typ, data, err := conn.Read(ctx)
	if err != nil {
		return Hello{}, fmt.Errorf("wsgate: waiting for hello: %w", err)
	}
	var f wire.Frame
	if decode(typ, data, &f) != nil || f.Type != wire.TypeHello {
		return Hello{}, errors.New("wsgate: server did not start with a hello frame")
	}
	return Hello{
		ConnID:     string(f.ConnID),
		UserID:     string(f.UserID),
		MaxMessage: int(f.MaxMessage),
		Heartbeat:  time.Duration(f.Heartbeat) * time.Second,
		lastSeq:    f.Seq,
		epoch:      f.Epoch,
	}, nil
}

// closeCode is the close code that ended a connection; a connection that
// dropped without a close frame counts as 1006.
func closeCode(err error) wire.CloseCode {
	if code := websocket.CloseStatus(err); code > 0 {
		return wire.CloseCode(code)
	}
	return wire.CloseAbnormal
}

// terminalError reports whether err, from a connection attempt, means the
// client must stop: a refused handshake or a terminal close code.
func terminalError(err error) bool {
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.terminal()
	}
	if websocket.CloseStatus(err) > 0 {
		return !closeCode(err).Reconnect()
	}
	return false
}

// decode decodes a binary frame or, for a text message, its JSON form.
func decode(typ websocket.MessageType, data []byte, f *wire.Frame) error {
	if typ == websocket.TextMessage {
		return wire.DecodeJSON(data, f)
	}
	return wire.DecodeFrame(data, f)
}

// writeFrame encodes f and sends it on conn, waiting until ctx ends for room
// in the write queue.
func writeFrame(ctx context.Context, conn *websocket.Conn, f *wire.Frame) error {
	buf, err := wire.AppendFrame(make([]byte, 0, requestOverhead+len(f.Payload)), f)
	if err != nil {
		return fmt.Errorf("wsgate: encode %s frame: %w", f.Type, err)
	}
	if err := conn.Write(ctx, websocket.BinaryMessage, buf); err != nil {
		return fmt.Errorf("wsgate: send %s frame: %w", f.Type, err)
	}
	return nil
}
