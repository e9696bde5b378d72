package websocket

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Blocking mode drives a connection with goroutines: one reader for its
// whole life, and one writer only while there is queued data. It serves
// TLS, non-Linux platforms, ModeBlocking and pull-mode clients.

const (
	// blockingReadBuffer is the reader's buffer; the parser keeps partial
	// frames itself, so a small one costs only more read calls.
	blockingReadBuffer = 4 << 10
	// bulkReadBuffer is the reader's buffer while a large frame arrives
	// (pooled, and given back as soon as the frame is in): a 16 MiB
	// message then takes 64 reads instead of 4096.
	bulkReadBuffer = 256 << 10
	// blockingWriteTimeout bounds one write to a peer that stopped reading;
	// the connection is dropped when it expires.
	blockingWriteTimeout = 30 * time.Second
	// pullQueue is how many messages a pull-mode reader may hold for Read
	// before it stops reading (TCP backpressure).
	pullQueue = 4
)

type blockingIO struct {
	conn    net.Conn
	wake    chan struct{}      // a token when a waiting reader must look again: the inbox drained, or the close deadline was armed
	stop    chan struct{}      // closed when the connection is torn down
	msgs    chan pulledMessage // pull mode: messages (or pieces of them) for Read and NextReader, closed at the end
	writers sync.WaitGroup     // the running writer goroutine

	// Pull mode, the consumer's side (see stream.go), guarded by rmu.
	rmu   sync.Mutex
	inMsg bool   // pieces of a message begun by NextReader (or a cancelled Read) are still to come
	gen   uint64 // counts messages handed out, so a stale message reader can tell
}

// pulledMessage is a message for Read, or one piece of it.
type pulledMessage struct {
	typ  MessageType
	data []byte
	more bool        // more pieces of this message follow
	fail *CloseError // a protocol error: Read sends its close frame, after the messages before it were read
}

func newBlockingIO(conn net.Conn, pull bool) *blockingIO {
	b := &blockingIO{conn: conn, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	if pull {
		b.msgs = make(chan pulledMessage, pullQueue)
	}
	return b
}

// startReader starts the reader goroutine; buffered bytes from the
// handshake are parsed first.
func (c *Conn) startReader(buffered []byte) {
	c.eng.wg.Add(1)
	go c.readLoop(buffered)
}

// readLoop is the reader goroutine: read, parse, and pause while the inbox
// is full.
func (c *Conn) readLoop(buffered []byte) {
	defer c.eng.wg.Done()
	if len(buffered) > 0 {
		c.consume(buffered)
	}
	buf := make([]byte, blockingReadBuffer)
	var bulk *[]byte // while a large frame arrives
	defer func() { putMsgBuf(bulk) }()
	for c.io != ioDone {
		if err := c.waitResume(); err != nil {
			c.finish(c.endErr(err))
			return
		}
		c.setReadDeadline()
		rb := buf
		switch {
		case c.io == ioOpen && c.p.bulk(len(buf)):
			if bulk == nil {
				bulk = getMsgBuf(bulkReadBuffer)
			}
			rb = (*bulk)[:cap(*bulk)]
		case bulk != nil:
			putMsgBuf(bulk)
			bulk = nil
		}
		n, err := c.blk().conn.Read(rb)
		if n > 0 {
			c.noteRead(c.eng.ticks(time.Now()))
			c.consume(rb[:n])
		}
		if err != nil && c.io != ioDone {
			c.readError(err)
		}
	}
}

// waitResume blocks while reading is paused because the handler is behind.
// It returns errDropped when the connection is torn down, and
// errCloseTimeout when the close deadline passes meanwhile: a stuck
// handler must not keep a closing connection open past
// Config.CloseTimeout (the reactor's sweep enforces it the same way).
func (c *Conn) waitResume() error {
	b := c.blk()
	for c.paused.Load() && c.io == ioOpen {
		expire, t := c.closeExpiry()
		select {
		case <-b.wake:
		case <-b.stop:
			stopTimer(t)
			return errDropped
		case <-expire:
			return errCloseTimeout
		}
		stopTimer(t)
	}
	return nil
}

// closeExpiry returns a channel that fires when the close deadline
// passes, and its timer; nil and nil while no deadline is armed (a nil
// channel never fires).
func (c *Conn) closeExpiry() (<-chan time.Time, *time.Timer) {
	d := c.closeDeadline()
	if d == 0 {
		return nil, nil
	}
	t := time.NewTimer(time.Until(time.Unix(0, d)))
	return t.C, t
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// wakeReader makes a waiting reader look again (resume, or a new close
// deadline).
func (b *blockingIO) wakeReader() {
	select {
	case b.wake <- struct{}{}:
	default: // a token is already pending
	}
}

// setReadDeadline applies the close deadline, else the idle timeout. It
// runs under wmu so that it cannot undo the deadline Close just set.
func (c *Conn) setReadDeadline() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var t time.Time
	if d := c.closeDeadline(); d != 0 {
		t = time.Unix(0, d)
	} else if idle := c.eng.cfg.IdleTimeout; idle > 0 {
		t = time.Now().Add(idle)
	}
	_ = c.blk().conn.SetReadDeadline(t) // fails only on a closed conn; Read reports that
}

// readError handles an error from Read: timeouts drive the idle and close
// timers, EOF and anything else end the connection.
func (c *Conn) readError(err error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if d := c.closeDeadline(); d != 0 {
			if time.Now().UnixNano() >= d {
				c.finish(c.endErr(errCloseTimeout))
			}
			return // the deadline moved: read again
		}
		if c.eng.cfg.IdleTimeout > 0 {
			c.closeIdle()
		}
	case errors.Is(err, io.EOF):
		c.onEOF()
	default:
		c.finish(c.endErr(fmt.Errorf("websocket: read: %w", err)))
	}
}

