package websocket

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one WebSocket connection. Every method may be called from any
// goroutine at any time, including from its own Handler callbacks.
//
// Conn is kept small because a gateway holds very many idle ones: it owns
// no buffer, timer or goroutine while idle (reactor mode); its read buffer
// belongs to its poller and its write queue exists only while the kernel
// refuses data.
type Conn struct {
	// What a write touches comes first, in one 64-byte cache line (Conns
	// are 192-byte objects, three lines, so lines do not straddle them:
	// keep it so, TestConnSize; the 208-byte class would put half of the
	// Conns' first 64 bytes across two lines): a fanout
	// writes to thousands of connections whose Conns are not in cache,
	// and each line more is a cache miss more per recipient.
	eng       *engine
	poller    *poller                 // reactor mode; nil in blocking mode
	x         atomic.Pointer[connExt] // rarely needed fields, allocated on demand
	wmu       sync.Mutex
	wflags    writeFlags    // (wmu)
	io        ioState       // (I/O)
	scheduled bool          // on the executor's run queue or being run (imu)
	fd        int32         // reactor mode: our duplicate of the socket (I/O)
	events    uint32        // reactor mode: the registered epoll interest (wmu)
	lastWrite atomic.Uint32 // see below
	lastRead  atomic.Uint32
	slot      int32  // reactor mode: index in the poller's table (I/O)
	gen       uint32 // reactor mode: tells stale epoll events apart (I/O)
	inN       int32  // messages (not open/close items) in the inbox (imu)
	// lastRead and lastWrite are activity in engine ticks (see
	// engine.ticks): the last read, stored by the I/O goroutine, and the
	// last frame sent or queued, stored under wmu. Any goroutine may load
	// them (Activity, the reactor's idle sweep). 32 bits each, in the 8
	// bytes an int64 of nanoseconds took before.

	value any

	// Handler side, guarded by imu: the inbox, a ring through
	// inboxItem.next whose last item points to the first.
	inTail *inboxItem

	lprev, lnext *Conn // engine connection list, guarded by engine.mu

	// Owned by the I/O goroutine (the poller, or the blocking reader).
	p parser

	imu       sync.Mutex
	paused    atomic.Bool // the inbox is full: reading stops until it drains
	finalized bool        // OnClose returned; done is (to be) closed (imu)
	proto     uint8       // subprotocol: 0 none, i+1 the engine's protocols[i], or protoInExt; set before the Conn is shared
	remote    peerAddr    // set before the Conn is shared
}

// connExt holds what most connections never need, or need only once they
// end; allocating it on demand keeps Conn in a smaller size class.
type connExt struct {
	// What every write looks at first, in one cache line.
	q     writeQueue     // output the kernel did not take yet (wmu)
	flate *deflateParams // negotiated permessage-deflate; set before the Conn is shared
	defl  *deflater      // our compressor when it keeps its window between messages (wmu)

	bio         *blockingIO  // blocking mode; set before the Conn is shared
	subprotocol string       // when the engine's table is full (Conn.proto); set before the Conn is shared
	closeErr    error        // why the connection ended; final once the close item is queued (I/O)
	deadline    atomic.Int64 // unix nanos when waiting for the peer's close ends; 0 = not closing (set under wmu)

	localClose *CloseError   // the close frame we started the handshake with (wmu)
	werr       error         // the write error that broke the connection (wmu)
	room       chan struct{} // closed when wqBytes shrinks; made by Write(ctx) (wmu)
	done       chan struct{} // closed by finalize; made by Done (imu)
}

// ext returns c's connExt, allocating it on first use.
func (c *Conn) ext() *connExt {
	if x := c.x.Load(); x != nil {
		return x
	}
	x := new(connExt)
	if c.x.CompareAndSwap(nil, x) {
		return x
	}
	return c.x.Load()
}

// unused reports whether x holds nothing: every field at its zero value
// (TestConnExtUnusedCoversEveryField keeps this list complete).
func (x *connExt) unused() bool {
	return x.q.chunks == nil && x.q.bytes == 0 && x.flate == nil && x.defl == nil &&
		x.bio == nil && x.subprotocol == "" && x.closeErr == nil && x.localClose == nil &&
		x.werr == nil && x.room == nil && x.done == nil && x.deadline.Load() == 0
}

// shedExtLocked drops c's connExt when nothing in it is in use any more:
// the hello written while the 101 was held, or replies queued while
// corked, leave one behind with an empty queue, and an idle connection
// should not keep its 128 bytes. Under wmu, which guards the queue and the
// write-side fields, and on the I/O goroutine or before I/O started, which
// owns closeErr; imu keeps Done from using x meanwhile. Lock-free readers
// (deflateParams, blk, ownDeflater) read fields that are nil in x anyway.
func (c *Conn) shedExtLocked() {
	x := c.x.Load()
	if x == nil || c.wflags&(wfClosed|wfBroken|wfCloseSent|wfHeld) != 0 {
		return
	}
	c.imu.Lock()
	if x.unused() {
		c.x.Store(nil)
	}
	c.imu.Unlock()
}

