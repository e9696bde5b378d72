package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
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
	eng    *engine
	poller *poller // reactor mode; nil in blocking mode
	value  any
	x      atomic.Pointer[connExt] // rarely needed fields, allocated on demand

	// Owned by the I/O goroutine (the poller, or the blocking reader).
	p        parser
	lastRead int64 // unix nanos of the last read, for the reactor's idle sweep

	deadline atomic.Int64 // unix nanos when waiting for the peer's close ends; 0 = not closing

	// Handler side, guarded by imu.
	inHead *inboxItem
	inTail *inboxItem

	runNext      *Conn // executor run queue, guarded by executor.mu
	lprev, lnext *Conn // engine connection list, guarded by engine.mu

	// Small fields last, packed. Owners as above.
	wmu       sync.Mutex
	imu       sync.Mutex
	paused    atomic.Bool // the inbox is full: reading stops until it drains
	fd        int32       // reactor mode: our duplicate of the socket (I/O)
	slot      int32       // reactor mode: index in the poller's table (I/O)
	gen       uint32      // reactor mode: tells stale epoll events apart (I/O)
	events    uint32      // reactor mode: the registered epoll interest (wmu)
	inN       int32       // messages (not open/close items) in the inbox (imu)
	wflags    writeFlags  // (wmu)
	io        ioState     // (I/O)
	scheduled bool        // on the executor's run queue or being run (imu)
	finalized bool        // OnClose returned; done is (to be) closed (imu)
	remote    peerAddr    // set before the Conn is shared
}

// connExt holds what most connections never need, or need only once they
// end; allocating it on demand keeps Conn in a smaller size class.
type connExt struct {
	bio         *blockingIO    // blocking mode; set before the Conn is shared
	subprotocol string         // set before the Conn is shared
	flate       *deflateParams // negotiated permessage-deflate; set before the Conn is shared
	defl        *deflater      // our compressor when it keeps its window between messages (wmu)
	q           writeQueue     // output the kernel did not take yet (wmu)
	closeErr    error          // why the connection ended; final once the close item is queued (I/O)

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

// writeQueue is output waiting for the socket.
type writeQueue struct {
	chunks []outChunk
	bytes  int
}

// queuedLocked returns the bytes waiting in the write queue.
func (c *Conn) queuedLocked() int {
	if x := c.x.Load(); x != nil {
		return x.q.bytes
	}
	return 0
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

// deflateParams returns the negotiated permessage-deflate parameters, nil
// when compression is off.
func (c *Conn) deflateParams() *deflateParams {
	if x := c.x.Load(); x != nil {
		return x.flate
	}
	return nil
}

// peerAddr is a remote TCP address in 20 bytes (a netip.AddrPort takes
// 32). IPv6 zones are not kept.
type peerAddr struct {
	ip   [16]byte
	port uint16
	v4   bool
}

func makePeerAddr(ap netip.AddrPort) peerAddr {
	return peerAddr{ip: ap.Addr().As16(), port: ap.Port(), v4: ap.Addr().Is4() || ap.Addr().Is4In6()}
}

func (a peerAddr) tcpAddr() *net.TCPAddr {
	ip := netip.AddrFrom16(a.ip)
	if a.v4 {
		ip = ip.Unmap()
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, a.port))
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
)

// outChunk is queued output.
type outChunk struct {
	b   []byte  // bytes still to send
	buf *[]byte // pooled buffer behind b, released once sent; nil for shared bytes
}

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
	if res.subprotocol != "" {
		c.ext().subprotocol = res.subprotocol
	}
	if res.deflate != nil {
		c.ext().flate = res.deflate
	}
	if ta, ok := res.conn.RemoteAddr().(*net.TCPAddr); ok {
		c.remote = makePeerAddr(ta.AddrPort())
	}
	pc := parserConfig{server: !e.client, readLimit: e.cfg.ReadLimit, deflate: res.deflate}
	if d := res.deflate; d != nil {
		var compress bool
		compress, pc.contextTakeover = d.contextTakeover(!e.client)
		if compress && e.cfg.CompressionContextTakeover {
			c.ext().defl = newDeflater(true)
		}
	}
	c.p.init(pc)
	return c
}