// deliverPull hands a message to Read; it blocks while the queue is full, which
// stops reading and lets TCP push back on the peer. Like waitResume it
// gives up when the close deadline passes: a program that stopped calling
// Read after Close still gets its connection closed.
func (c *Conn) deliverPull(typ MessageType, data []byte) error {
	m := pulledMessage{typ: typ, data: bytes.Clone(data)}
	if m.data == nil {
		m.data = []byte{}
	}
	return c.sendPull(m)
}

// deliverPullFailure queues a protocol error behind the messages that
// wait for Read: Read sends its close frame when it gets there, so that a
// program answering each message it reads still answers the ones the peer
// sent before the bad frame.
func (c *Conn) deliverPullFailure(ce *CloseError) error {
	return c.sendPull(pulledMessage{fail: ce})
}

// sendPull waits for room in Read's queue; see deliverPull.
func (c *Conn) sendPull(m pulledMessage) error {
	b := c.blk()
	for {
		expire, t := c.closeExpiry()
		select {
		case b.msgs <- m:
			stopTimer(t)
			return nil
		case <-b.stop:
			stopTimer(t)
			return errDropped
		case <-b.wake: // the close deadline may have been armed
		case <-expire:
			return errCloseTimeout
		}
		stopTimer(t)
	}
}

// endPull tells Read that no message will follow.
func (b *blockingIO) endPull() { close(b.msgs) }

// startWriterLocked starts the writer goroutine unless one runs.
func (c *Conn) startWriterLocked() {
	if c.wflags&wfWriterRunning != 0 {
		return
	}
	c.wflags |= wfWriterRunning
	c.eng.wg.Add(1)
	c.blk().writers.Add(1)
	go c.writeLoop()
}

// writeLoop is the writer goroutine: it sends the queue and exits when the
// queue is empty.
func (c *Conn) writeLoop() {
	defer c.eng.wg.Done()
	defer c.blk().writers.Done()
	var batch []outChunk
	var bufs net.Buffers
	for {
		c.wmu.Lock()
		if c.wflags&wfBroken != 0 || c.queuedLocked() == 0 {
			if c.wflags&wfBroken == 0 {
				c.flushedLocked()
			}
			c.wflags &^= wfWriterRunning
			c.wmu.Unlock()
			return
		}
		batch = append(batch[:0], c.x.Load().q.chunks...)
		c.wmu.Unlock()

		bufs = bufs[:0]
		for _, ch := range batch {
			bufs = append(bufs, ch.b)
		}
		_ = c.blk().conn.SetWriteDeadline(time.Now().Add(blockingWriteTimeout)) // failure shows in the write
		n, err := bufs.WriteTo(c.blk().conn)

		c.wmu.Lock()
		if c.wflags&wfClosed == 0 {
			c.consumedLocked(int(n))
		}
		if err != nil {
			c.breakLocked(err)
		}
		c.wmu.Unlock()
		clear(batch)
	}
}

// stopBlockingLocked tears a blocking connection down from any goroutine:
// the reader's Read fails and it finishes the connection.
func (c *Conn) stopBlockingLocked() {
	if c.wflags&wfStopped != 0 {
		return
	}
	c.wflags |= wfStopped
	close(c.blk().stop)
	_ = c.blk().conn.Close() // unblocks Read and Write; the reader finishes
}

// closeWrite sends our FIN (TLS: close_notify) after the last frame.
func (b *blockingIO) closeWrite() {
	if cw, ok := b.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite() // failure: the peer is gone; the reader sees it
		return
	}
	_ = b.conn.Close() // cannot half-close: end it; the reader sees EOF/closed
}

// release closes the socket and waits for the writer (I/O goroutine).
func (b *blockingIO) release(c *Conn) {
	c.wmu.Lock()
	c.stopBlockingLocked()
	c.wmu.Unlock()
	b.writers.Wait()
}
