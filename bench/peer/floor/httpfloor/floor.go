package main

import (
	"bufio"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/wire"
)

// floor is the server: the token parser, the API key and the map of
// connected users.
type floor struct {
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
	apiAuth []byte // "Bearer KEY"

	mu    sync.RWMutex
	users map[string]*peer // a user's latest connection
	conns map[*peer]struct{}
	next  atomic.Uint64 // connection ids
}

// peer is one hijacked WebSocket connection. Writes need no lock of their
// own: net.Conn.Write holds the descriptor's write lock for the whole
// buffer, so a push and a reply never interleave.
type peer struct{ c net.Conn }

func newFloor(secret []byte, apiKey string) (*floor, error) {
	if len(secret) < 16 {
		return nil, errors.New("httpfloor: --jwt-secret must be at least 16 bytes")
	}
	if apiKey == "" {
		return nil, errors.New("httpfloor: --api-key is required")
	}
	// The options of internal/auth.NewVerifier for an HS256 secret.
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithLeeway(0), jwt.WithExpirationRequired())
	return &floor{
		parser:  parser,
		keyFunc: func(*jwt.Token) (any, error) { return secret, nil },
		apiAuth: []byte("Bearer " + apiKey),
		users:   map[string]*peer{},
		conns:   map[*peer]struct{}{},
	}, nil
}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ws":
		f.upgrade(w, r)
	case "/api/v1/push":
		f.push(w, r)
	default:
		http.NotFound(w, r)
	}
}

// claims is what wsgate decodes a token into (internal/auth's tokenClaims).
type claims struct {
	Topics []string `json:"topics,omitempty"`
	jwt.RegisteredClaims
}

// verify returns the user of the request's bearer token.
func (f *floor) verify(r *http.Request) (string, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errors.New("httpfloor: missing token (Authorization: Bearer)")
	}
	var c claims
	if _, err := f.parser.ParseWithClaims(tok, &c, f.keyFunc); err != nil {
		return "", fmt.Errorf("httpfloor: token rejected: %w", err)
	}
	if c.Subject == "" || len(c.Subject) > 1024 {
		return "", errors.New("httpfloor: token sub claim missing or too long")
	}
	return c.Subject, nil
}

const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// upgrade is the connect floor: check, verify, hijack, one write of the
// 101 and the hello, then read the connection until it ends.
func (f *floor) upgrade(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if r.Method != http.MethodGet || len(key) != 24 || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "httpfloor: not a WebSocket upgrade", http.StatusBadRequest)
		return
	}
	if !strings.Contains(r.Header.Get("Sec-WebSocket-Protocol"), wire.Subprotocol) {
		http.Error(w, "httpfloor: only the full form ("+wire.Subprotocol+") is served", http.StatusBadRequest)
		return
	}
	user, err := f.verify(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return // net/http has answered
	}
	p := &peer{c: c}
	var buf [512]byte
	b := appendResponse(buf[:0], key)
	hello := wire.Frame{Type: wire.TypeHello, ConnID: strconv.AppendUint(nil, f.next.Add(1), 10), UserID: []byte(user), MaxMessage: maxMessage}
	if b, err = appendFrame(b, &hello); err != nil {
		_ = c.Close() // a user id too long for the hello; the client sees the connection end
		return
	}
	if _, err := c.Write(b); err != nil {
		_ = c.Close() // the client is gone
		return
	}
	f.mu.Lock()
	f.users[user] = p
	f.conns[p] = struct{}{}
	f.mu.Unlock()
	f.read(p, brw.Reader)
	f.mu.Lock()
	if f.users[user] == p {
		delete(f.users, user)
	}
	delete(f.conns, p)
	f.mu.Unlock()
	_ = c.Close() // it has ended either way
}

// appendResponse appends the 101 that accepts key with the full form.
func appendResponse(b []byte, key string) []byte {
	var kb [64]byte
	sum := sha1.Sum(append(append(kb[:0], key...), websocketGUID...))
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: "+wire.Subprotocol+"\r\nSec-WebSocket-Accept: "...)
	b = base64.StdEncoding.AppendEncode(b, sum[:])
	return append(b, "\r\n\r\n"...)
}

// maxMessage is the largest client message read (the hello states it).
const maxMessage = 64 << 10

// appendFrame appends f as one unmasked binary WebSocket message.
func appendFrame(b []byte, f *wire.Frame) ([]byte, error) {
	start := len(b)
	b = append(b, 0x82, 0, 0, 0) // room for a 16-bit length
	b, err := wire.AppendFrame(b, f)
	if err != nil {
		return b[:start], err
	}
	return frameHeader(b, start), nil
}

