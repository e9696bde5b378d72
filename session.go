package wsgate

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"iter"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// ConnInfo describes one connection to hooks and handlers.
type ConnInfo struct {
	ID         string         // unique connection id (also a push target)
	UserID     string         // Identity.UserID; "" for anonymous connections
	RemoteAddr netip.AddrPort // client address as the TCP peer saw it; not valid if unknown
	Protocol   string         // "simple", "wsgate.v1" or "wsgate.v1.json"
}

// form is the protocol form a connection negotiated; it decides how pushes
// and the hello are encoded. Replies follow the request's own encoding.
type form uint8

const (
	formSimple form = iota // no subprotocol: uint32 action + payload
	formBinary             // wsgate.v1: binary frames
	formJSON               // wsgate.v1.json: the same frames as JSON text
	numForms
)

// formOf maps a negotiated subprotocol to its form.
func formOf(subprotocol string) form {
	switch subprotocol {
	case wire.Subprotocol:
		return formBinary
	case wire.SubprotocolJSON:
		return formJSON
	}
	return formSimple
}

// String is the name reported in ConnInfo.Protocol.
func (f form) String() string {
	switch f {
	case formBinary:
		return wire.Subprotocol
	case formJSON:
		return wire.SubprotocolJSON
	}
	return "simple"
}

type connInfoKey struct{}

// ConnFrom returns the connection a handler's ctx belongs to.
func ConnFrom(ctx context.Context) (ConnInfo, bool) {
	c, ok := ctx.Value(connInfoKey{}).(ConnInfo)
	return c, ok
}

// maxSubscriptions bounds the topics one connection may subscribe to, so a
// client cannot grow the registry without limit.
const maxSubscriptions = 256

// session is the gateway's state for one /ws connection. It is kept small
// because a gateway holds hundreds of thousands of them: no goroutine, timer,
// map or channel per session, no string of its own (its connection id is
// written out when asked for, from its counter), and fields ordered so
// that none pads (128 bytes; it took 224 with the whole Identity and a
// refusal reason in it, 144 with its id as a string and a two-word rate
// bucket). Fields other than the atomics are written only before the
// connection is registered or from the engine's callbacks, which the
// engine serialises per connection.
type session struct {
	conn     *websocket.Conn
	identity connIdentity
	topics   topicList   // current subscriptions
	next     *session    // the next session of the same user (registry)
	id       uint64      // the counter of its connection id (idGenerator), never 0
	bucket   tokenBucket // inbound message rate
	// Sequenced delivery (sequence.go), guarded by the user's sync lock.
	epoch    uint64      // the epoch of the user's sequence this connection follows
	seq      uint64      // highest sequence queued
	dupTo    uint64      // sequences up to this may arrive live again after a replay; 0 = none
	acked    uint64      // highest sequence the client acknowledged (executor only)
	expiry   tokenExpiry // the token's deadline (token.go)
	flags    connFlags   // flagReady, flagSlow, flagRestart
	sync     syncState   // replaying or live
	form     form
	limited  bool // closed for exceeding MessageRate; later messages are dropped
	resuming bool // the handshake named a position (epoch, seq) to resume from
}

// connFlags are a session's flags that other goroutines read: each is set
// once and never cleared. One word for all of them keeps a session in the
// 128-byte size class.
type connFlags struct{ v atomic.Uint32 }

const (
	flagReady   uint32 = 1 << iota // the hello is queued: pushes may follow it
	flagSlow                       // closed as a slow consumer (counted once)
	flagRestart                    // to be closed with 1012: the user's sequence moved to another epoch
)

// has reports whether flag is set.
func (f *connFlags) has(flag uint32) bool { return f.v.Load()&flag != 0 }

// set sets flag and reports whether it was set already.
func (f *connFlags) set(flag uint32) bool { return f.v.Or(flag)&flag != 0 }

// connIdentity is what a session keeps of its Identity; the deadline
// (Identity.Expires) lives in session.expiry.
type connIdentity struct {
	UserID string
	Topics *[]string // Identity.Topics (allowTopics): nil allows every topic
}

// allowTopics returns what connIdentity keeps of Identity.Topics: nil for
// nil (every topic allowed, the common case), so that a session without an
// allow-list does not carry a slice header.
func allowTopics(topics []string) *[]string {
	if topics == nil {
		return nil
	}
	return &topics
}

// refusal is the Value of a connection accepted only to tell a browser
// why its authentication failed (refuseInBand): it is closed in onOpen
// with CloseUnauthorized and this reason, and never registered.
type refusal struct{ reason string }

// connInfo returns sess's public description. Its ID is a new string:
// hooks and handlers that ask for it pay for it, idle connections do not.
func (s *Server) connInfo(sess *session) ConnInfo {
	return sess.info(s.ids.format(sess.id))
}

// info returns the session's public description with id as its ID.
func (s *session) info(id string) ConnInfo {
	ci := ConnInfo{ID: id, UserID: s.identity.UserID, Protocol: s.form.String()}
	if s.conn != nil {
		// Kept as an address, not text, and read without allocating:
		// formatting it cost a noticeable share of every small request.
		ci.RemoteAddr = s.conn.RemoteAddrPort()
	}
	return ci
}