// refuseWriteTimeout bounds the write of a refused connection's close
// frame (blocking mode; the reactor's socket never blocks).
const refuseWriteTimeout = time.Second

// refuse ends a connection whose I/O never started, after its handshake
// succeeded: it sends a close frame (engine.refusal) and our FIN, and
// closes the socket without waiting for the answer. The socket is c.fd
// once the reactor took it, else conn.
func (c *Conn) refuse(conn net.Conn) {
	code, reason := c.eng.refusal()
	frame := appendFrame(nil, opClose, true, false, closePayload(code, reason), c.eng.client, maskKey())
	if c.fd >= 0 {
		refuseFD(int(c.fd), frame)
	} else {
		_ = conn.SetWriteDeadline(time.Now().Add(refuseWriteTimeout)) // failure shows in Write
		if _, err := conn.Write(frame); err == nil {
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite() // the peer may be gone; we close anyway
			}
		}
		_ = conn.Close() // the connection is over whatever the peer does
	}
	c.p.release()
}

// Subprotocol returns the negotiated subprotocol, "" if none.
func (c *Conn) Subprotocol() string {
	if x := c.x.Load(); x != nil {
		return x.subprotocol
	}
	return ""
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

// Buffered returns the bytes waiting in the write queue (not yet taken by
// the kernel).
func (c *Conn) Buffered() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.queuedLocked()
}

// WriteMessage sends one message. It never blocks: what the kernel does not
// take at once is queued, and when the queue already holds more than
// Config.WriteQueueLimit bytes or Config.WriteQueueMessages frames it
// returns ErrWriteQueueFull and sends nothing. data may be reused when it returns. Text is not checked for
// UTF-8. After Close or on a closed connection it returns an error wrapping
// net.ErrClosed.
func (c *Conn) WriteMessage(typ MessageType, data []byte) error {
	if typ != TextMessage && typ != BinaryMessage {
		return errBadType
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writableLocked(); err != nil {
		return err
	}
	return c.sendDataLocked(opcode(typ), data)
}

// Write is WriteMessage that waits, until ctx ends, for room in a full
// write queue.
func (c *Conn) Write(ctx context.Context, typ MessageType, data []byte) error {
	for {
		err := c.WriteMessage(typ, data)
		if !errors.Is(err, ErrWriteQueueFull) {
			return err
		}
		room := c.roomChan()
		if room == nil {
			continue // the queue drained meanwhile
		}
		select {
		case <-room:
		case <-ctx.Done():
			return fmt.Errorf("websocket: write: %w", ctx.Err())
		}
	}
}

// roomChan returns a channel closed when the write queue shrinks, or nil
// when it is already empty.
func (c *Conn) roomChan() chan struct{} {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.queuedLocked() == 0 || c.wflags&wfClosed != 0 {
		return nil
	}
	x := c.ext()
	if x.room == nil {
		x.room = make(chan struct{})
	}
	return x.room
}

// WritePrepared sends a prepared message. Server connections send its
// shared frame bytes (copied only if the kernel refuses part of them);
// client connections, which must mask, and connections whose compressor
// keeps its window frame it themselves. It never blocks, like WriteMessage.
func (c *Conn) WritePrepared(pm *PreparedMessage) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writableLocked(); err != nil {
		return err
	}
	if c.eng.client || c.ownDeflater() != nil {
		return c.sendDataLocked(opcode(pm.typ), pm.data)
	}
	compressed := c.deflateParams() != nil && len(pm.data) >= c.eng.cfg.CompressionThreshold
	frame, err := pm.frame(compressed)
	if err != nil {
		return fmt.Errorf("websocket: prepare frame: %w", err)
	}
	if c.queueFullLocked(len(frame)) {
		return ErrWriteQueueFull
	}
	return c.transmitLocked(nil, frame, nil, true)
}

