package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
)

// The write side. Data is written straight to the socket by the writing
// goroutine (reactor mode); only what the kernel refuses, and in blocking
// mode everything, waits in the connection's bounded write queue, which a
// poller or the blocking writer goroutine drains. Functions with the Locked
// suffix run under Conn.wmu.

// WriteMessage sends one message. It never blocks: what the kernel does not
// take at once is queued, and when the queue already holds more than
// Config.WriteQueueLimit bytes or Config.WriteQueueMessages frames it
// returns ErrWriteQueueFull and sends nothing. data may be reused when it
// returns. Text is not checked for UTF-8. After Close or on a closed
// connection it returns an error wrapping net.ErrClosed.
func (c *Conn) WriteMessage(typ MessageType, data []byte) error {
	return c.writeMessage(typ, data, 0)
}

// writeMessage is WriteMessage with extra write flags for the call
// (wfDeferred for EnqueueMessage).
func (c *Conn) writeMessage(typ MessageType, data []byte, flags writeFlags) error {
	if typ != TextMessage && typ != BinaryMessage {
		return errBadType
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.dataWritableLocked(); err != nil {
		return err
	}
	c.wflags |= flags
	err := c.sendDataLocked(opcode(typ), data)
	c.wflags &^= flags
	return err
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
	return c.writePreparedLocked(pm)
}

func (c *Conn) writePreparedLocked(pm *PreparedMessage) error {
	frame, err := c.sharedFrameLocked(pm)
	if frame == nil {
		return err
	}
	return c.transmitLocked(nil, frame, nil, true)
}

// sharedFrameLocked makes the checks of a prepared write and returns the
// shared frame bytes to send to c. It returns nil when a check failed
// (err), or when c frames the message itself, which it has then sent.
func (c *Conn) sharedFrameLocked(pm *PreparedMessage) ([]byte, error) {
	if err := c.dataWritableLocked(); err != nil {
		return nil, err
	}
	if c.eng.client || c.ownDeflater() != nil || c.smallWindow() {
		return nil, c.sendDataLocked(opcode(pm.typ), pm.data)
	}
	compressed := c.deflateParams() != nil && len(pm.data) >= c.eng.cfg.CompressionThreshold
	frame, err := pm.frame(compressed)
	if err != nil {
		return nil, fmt.Errorf("websocket: prepare frame: %w", err)
	}
	if c.queueFullLocked(len(frame)) {
		return nil, ErrWriteQueueFull
	}
	return frame, nil
}

// Ping sends a ping, to keep intermediaries from timing the connection
// out and to make a live peer answer. The pong is not reported: like any
// frame it counts as activity for Config.IdleTimeout, so pinging more
// often than IdleTimeout detects dead peers.
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

// Buffered returns the bytes waiting in the write queue (not yet taken by
// the kernel): how far behind the peer is, for callers that shed optional
// messages before the queue refuses them.
func (c *Conn) Buffered() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.queuedLocked()
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

// dataWritableLocked is writableLocked for a whole data message, which may
// not go out in the middle of a streamed one.
func (c *Conn) dataWritableLocked() error {
	if c.wflags&wfStreaming != 0 {
		return errWriterOpen
	}
	return c.writableLocked()
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
// its window, else with a pooled one, within the window the peer allows.
func (c *Conn) compress(dst, src []byte) ([]byte, error) {
	if d := c.ownDeflater(); d != nil {
		return d.compress(dst, src)
	}
	d := deflater{window: c.deflateParams().compressWindow(!c.eng.client)} // a pooled writer, no context kept
	return d.compress(dst, src)
}

// smallWindow reports whether the peer allowed our compressor less than
// the 32 KiB window a PreparedMessage is compressed with.
func (c *Conn) smallWindow() bool {
	dp := c.deflateParams()
	return dp != nil && dp.compressWindow(!c.eng.client) < maxWindow
}

// sendFrameLocked frames payload as one final frame and transmits it.
// Control frames are not held to the queue limit: they are small and a
// pong or close must not be lost.
func (c *Conn) sendFrameLocked(op opcode, rsv1 bool, payload []byte, control bool) error {
	return c.sendFrameFinLocked(op, true, rsv1, payload, control)
}

// sendFrameFinLocked is sendFrameLocked for any frame of a message: fin
// false for all but the last frame of a streamed one.
func (c *Conn) sendFrameFinLocked(op opcode, fin, rsv1 bool, payload []byte, control bool) error {
	mask := c.eng.client
	size := headerSize(len(payload), mask) + len(payload)
	if !control && c.queueFullLocked(size) {
		return ErrWriteQueueFull
	}
	if mask {
		buf := getMsgBuf(size)
		*buf = appendFrame((*buf)[:0], op, fin, rsv1, payload, true, maskKey())
		return c.transmitLocked(nil, *buf, buf, false)
	}
	var hdr [maxHeaderSize]byte
	h := putHeader(&hdr, op, rsv1, len(payload))
	if !fin {
		h[0] &^= finBit
	}
	return c.transmitLocked(h, payload, nil, false)
}

// transmitLocked sends hdr then body. In reactor mode with an empty queue
// it writes straight to the socket; whatever the kernel does not take (and
// everything in blocking mode) is queued. pooled, when set, is the pooled
// buffer holding body (hdr is then nil) and is released or handed to the
// queue. shared bytes are immutable and are queued without a copy; other
// bytes belong to the caller and are copied.
func (c *Conn) transmitLocked(hdr, body []byte, pooled *[]byte, shared bool) error {
	c.noteWriteLocked()
	if c.directLocked() {
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
	case len(hdr) > 0 && len(body) > maxPooledBuf-maxHeaderSize:
		// Header and body together would miss the largest pooled size
		// class (a 16 MiB message): queue them apart, both pooled.
		c.enqueueLocked(copyChunk(hdr))
		c.enqueueLocked(copyChunk(body))
	default:
		buf := getMsgBuf(len(hdr) + len(body))
		*buf = append(append((*buf)[:0], hdr...), body...)
		c.enqueueLocked(outChunk{b: *buf, buf: buf})
	}
	c.kickLocked()
	return nil
}

// directLocked reports whether a write may go straight to the socket: in
// reactor mode, with nothing queued before it, and neither corked, held
// for the 101 nor deferred by Enqueue.
func (c *Conn) directLocked() bool {
	return c.poller != nil && c.queuedLocked() == 0 && c.wflags&(wfCorked|wfHeld|wfDeferred) == 0
}

// copyChunk is queued output holding a pooled copy of b.
func copyChunk(b []byte) outChunk {
	buf := getMsgBuf(len(b))
	*buf = append((*buf)[:0], b...)
	return outChunk{b: *buf, buf: buf}
}

// releaseResponse sends a server's 101, held since the handshake so that
// the client cannot see it before OnOpen has run (OnOpen typically makes
// the connection reachable, e.g. registers it for pushes), then everything
// written to the connection meanwhile. While wfHeld is set the socket is
// not in epoll yet and no executor batch is corked, so only the direct
// write, kickLocked and the write-side shutdown need to check it.
func (c *Conn) releaseResponse(response []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wflags &^= wfHeld
	if c.wflags&(wfClosed|wfBroken) != 0 {
		return // the connection is gone, and its 101 with it
	}
	if c.poller != nil && c.queuedLocked() == 0 {
		n, err := c.writeDirect(response, nil)
		if err != nil {
			c.breakLocked(err)
			return
		}
		if n == len(response) {
			c.flushedLocked() // a shutdown may wait for an empty queue
			c.shedExtLocked()
			return
		}
		response = response[n:]
	}
	q := &c.ext().q
	q.chunks = append([]outChunk{{b: response}}, q.chunks...)
	q.bytes += len(response)
	if c.poller != nil {
		c.flushLocked()   // now, not when the poller next looks
		c.shedExtLocked() // I/O has not started yet (engine.open)
		return
	}
	c.kickLocked()
}

// writeQueue is output waiting for the socket.
type writeQueue struct {
	chunks []outChunk
	bytes  int
}

// outChunk is queued output.
type outChunk struct {
	b   []byte  // bytes still to send
	buf *[]byte // pooled buffer behind b, released once sent; nil for shared bytes
}

// queuedLocked returns the bytes waiting in the write queue.
func (c *Conn) queuedLocked() int {
	if x := c.x.Load(); x != nil {
		return x.q.bytes
	}
	return 0
}

func (c *Conn) enqueueLocked(ch outChunk) {
	q := &c.ext().q
	q.chunks = append(q.chunks, ch)
	q.bytes += len(ch.b)
}

// kickLocked makes sure someone drains the queue, unless it is held for
// the 101 (releaseResponse kicks it then) or queued by Enqueue (whose
// caller flushes).
func (c *Conn) kickLocked() {
	if c.wflags&wfHeld != 0 || c.wflags&wfDeferred != 0 && c.poller != nil {
		return // releaseResponse or the caller's Flush sends it
	}
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