// endReason returns why the connection ended, nil while it is open.
// I/O goroutine, or after the close item was queued.
func (c *Conn) endReason() error {
	if x := c.x.Load(); x != nil {
		return x.closeErr
	}
	return nil
}

// setEndReason records why the connection ended unless a reason is known
// already. I/O goroutine.
func (c *Conn) setEndReason(err error) {
	if x := c.ext(); x.closeErr == nil {
		x.closeErr = err
	}
}

// closeDeadline returns when waiting for the peer's close ends, in unix
// nanoseconds; 0 while not closing.
func (c *Conn) closeDeadline() int64 {
	if x := c.x.Load(); x != nil {
		return x.deadline.Load()
	}
	return 0
}

// deflateParams returns the negotiated permessage-deflate parameters, nil
// when compression is off.
func (c *Conn) deflateParams() *deflateParams {
	if x := c.x.Load(); x != nil {
		return x.flate
	}
	return nil
}

// blk returns the blocking-mode state, nil in reactor mode.
func (c *Conn) blk() *blockingIO {
	if x := c.x.Load(); x != nil {
		return x.bio
	}
	return nil
}

// ownDeflater returns the connection's own compressor, nil when pooled
// ones are used.
func (c *Conn) ownDeflater() *deflater {
	if x := c.x.Load(); x != nil {
		return x.defl
	}
	return nil
}

// peerAddr is a remote TCP address in 18 bytes (a netip.AddrPort takes
// 32). IPv6 zones are not kept, and an IPv4-mapped IPv6 address reads as
// the IPv4 address (as it always did: a peer is one or the other).
type peerAddr struct {
	ip   [16]byte // IPv4 as IPv4-mapped IPv6
	port uint16
}

func makePeerAddr(ap netip.AddrPort) peerAddr {
	return peerAddr{ip: ap.Addr().As16(), port: ap.Port()}
}

func (a peerAddr) tcpAddr() *net.TCPAddr {
	return net.TCPAddrFromAddrPort(a.addrPort())
}

func (a peerAddr) addrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(a.ip).Unmap(), a.port)
}

// ioState is where the read side stands.
type ioState uint8

const (
	ioOpen     ioState = iota // frames are parsed
	ioDraining                // close handshake over or failed: reads are discarded until EOF
	ioDone                    // the socket is closed
)

// writeFlags describe the write side; guarded by Conn.wmu.
type writeFlags uint16

const (
	wfRegistered      writeFlags = 1 << iota // reactor: the fd is in the epoll set
	wfClosed                                 // the socket is closed: nothing may touch it
	wfBroken                                 // a write failed or CloseNow was called: no more writes
	wfAborted                                // CloseNow was called
	wfCloseSent                              // our close frame is queued or sent: no more data frames
	wfDraining                               // the read side waits for EOF (always read)
	wfShutdownPending                        // shut the write side once the queue is empty
	wfWriterRunning                          // blocking: a writer goroutine owns the queue
	wfStopped                                // blocking: bio.stop is closed
	wfCorked                                 // reactor: queue writes, the poller flushes them together
	wfFlushPosted                            // reactor: a flush task is on its way to the poller
	wfHeld                                   // server: the 101 waits for OnOpen, and so does all output (releaseResponse)
	wfDeferred                               // reactor: this write only queues; the caller flushes (Enqueue)
	wfStreaming                              // a message writer (NextWriter) is open: other data writes fail
)

// Errors reported to OnClose and by writes.
var (
	errClosed        = fmt.Errorf("websocket: connection closed: %w", net.ErrClosed)
	errCloseSent     = fmt.Errorf("websocket: close frame already sent: %w", net.ErrClosed)
	errDropped       = fmt.Errorf("websocket: connection dropped by CloseNow: %w", net.ErrClosed)
	errNoCloseFrame  = fmt.Errorf("websocket: connection closed without a close frame: %w", io.ErrUnexpectedEOF)
	errCloseTimeout  = errors.New("websocket: timed out waiting for the close handshake")
	errStopFeed      = errors.New("websocket: close frame received") // internal: stops parsing
	errBadType       = errors.New("websocket: message type must be TextMessage or BinaryMessage")
	errControlTooBig = errors.New("websocket: control frame payload longer than 125 bytes")
)

