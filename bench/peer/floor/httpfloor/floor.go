package main

import (
	"crypto/subtle"
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
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// floor is the server: the token parser, the API key, the connected
// users and the reactor that reads their connections.
type floor struct {
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
	apiAuth []byte // "Bearer KEY"
	epfd    int    // the reactor's epoll
	done    chan struct{}
	stop    atomic.Bool

	mu    sync.RWMutex
	users map[string]*peer // a user's latest connection
	fds   map[int32]*peer  // every connection, by descriptor
	next  atomic.Uint64    // connection ids
}

// peer is one WebSocket connection, taken from net/http (its own duplicate
// of the socket, out of Go's poller): one goroutine, the reactor, reads
// every connection, so that a connection costs no goroutine of its own,
// as in wsgate's engine.
type peer struct {
	mu     sync.Mutex // held for a write, and to close fd
	fd     int
	closed bool
	user   string
	in     []byte // the start of a client frame not yet complete
}

func newFloor(secret []byte, apiKey string) (*floor, error) {
	if len(secret) < 16 {
		return nil, errors.New("httpfloor: --jwt-secret must be at least 16 bytes")
	}
	if apiKey == "" {
		return nil, errors.New("httpfloor: --api-key is required")
	}
	// The options of internal/auth.NewVerifier for an HS256 secret.
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithLeeway(0), jwt.WithExpirationRequired())
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("httpfloor: epoll: %w", err)
	}
	f := &floor{
		parser:  parser,
		keyFunc: func(*jwt.Token) (any, error) { return secret, nil },
		apiAuth: []byte("Bearer " + apiKey),
		epfd:    epfd,
		done:    make(chan struct{}),
		users:   map[string]*peer{},
		fds:     map[int32]*peer{},
	}
	go f.reactor()
	return f, nil
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

// upgrade is the connect floor: check, verify, hijack, one write of the
// 101 and the hello, then the connection is the reactor's.
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
	if brw.Reader.Buffered() > 0 {
		_ = c.Close() // a client that does not wait for the 101 is not served
		return
	}
	fd, err := takeFD(c)
	if err != nil {
		return
	}
	var buf [512]byte
	b := appendResponse(buf[:0], key)
	hello := wire.Frame{Type: wire.TypeHello, ConnID: strconv.AppendUint(nil, f.next.Add(1), 10), UserID: []byte(user), MaxMessage: maxMessage}
	if b, err = appendFrame(b, &hello); err != nil {
		_ = unix.Close(fd) // a user id too long for the hello; the client sees the connection end
		return
	}
	if n, err := writeFD(fd, b); err != nil || n != len(b) {
		_ = unix.Close(fd) // the client is gone, or its window is shut: no queue here
		return
	}
	p := &peer{fd: fd, user: user}
	f.mu.Lock()
	f.users[user] = p
	f.fds[int32(fd)] = p
	f.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(f.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		f.drop(p)
	}
}

// takeFD duplicates c's socket and closes c, which takes the socket out of
// Go's poller; the duplicate shares its non-blocking mode.
func takeFD(c net.Conn) (int, error) {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		_ = c.Close() // not servable
		return -1, err
	}
	fd := -1
	cerr := raw.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
	_ = c.Close() // the duplicate, if made, keeps the socket open
	if cerr != nil || err != nil {
		return -1, errors.Join(cerr, err)
	}
	return fd, nil
}

// drop forgets p and closes its socket (which also takes it out of epoll).
func (f *floor) drop(p *peer) {
	f.mu.Lock()
	if f.users[p.user] == p {
		delete(f.users, p.user)
	}
	delete(f.fds, int32(p.fd))
	f.mu.Unlock()
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		_ = unix.Close(p.fd) // gone either way
	}
	p.mu.Unlock()
}

// write writes b to p in one write(2); a write that does not take all of
// b ends the connection (there is no queue).
func (p *peer) write(b []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	n, err := writeFD(p.fd, b)
	return err == nil && n == len(b)
}