// Ping sends a ping; the peer's pong is not reported.
func (c *Conn) Ping(payload []byte) error {
	if len(payload) > maxControlPayload {
		return errControlTooBig
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writableLocked(); err != nil {
		return err
	}
	return c.sendFrameLocked(opPing, false, payload, true)
}

// Close starts the closing handshake: it sends a close frame with code and
// reason (a code that may not be sent, such as 1005, sends an empty close
// frame) and returns at once. Writes fail from then on. The connection is
// closed when the peer answers or after Config.CloseTimeout. Closing a
// closing connection does nothing.
func (c *Conn) Close(code StatusCode, reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wflags&(wfClosed|wfBroken) != 0 {
		return errClosed
	}
	if c.wflags&wfCloseSent != 0 {
		return nil
	}
	c.ext().localClose = &CloseError{Code: code, Reason: reason}
	return c.sendCloseLocked(code, reason)
}

// closeIdle closes a connection that received nothing for
// Config.IdleTimeout.
func (c *Conn) closeIdle() {
	_ = c.Close(c.eng.cfg.IdleCloseCode, c.eng.cfg.IdleCloseReason) // an error means it is closing already
}

// CloseNow drops the TCP connection without a closing handshake.
func (c *Conn) CloseNow() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wflags&(wfClosed|wfAborted) != 0 {
		return nil
	}
	c.wflags |= wfAborted
	c.breakLocked(nil)
	return nil
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

// Read returns the next message of a pull-mode connection (package Dial).
// After the connection ends it returns the reason: a *CloseError after a
// closing handshake. On a connection with a Handler it returns
// ErrReadNotSupported.
//
// The connection reads ahead only a few messages: while nobody calls Read
// it reads nothing more, so pings go unanswered and a close frame from the
// peer is not seen. Keep calling Read until it returns an error, or call
// CloseNow.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	if !c.eng.pull {
		return 0, nil, ErrReadNotSupported
	}
	select {
	case m, ok := <-c.blk().msgs:
		if !ok {
			return 0, nil, c.endReason()
		}
		return m.typ, m.data, nil
	case <-ctx.Done():
		return 0, nil, fmt.Errorf("websocket: read: %w", ctx.Err())
	}
}

// writableLocked reports why data may not be written, if so.
func (c *Conn) writableLocked() error {
	switch {
	case c.wflags&(wfClosed|wfBroken) != 0:
		return errClosed
	case c.wflags&wfCloseSent != 0:
		return errCloseSent
	}
	return nil
}

// queueFullLocked reports whether one more frame of size bytes would
// overflow the write queue (Config.WriteQueueLimit, WriteQueueMessages). A
// corked reactor connection queues without trying the socket, so its queue
// is first offered to the kernel: the bound is for peers that do not read,
// not for replies that merely wait to be batched.
func (c *Conn) queueFullLocked(size int) bool {
	if !c.overQueueLimitLocked(size) {
		return false
	}
	if c.poller == nil || c.wflags&wfCorked == 0 {
		return true
	}
	c.flushLocked()
	return c.overQueueLimitLocked(size)
}

// overQueueLimitLocked reports whether the queue, holding anything, cannot
// take one more frame of size bytes. An empty queue takes any one frame,
// so that every message can be sent.
func (c *Conn) overQueueLimitLocked(size int) bool {
	x := c.x.Load()
	if x == nil || x.q.bytes == 0 {
		return false
	}
	return x.q.bytes+size > c.eng.cfg.WriteQueueLimit || len(x.q.chunks) >= c.eng.cfg.WriteQueueMessages
}

// sendDataLocked sends one data message, compressed when negotiated and
// long enough.
func (c *Conn) sendDataLocked(op opcode, data []byte) error {
	if c.deflateParams() != nil && len(data) >= c.eng.cfg.CompressionThreshold {
		return c.sendCompressedLocked(op, data)
	}
	return c.sendFrameLocked(op, false, data, false)
}

// sendCompressedLocked compresses data and sends it with RSV1 set.
func (c *Conn) sendCompressedLocked(op opcode, data []byte) error {
	zb := getMsgBuf(len(data)/2 + 64)
	z, err := c.compress((*zb)[:0], data)
	if err != nil {
		putMsgBuf(zb)
		return err
	}
	*zb = z
	err = c.sendFrameLocked(op, true, z, false)
	putMsgBuf(zb)
	return err
}