// topicList is a session's subscriptions, in no particular order: the
// first inline, any others behind a pointer. Most connections subscribe to
// one topic or none, and then it costs no allocation: a slice took the
// same three words in the session and a backing array besides. Topics are
// never empty, so first == "" means none.
type topicList struct {
	first string
	rest  *[]string // nil when there is at most one
}

// len returns the number of topics.
func (l *topicList) len() int {
	switch {
	case l.first == "":
		return 0
	case l.rest == nil:
		return 1
	}
	return 1 + len(*l.rest)
}

// has reports whether topic is in the list.
func (l *topicList) has(topic string) bool {
	if l.first == topic {
		return topic != ""
	}
	return l.rest != nil && slices.Contains(*l.rest, topic)
}

// add appends topic, which must not be in the list or empty.
func (l *topicList) add(topic string) {
	switch {
	case l.first == "":
		l.first = topic
	case l.rest == nil:
		l.rest = &[]string{topic}
	default:
		*l.rest = append(*l.rest, topic)
	}
}

// drop removes topic if it is in the list.
func (l *topicList) drop(topic string) {
	if l.first == topic {
		l.first = ""
		if l.rest != nil { // the last of the rest takes its place
			l.first = l.pop()
		}
		return
	}
	if l.rest == nil {
		return
	}
	if i := slices.Index(*l.rest, topic); i >= 0 {
		rest := *l.rest
		rest[i] = rest[len(rest)-1]
		l.pop() // the last, now at i
	}
}

// pop removes and returns the last topic of rest, which is not empty, and
// forgets rest once it is.
func (l *topicList) pop() string {
	rest := *l.rest
	last := rest[len(rest)-1]
	rest[len(rest)-1] = ""
	if len(rest) == 1 {
		l.rest = nil
	} else {
		*l.rest = rest[:len(rest)-1]
	}
	return last
}

// all yields every topic; the list must not change meanwhile.
func (l *topicList) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		if l.first == "" || !yield(l.first) || l.rest == nil {
			return
		}
		for _, t := range *l.rest {
			if !yield(t) {
				return
			}
		}
	}
}

// subscribed reports whether the session is subscribed to topic.
func (s *session) subscribed(topic string) bool { return s.topics.has(topic) }

// dropTopic removes topic from the session's list.
func (s *session) dropTopic(topic string) { s.topics.drop(topic) }

// mayAccess reports whether identity allows subscribing to topic: Topics nil
// allows everything; otherwise an exact pattern or a prefix pattern ending in
// "*" must match.
func (id *connIdentity) mayAccess(topic string) bool {
	if id.Topics == nil {
		return true
	}
	for _, p := range *id.Topics {
		if p == topic {
			return true
		}
		if n := len(p) - 1; n >= 0 && p[n] == '*' && len(topic) >= n && topic[:n] == p[:n] {
			return true
		}
	}
	return false
}

// idGenerator makes connection ids: a random per-server prefix, so that ids
// from different gateway nodes (or restarts) do not collide, followed by a
// counter. Both parts are base32 so ids stay short and URL-safe
// ("k7q2m9a0-1v"). A session keeps only its counter; its id is written out
// when a hook, handler, hello or log line needs it, and parsed back when
// one is looked up (parse), so that only the exact text once issued finds
// a connection.
type idGenerator struct {
	prefix string
	next   atomic.Uint64
}

// maxIDLen is the longest id: 8 characters of prefix, "-" and at most 13
// base32 digits of a uint64.
const maxIDLen = 22

func newIDGenerator() (*idGenerator, error) {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	enc := base32.NewEncoding(idDigits).WithPadding(base32.NoPadding)
	return &idGenerator{prefix: enc.EncodeToString(b[:]) + "-"}, nil
}

// idDigits are the base32 digits of ids, as strconv writes them.
const idDigits = "0123456789abcdefghijklmnopqrstuv"

// newID returns a fresh counter (never 0).
func (g *idGenerator) newID() uint64 { return g.next.Add(1) }

// appendID appends the id with counter n to b.
func (g *idGenerator) appendID(b []byte, n uint64) []byte {
	b = append(b, g.prefix...)
	return strconv.AppendUint(b, n, 32)
}

// format returns the id with counter n (one allocation).
func (g *idGenerator) format(n uint64) string {
	var buf [maxIDLen]byte
	return string(g.appendID(buf[:0], n))
}

// parse returns the counter of id, or 0 when id is not one this generator
// writes: the prefix, then the counter in lowercase base32 without leading
// zeros, as appendID writes it. Anything else (another node's prefix,
// "00", uppercase, a counter past 64 bits) names no connection.
func (g *idGenerator) parse(id string) uint64 {
	digits, ok := strings.CutPrefix(id, g.prefix)
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(digits, 32, 64)
	var canonical [maxIDLen]byte // what appendID writes for n
	if err != nil || string(strconv.AppendUint(canonical[:0], n, 32)) != digits {
		return 0
	}
	return n
}