// writeFD is write(2) without the scheduler's system-call bookkeeping, as
// wsgate's engine writes small frames (websocket/reactor_linux.go).
func writeFD(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// reactor reads the connections that epoll reports readable, until
// shutdown; it waits at most a second at a time, to see the stop flag.
func (f *floor) reactor() {
	defer close(f.done)
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	for !f.stop.Load() {
		n, err := unix.EpollWait(f.epfd, events, 1000)
		if err != nil && err != unix.EINTR {
			return
		}
		for _, ev := range events[:max(n, 0)] {
			f.mu.RLock()
			p := f.fds[ev.Fd]
			f.mu.RUnlock()
			if p != nil && !f.readable(p, buf) {
				f.drop(p)
			}
		}
	}
}

// readable reads what p's client sent and serves the complete frames;
// false ends the connection.
func (f *floor) readable(p *peer, buf []byte) bool {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(p.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	switch {
	case e == unix.EAGAIN || e == unix.EINTR:
		return true
	case e != 0 || n == 0:
		return false
	}
	in := buf[:n]
	if len(p.in) > 0 {
		in = append(p.in, in...)
	}
	for len(in) > 0 {
		op, payload, size, err := parseFrame(in)
		if err != nil {
			return false
		}
		if size == 0 {
			break // incomplete
		}
		if !f.serve(p, op, payload) {
			return false
		}
		in = in[size:]
	}
	p.in = append(p.in[:0], in...)
	return true
}

// serve answers one client frame: a request gets an empty reply (a
// subscription is acknowledged, not kept), a ping its pong, a close its
// close; false ends the connection.
func (f *floor) serve(p *peer, op byte, payload []byte) bool {
	switch op {
	case opBinary:
		var req wire.Frame
		if wire.DecodeFrame(payload, &req) != nil {
			return false
		}
		if req.Type == wire.TypeRequest && req.ID != 0 {
			var out [16]byte
			b, _ := appendFrame(out[:0], &wire.Frame{Type: wire.TypeReply, ID: req.ID}) // a reply always encodes
			return p.write(b)
		}
	case opPing, opClose:
		if len(payload) > 125 {
			return false
		}
		reply := append([]byte{0x80 | opPong, byte(len(payload))}, payload...)
		if op == opClose {
			reply[0] = 0x80 | opClose // the close echoed
		}
		return p.write(reply) && op != opClose
	}
	return true
}

// appendResponse appends the 101 that accepts key with the full form.
func appendResponse(b []byte, key string) []byte {
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: "+wire.Subprotocol+"\r\nSec-WebSocket-Accept: "...)
	b = websocket.AppendAcceptKey(b, key)
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

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

var errFrame = errors.New("httpfloor: unsupported or bad client frame")

// parseFrame parses the masked, unfragmented client frame at the start
// of b and unmasks its payload in place; size 0: b holds only part of it.
func parseFrame(b []byte) (op byte, payload []byte, size int, err error) {
	if len(b) < 2 {
		return 0, nil, 0, nil
	}
	if b[0]&0xf0 != 0x80 || b[1]&0x80 == 0 { // FIN, no RSV bits, masked
		return 0, nil, 0, errFrame
	}
	op = b[0] & 0x0f
	n, h := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, nil, 0, nil
		}
		n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, nil, 0, nil
		}
		n, h = binary.BigEndian.Uint64(b[2:]), 10
	}
	if n > maxMessage || op == 0 {
		return 0, nil, 0, errFrame
	}
	if uint64(len(b)) < uint64(h)+4+n {
		return 0, nil, 0, nil
	}
	mask := b[h : h+4]
	payload = b[h+4 : h+4+int(n)]
	for i := range payload {
		payload[i] ^= mask[i&3]
	}
	return op, payload, h + 4 + int(n), nil
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
	if err != nil || !p.write(b) {
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

// shutdown stops the reactor and closes every connection
// (http.Server.Close does not close hijacked ones).
func (f *floor) shutdown() {
	f.stop.Store(true)
	<-f.done
	f.mu.RLock()
	peers := make([]*peer, 0, len(f.fds))
	for _, p := range f.fds {
		peers = append(peers, p)
	}
	f.mu.RUnlock()
	for _, p := range peers {
		f.drop(p)
	}
	_ = unix.Close(f.epfd) // nothing to do at exit
}