// compress deflates src with the connection's own compressor when it keeps
// its window, else with a pooled one.
func (c *Conn) compress(dst, src []byte) ([]byte, error) {
	if d := c.ownDeflater(); d != nil {
		return d.compress(dst, src)
	}
	var d deflater // zero value: a pooled writer, no context kept
	return d.compress(dst, src)
}

// sendFrameLocked frames payload as one final frame and transmits it.
// Control frames are not held to the queue limit: they are small and a
// pong or close must not be lost.
func (c *Conn) sendFrameLocked(op opcode, rsv1 bool, payload []byte, control bool) error {
	mask := c.eng.client
	size := headerSize(len(payload), mask) + len(payload)
	if !control && c.queueFullLocked(size) {
		return ErrWriteQueueFull
	}
	if mask {
		buf := getMsgBuf(size)
		*buf = appendFrame((*buf)[:0], op, true, rsv1, payload, true, maskKey())
		return c.transmitLocked(nil, *buf, buf, false)
	}
	var hdr [maxHeaderSize]byte
	return c.transmitLocked(putHeader(&hdr, op, rsv1, len(payload)), payload, nil, false)
}

// sendCloseLocked sends our close frame (once) and starts waiting for the
// peer's.
func (c *Conn) sendCloseLocked(code StatusCode, reason string) error {
	c.wflags |= wfCloseSent
	c.armDeadlineLocked()
	return c.sendFrameLocked(opClose, false, closePayload(code, reason), true)
}

// armDeadlineLocked starts the close timeout unless it runs already.
func (c *Conn) armDeadlineLocked() {
	if c.deadline.Load() != 0 {
		return
	}
	d := time.Now().Add(c.eng.cfg.CloseTimeout)
	c.deadline.Store(d.UnixNano())
	if b := c.blk(); b != nil {
		_ = b.conn.SetReadDeadline(d) // wake a reader blocked without a deadline; failure means it is closed
	}
}

// transmitLocked sends hdr then body. In reactor mode with an empty queue
// it writes straight to the socket; whatever the kernel does not take (and
// everything in blocking mode) is queued. pooled, when set, is the pooled
// buffer holding body (hdr is then nil) and is released or handed to the
// queue. shared bytes are immutable and are queued without a copy; other
// bytes belong to the caller and are copied.
func (c *Conn) transmitLocked(hdr, body []byte, pooled *[]byte, shared bool) error {
	if c.poller != nil && c.queuedLocked() == 0 && c.wflags&wfCorked == 0 {
		n, err := c.writeDirect(hdr, body)
		if err != nil {
			if pooled != nil {
				putMsgBuf(pooled)
			}
			c.breakLocked(err)
			return fmt.Errorf("websocket: write: %w", err)
		}
		if n == len(hdr)+len(body) {
			if pooled != nil {
				putMsgBuf(pooled)
			}
			return nil
		}
		if n < len(hdr) {
			hdr = hdr[n:]
		} else {
			body = body[n-len(hdr):]
			hdr = nil
		}
	}
	switch {
	case pooled != nil:
		c.enqueueLocked(outChunk{b: body, buf: pooled})
	case shared && len(hdr) == 0:
		c.enqueueLocked(outChunk{b: body})
	default:
		buf := getMsgBuf(len(hdr) + len(body))
		*buf = append(append((*buf)[:0], hdr...), body...)
		c.enqueueLocked(outChunk{b: *buf, buf: buf})
	}
	c.kickLocked()
	return nil
}

func (c *Conn) enqueueLocked(ch outChunk) {
	q := &c.ext().q
	q.chunks = append(q.chunks, ch)
	q.bytes += len(ch.b)
}

// kickLocked makes sure someone drains the queue.
func (c *Conn) kickLocked() {
	if c.poller != nil {
		c.kickReactorLocked()
		return
	}
	c.startWriterLocked()
}

// consumedLocked drops n sent bytes from the head of the queue.
func (c *Conn) consumedLocked(n int) {
	if n <= 0 {
		return
	}
	q := &c.x.Load().q // n > 0 bytes were queued, so x exists
	q.bytes -= n
	i := 0
	for ; i < len(q.chunks) && n > 0; i++ {
		ch := &q.chunks[i]
		if n < len(ch.b) {
			ch.b = ch.b[n:]
			break
		}
		n -= len(ch.b)
		if ch.buf != nil {
			putMsgBuf(ch.buf)
		}
		*ch = outChunk{}
	}
	q.chunks = q.chunks[i:]
	if len(q.chunks) == 0 {
		q.chunks = nil // an idle connection holds no queue
	}
	c.signalRoomLocked()
}