// newConn builds a connection for a finished handshake; the caller picks
// the I/O mode.
func newConn(e *engine, res handshakeResult, value any) *Conn {
	c := &Conn{eng: e, value: value, fd: -1, slot: -1}
	now := e.ticks(time.Now())
	c.lastRead.Store(now) // the handshake was read just now
	c.lastWrite.Store(now)
	if res.response != nil {
		// Not shared yet: no locks needed. See openInline.
		c.wflags = wfHeld
		c.scheduled = true
	}
	if res.subprotocol != "" {
		c.proto = e.internProtocol(res.subprotocol)
		if c.proto == protoInExt {
			c.ext().subprotocol = res.subprotocol
		}
	}
	if res.deflate != nil {
		c.ext().flate = res.deflate
	}
	if ta, ok := res.conn.RemoteAddr().(*net.TCPAddr); ok {
		c.remote = makePeerAddr(ta.AddrPort())
	}
	pc := parserConfig{server: !e.client, readLimit: e.cfg.ReadLimit, deflate: res.deflate, stream: e.pull}
	if d := res.deflate; d != nil {
		var compress bool
		compress, pc.contextTakeover = d.contextTakeover(!e.client)
		if compress && e.cfg.CompressionContextTakeover && d.compressWindow(!e.client) == maxWindow {
			c.ext().defl = newDeflater(true)
		}
	}
	c.p.init(pc)
	return c
}

// Subprotocol returns the negotiated subprotocol, "" if none.
func (c *Conn) Subprotocol() string {
	switch c.proto {
	case 0:
		return ""
	case protoInExt:
		return c.x.Load().subprotocol // set in newConn, and never shed
	}
	return (*c.eng.protocols.Load())[c.proto-1]
}

// protoInExt is Conn.proto for a subprotocol kept in connExt: the engine's
// table holds protoInExt-1 names at most.
const protoInExt = 255

// internProtocol returns the Conn.proto index of the subprotocol p, adding
// it to the engine's table: a server offers a handful of subprotocols, so
// each connection keeps one byte instead of a string in its connExt (which
// an idle connection then does without). The table only grows and is
// replaced, never changed, so that Subprotocol reads it without a lock.
func (e *engine) internProtocol(p string) uint8 {
	if t := e.protocols.Load(); t != nil {
		if i := slices.Index(*t, p); i >= 0 {
			return uint8(i + 1)
		}
	}
	e.protoMu.Lock()
	defer e.protoMu.Unlock()
	var t []string
	if old := e.protocols.Load(); old != nil {
		t = *old
	}
	if i := slices.Index(t, p); i >= 0 {
		return uint8(i + 1)
	}
	if len(t) >= protoInExt-1 {
		return protoInExt
	}
	t = append(t[:len(t):len(t)], strings.Clone(p)) // a client's copy may point into a whole response
	e.protocols.Store(&t)
	return uint8(len(t))
}

// Value returns AcceptOptions.Value (nil for client connections).
func (c *Conn) Value() any { return c.value }

// RemoteAddr returns the peer's address, built on each call.
func (c *Conn) RemoteAddr() net.Addr {
	if b := c.blk(); b != nil {
		return b.conn.RemoteAddr()
	}
	return c.remote.tcpAddr()
}

// RemoteAddrPort returns the peer's TCP address without allocating, or the
// zero AddrPort when the connection is not TCP.
func (c *Conn) RemoteAddrPort() netip.AddrPort {
	if c.remote == (peerAddr{}) {
		return netip.AddrPort{}
	}
	return c.remote.addrPort()
}

// Activity reports when bytes last arrived from the peer (read) and when a
// frame, of any kind, was last sent or queued to it (write), to within
// about 17 ms and for the last year. A gateway uses it to skip the
// heartbeat ping of a connection that was written to recently, as long as
// the peer also spoke recently enough for IdleTimeout.
func (c *Conn) Activity() (read, write time.Time) {
	now := time.Now()
	t := c.eng.ticks(now)
	return now.Add(-tickAge(t, c.lastRead.Load())), now.Add(-tickAge(t, c.lastWrite.Load()))
}

// noteWriteLocked records that a frame was sent or queued. Under wmu, so
// only a load and, at most once per tick, a store.
func (c *Conn) noteWriteLocked() {
	if t := c.eng.ticks(time.Now()); c.lastWrite.Load() != t {
		c.lastWrite.Store(t)
	}
}

// noteRead records that bytes arrived at tick t. I/O goroutine.
func (c *Conn) noteRead(t uint32) {
	if c.lastRead.Load() != t {
		c.lastRead.Store(t)
	}
}

// Done returns a channel closed once the connection is fully closed: the
// socket is closed and, with a Handler, OnClose has returned.
func (c *Conn) Done() <-chan struct{} {
	c.imu.Lock()
	defer c.imu.Unlock()
	x := c.ext()
	if x.done == nil {
		x.done = make(chan struct{})
		if c.finalized {
			close(x.done)
		}
	}
	return x.done
}