// sessionOf returns the session the /ws handshake stored on c.
func sessionOf(c *websocket.Conn) (*session, bool) {
	s, ok := c.Value().(*session)
	return s, ok
}

// onOpen registers a new /ws connection. The engine sends the client its
// 101 only after onOpen returns, so a client whose handshake has finished
// can be reached by Push, Presence and Disconnect. Pushes skip a full-form
// connection until its hello is queued (flagReady), so the hello is
// always the first frame it reads; sequenced connections buffer their
// user's pushes meanwhile (greet).
func (s *Server) onOpen(c *websocket.Conn) {
	sess, ok := sessionOf(c)
	if !ok {
		s.refuseOpen(c)
		return
	}
	sess.conn = c
	sess.form = formOf(c.Subprotocol())
	var from *broker.Position
	if sequenced(sess) {
		// Not yet visible to anyone: no lock needed. Pushes buffer from
		// the moment it is registered until greet has read the history.
		sess.sync = syncReplaying
		if sess.resuming {
			from = &broker.Position{Epoch: sess.epoch, Seq: sess.seq}
		}
	}
	s.startBackground()
	if n := s.reg.add(sess); n > 0 {
		s.broker.Present(sess.identity.UserID, n)
	}
	switch {
	case sequenced(sess):
		if !s.greet(sess, from) {
			_ = c.Close(websocket.StatusCode(wire.CloseTryAgainLater), "wsgate: delivery state unavailable; try again later") // onClose unregisters it
		}
	case sess.form != formSimple:
		st := s.helloStripe(sess)
		st.mu.Lock()
		s.sendHello(sess, 0, 0)
		sess.flags.set(flagReady) // before unlocking: see reachable
		st.mu.Unlock()
	default:
		sess.flags.set(flagReady)
	}
	s.ctr.accepted.Add(1)
	s.obs.forms[sess.form].Add(1)
	if s.cfg.OnConnect != nil {
		info := s.connInfo(sess)
		s.cfg.OnConnect(s.connContext(info), &info)
	}
}

// onClose unregisters a /ws connection and releases its MaxConns slot.
func (s *Server) onClose(c *websocket.Conn, err error) {
	sess, ok := sessionOf(c)
	if !ok {
		if _, refused := c.Value().(*refusal); refused {
			s.ctr.open.Add(-1) // never registered, never announced
		}
		return
	}
	if sequenced(sess) {
		s.leaveSync(sess)
	}
	if n := s.reg.remove(sess); n >= 0 {
		s.broker.Present(sess.identity.UserID, n)
	}
	sess.topics = topicList{}
	s.ctr.open.Add(-1)
	s.obs.forms[sess.form].Add(-1)
	code := int(websocket.CloseStatus(err))
	if code < 0 {
		code = int(wire.CloseAbnormal)
	}
	s.obs.closes.add(code)
	if s.cfg.OnDisconnect != nil {
		info := s.connInfo(sess)
		s.cfg.OnDisconnect(&info, code)
	}
}

// connContext is the parent context of hooks and handlers for one
// connection: it carries ConnInfo and ends when Shutdown gives up waiting.
func (s *Server) connContext(info ConnInfo) context.Context {
	return context.WithValue(s.handlerCtx, connInfoKey{}, info)
}

// sendHello queues for a full-form client its ids, its user's epoch and
// last push sequence, and the limits it must obey.
func (s *Server) sendHello(sess *session, epoch, seq uint64) {
	var id [maxIDLen]byte
	f := wire.Frame{
		Type:       wire.TypeHello,
		Seq:        seq,
		Epoch:      epoch,
		ConnID:     s.ids.appendID(id[:0], sess.id),
		UserID:     []byte(sess.identity.UserID),
		MaxMessage: uint32(min(s.cfg.MaxMessageSize, math.MaxUint32)),
		Heartbeat:  uint16(min((s.cfg.PingInterval+time.Second-1)/time.Second, math.MaxUint16)), // rounded up: 0 would mean none
	}
	s.queueFrame(sess, sess.form == formJSON, &f)
}

// helloStripe returns the sync stripe under which a full-form connection's
// hello is queued and the connection marked ready: its user's for a
// sequenced connection (greet), the one its id's counter picks otherwise.
func (s *Server) helloStripe(sess *session) *syncStripe {
	if sequenced(sess) {
		return s.syncs.stripe(sess.identity.UserID)
	}
	return &s.syncs.stripes[sess.id%syncStripes]
}

// reachable reports whether pushes may go to sess. A full-form connection
// becomes reachable once its hello is queued; a push that finds it not yet
// ready waits, once, for a hello being queued right now, so that a client
// that already has its hello is always reachable, and no push ever
// precedes the hello. The wait is one enqueue long.
func (s *Server) reachable(sess *session) bool {
	if sess.flags.has(flagReady) {
		return true
	}
	if sess.form == formSimple {
		return false
	}
	st := s.helloStripe(sess)
	st.mu.Lock()
	ready := sess.flags.has(flagReady)
	st.mu.Unlock()
	return ready
}