// dropQueueLocked releases everything queued (the socket is gone).
func (c *Conn) dropQueueLocked() {
	if x := c.x.Load(); x != nil {
		for i := range x.q.chunks {
			if x.q.chunks[i].buf != nil {
				putMsgBuf(x.q.chunks[i].buf)
			}
		}
		x.q = writeQueue{}
	}
	c.signalRoomLocked()
}

func (c *Conn) signalRoomLocked() {
	if x := c.x.Load(); x != nil && x.room != nil {
		close(x.room)
		x.room = nil
	}
}

// breakLocked stops all writing and asks the I/O goroutine to tear the
// connection down. err is the write error, nil for CloseNow.
func (c *Conn) breakLocked(err error) {
	if c.wflags&wfBroken != 0 {
		return
	}
	c.wflags |= wfBroken
	if err != nil {
		c.ext().werr = err
	}
	if c.poller != nil {
		c.poller.post(pollTask{c: c, op: taskAbort})
		return
	}
	c.stopBlockingLocked()
}

// flushedLocked runs when the queue became empty: a pending shutdown of the
// write side happens now.
func (c *Conn) flushedLocked() {
	if c.wflags&wfShutdownPending != 0 {
		c.wflags &^= wfShutdownPending
		c.shutdownWriteLocked()
	}
}

// shutdownWriteLocked sends our FIN after the last frame.
func (c *Conn) shutdownWriteLocked() {
	if c.poller != nil {
		c.shutdownFDLocked()
		return
	}
	c.blk().closeWrite()
}