// frameHeader writes the header of the message that starts at b[start]
// with 4 bytes of room (FIN + binary, 7- or 16-bit length), moving a short
// payload back by 2 bytes.
func frameHeader(b []byte, start int) []byte {
	n := len(b) - start - 4
	if n < 126 {
		b[start+1] = byte(n)
		copy(b[start+2:], b[start+4:])
		return b[:len(b)-2]
	}
	b[start+1] = 126
	binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	return b
}

// read serves p's client messages until the connection ends: a request
// gets an empty reply (a subscription is acknowledged, not kept), a ping
// its pong, a close its close.
func (f *floor) read(p *peer, br *bufio.Reader) {
	var buf []byte
	for {
		op, payload, err := readMessage(br, buf)
		if err != nil {
			return
		}
		buf = payload[:0]
		switch op {
		case opBinary:
			var req wire.Frame
			if wire.DecodeFrame(payload, &req) != nil {
				return
			}
			if req.Type == wire.TypeRequest && req.ID != 0 {
				var out [16]byte
				b, _ := appendFrame(out[:0], &wire.Frame{Type: wire.TypeReply, ID: req.ID}) // a reply always encodes
				if _, err := p.c.Write(b); err != nil {
					return
				}
			}
		case opPing, opClose:
			if len(payload) > 125 {
				return
			}
			reply := append([]byte{0x80 | opPong, byte(len(payload))}, payload...)
			if op == opClose {
				reply[0] = 0x80 | opClose // the close echoed
			}
			if _, err := p.c.Write(reply); err != nil || op == opClose {
				return
			}
		}
	}
}

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

var errFrame = errors.New("httpfloor: unsupported or bad client frame")

// readMessage reads one masked, unfragmented client frame into buf (grown
// as needed) and returns its opcode and unmasked payload.
func readMessage(br *bufio.Reader, buf []byte) (op byte, payload []byte, err error) {
	var h [8]byte
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		return 0, nil, err
	}
	if h[0]&0xf0 != 0x80 || h[1]&0x80 == 0 { // FIN, no RSV bits, masked
		return 0, nil, errFrame
	}
	op = h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(br, h[:8]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	if n > maxMessage || op == 0 {
		return 0, nil, errFrame
	}
	var mask [4]byte
	if _, err := io.ReadFull(br, mask[:]); err != nil {
		return 0, nil, err
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	payload = buf[:n]
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	for i := range payload {
		payload[i] ^= mask[i&3]
	}
	return op, payload, nil
}

// pushBody is the body of POST /api/v1/push as the load generator sends
// it to one user.
type pushBody struct {
	To struct {
		User string `json:"user"`
	} `json:"to"`
	Action uint32          `json:"action"`
	JSON   json.RawMessage `json:"json"`
}

// maxBody bounds a push body.
const maxBody = 8 << 10

var bodies = sync.Pool{New: func() any { return new([maxBody + 1]byte) }}

// push is the personal floor: check the key, decode, look up, one
// write(2) of the push frame, answer.
func (f *floor) push(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeAnswer(w, http.StatusMethodNotAllowed, `{"error":"httpfloor: POST only"}`+"\n")
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), f.apiAuth) != 1 {
		writeAnswer(w, http.StatusUnauthorized, `{"error":"httpfloor: bad API key"}`+"\n")
		return
	}
	bp := bodies.Get().(*[maxBody + 1]byte)
	defer bodies.Put(bp)
	n, err := io.ReadFull(r.Body, bp[:])
	if err != io.ErrUnexpectedEOF && err != io.EOF || n > maxBody {
		writeAnswer(w, http.StatusBadRequest, `{"error":"httpfloor: body unreadable or larger than 8 KiB"}`+"\n")
		return
	}
	var req pushBody
	if err := json.Unmarshal(bp[:n], &req); err != nil || req.To.User == "" || !wire.Action(req.Action).IsApp() {
		writeAnswer(w, http.StatusBadRequest, `{"error":"httpfloor: want {\"to\":{\"user\":…},\"action\":…,\"json\":…}"}`+"\n")
		return
	}
	f.mu.RLock()
	p := f.users[req.To.User]
	f.mu.RUnlock()
	if p == nil {
		writeAnswer(w, http.StatusNotFound, `{"error":"httpfloor: user not connected"}`+"\n")
		return
	}
	// The frame is built in the body's buffer, behind the body.
	b, err := appendFrame(bp[n:n], &wire.Frame{Type: wire.TypePush, Action: wire.Action(req.Action), Payload: req.JSON})
	if err == nil {
		_, err = p.c.Write(b)
	}
	if err != nil {
		writeAnswer(w, http.StatusNotFound, `{"error":"httpfloor: user not connected"}`+"\n")
		return
	}
	writeAnswer(w, http.StatusOK, `{"delivered":1}`+"\n")
}

func writeAnswer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body) // the client went away; nothing to do
}

// closeAll closes every hijacked connection (http.Server.Close does not).
func (f *floor) closeAll() {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for p := range f.conns {
		_ = p.c.Close() // shutting down
	}
}