// endErr picks the error OnClose reports: the close frame that started the
// handshake, else CloseNow, else a write error, else ioErr.
func (c *Conn) endErr(ioErr error) error {
	if ce := c.endReason(); ce != nil {
		return ce
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	x := c.x.Load()
	switch {
	case x != nil && x.localClose != nil:
		return x.localClose
	case c.wflags&wfAborted != 0:
		return errDropped
	case x != nil && x.werr != nil:
		return fmt.Errorf("websocket: write: %w", x.werr)
	}
	return ioErr
}

// --- read side: runs on the I/O goroutine ---

// consume parses bytes read from the socket, or discards them once the
// close handshake is over.
func (c *Conn) consume(b []byte) {
	if c.io != ioOpen {
		return
	}
	if err := c.p.feed(b, c); err != nil {
		c.readFailed(err)
	}
}

// readFailed handles a parser or sink error.
func (c *Conn) readFailed(err error) {
	if errors.Is(err, errStopFeed) {
		return
	}
	var ce *CloseError
	if !errors.As(err, &ce) {
		c.finish(c.endErr(err))
		return
	}
	// Fail the connection (RFC 6455 §7.1.7): send the code, stop reading.
	c.wmu.Lock()
	if c.wflags&(wfCloseSent|wfBroken) == 0 {
		_ = c.sendCloseLocked(ce.Code, ce.Reason) // a failed write breaks the conn itself
	}
	c.wmu.Unlock()
	c.setEndReason(ce)
	c.startDrain(true)
}

// onEOF handles the peer's FIN.
func (c *Conn) onEOF() {
	c.finish(c.endErr(errNoCloseFrame))
}

// startDrain stops parsing: from now on reads are discarded until EOF or
// the close deadline. shutdown sends our FIN once the queue is flushed.
func (c *Conn) startDrain(shutdown bool) {
	c.io = ioDraining
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.drainLocked(shutdown)
}

// drainLocked is the write side of startDrain; any goroutine.
func (c *Conn) drainLocked(shutdown bool) {
	c.wflags |= wfDraining
	c.armDeadlineLocked()
	if shutdown && c.wflags&(wfClosed|wfBroken) == 0 {
		if c.queuedLocked() == 0 {
			c.shutdownWriteLocked()
		} else {
			c.wflags |= wfShutdownPending
		}
	}
	if c.poller != nil {
		c.updateEventsLocked()
	}
}

// finish closes the socket and queues OnClose with err (unless a close
// handshake already decided the reason). I/O goroutine only.
func (c *Conn) finish(err error) {
	if c.io == ioDone {
		return
	}
	c.io = ioDone
	c.wmu.Lock()
	registered := c.wflags&wfRegistered != 0
	c.wflags |= wfClosed | wfBroken
	c.wmu.Unlock()
	if c.poller != nil {
		c.poller.release(c, registered)
	} else {
		c.blk().release(c) // waits for the writer, which may still be sending queued buffers
	}
	c.wmu.Lock()
	c.dropQueueLocked()
	if d := c.ownDeflater(); d != nil {
		d.release()
	}
	c.wmu.Unlock()
	c.p.release()
	c.setEndReason(err)
	c.pushClose()
}

// onMessage implements frameSink.
func (c *Conn) onMessage(typ MessageType, data []byte) error {
	if c.eng.pull {
		return c.blk().deliver(typ, data)
	}
	if c.eng.h.OnMessage == nil {
		return nil
	}
	it := getItem()
	it.kind = itemMessage
	it.typ = typ
	it.buf = getMsgBuf(len(data))
	*it.buf = append((*it.buf)[:0], data...)
	c.push(it)
	return nil
}

// onPing implements frameSink: answer with a pong unless closing.
func (c *Conn) onPing(payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wflags&(wfBroken|wfCloseSent) == 0 {
		_ = c.sendFrameLocked(opPong, false, payload, true) // a failed write breaks the conn itself
	}
	return nil
}

// onPong implements frameSink: pongs need no action.
func (c *Conn) onPong([]byte) error { return nil }

// onClose implements frameSink: the peer's close frame ends the reading.
// If we did not start the handshake we echo it; with a Handler the echo
// waits in the inbox behind the messages that came before the close, so
// that the handler's replies to them still precede our close frame (no data
// may follow it, RFC 6455 §5.5.1).
func (c *Conn) onClose(code StatusCode, reason string) error {
	peer := &CloseError{Code: code, Reason: reason}
	c.wmu.Lock()
	weStarted := c.wflags&wfCloseSent != 0
	x := c.ext()
	x.closeErr = peer
	if weStarted && x.localClose != nil {
		x.closeErr = x.localClose
	}
	c.wmu.Unlock()
	switch {
	case weStarted:
		c.startDrain(!c.eng.client)
	case c.eng.pull:
		c.io = ioDraining
		c.echoClose(code)
	default:
		c.startDrain(false)
		it := getItem()
		it.kind = itemEcho
		it.code = code
		c.push(it)
	}
	return errStopFeed
}

// echoClose answers the peer's close frame with its code (1000 for an empty
// close frame, RFC 6455 §5.5.1) and then, on the server, which closes TCP
// first (RFC 6455 §7.1.1), sends our FIN. A client waits for the server's.
func (c *Conn) echoClose(code StatusCode) {
	if !validCloseCode(code) {
		code = StatusNormalClosure
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wflags&(wfCloseSent|wfBroken) == 0 {
		_ = c.sendCloseLocked(code, "") // a failed write breaks the conn itself
	}
	c.drainLocked(!c.eng.client)
}

// --- framing helpers ---

// putHeader writes an unmasked final-frame header into h.
func putHeader(h *[maxHeaderSize]byte, op opcode, rsv1 bool, n int) []byte {
	h[0] = byte(op) | finBit
	if rsv1 {
		h[0] |= rsv1Bit
	}
	switch {
	case n <= maxControlPayload:
		h[1] = byte(n)
		return h[:2]
	case n <= 0xFFFF:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		return h[:4]
	}
	h[1] = 127
	binary.BigEndian.PutUint64(h[2:], uint64(n))
	return h[:10]
}

// maskKey returns a fresh masking key. math/rand/v2's global source is a
// per-thread ChaCha8 seeded from the OS: unpredictable (RFC 6455 §10.3),
// lock-free and cheap.
func maskKey() [4]byte {
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], rand.Uint32())
	return k
}
