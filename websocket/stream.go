package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Pull-mode reading and streamed messages.
//
// A pull-mode connection (package Dial, or a server made by NewPullServer)
// parses in stream mode: an uncompressed message reaches the consumer piece
// by piece, each piece at most one read of the socket (4 KiB), through a
// queue of pullQueue entries; the reader goroutine stops reading while the
// queue is full. Read assembles pieces into whole messages under
// Config.ReadLimit; NextReader hands them out as they come, so a message of
// any size passes in constant memory. A compressed message is inflated
// whole (under ReadLimit) before it is queued.

// errStaleReader is returned by a message reader once the next message was
// asked for.
var errStaleReader = errors.New("websocket: message reader used after the next message was requested")

// errWriterOpen is returned by data writes while a message writer is open.
var errWriterOpen = errors.New("websocket: a message writer is open on this connection")

// NewPullServer returns a server whose connections are read like the
// client connections of package Dial, with Conn.Read or Conn.NextReader,
// instead of through a Handler: for programs that relay or store large
// messages as they arrive. Its connections run in blocking mode (a reader
// goroutine each). It starts no goroutines.
func NewPullServer(cfg Config) *Server {
	return &Server{eng: newEngine(cfg, Handler{}, false, true)}
}

// Read returns the next message of a pull-mode connection (package Dial,
// NewPullServer). After the connection ends it returns the reason: a
// *CloseError after a closing handshake. A message longer than
// Config.ReadLimit starts the closing handshake with 1009 and Read returns
// the connection's end. On a connection with a Handler it returns
// ErrReadNotSupported.
//
// The connection reads ahead only a little: while nobody calls Read
// it reads nothing more, so pings go unanswered and a close frame from the
// peer is not seen. When the peer breaks the protocol, the close frame
// that fails the connection is sent by the Read that comes to it, after
// the messages read before it, so that their replies can still be sent.
// Keep calling Read until it returns an error, or call CloseNow. (After
// Close, the connection ends within Config.CloseTimeout whether Read is
// called or not.)
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	if !c.eng.pull {
		return 0, nil, ErrReadNotSupported
	}
	b := c.blk()
	b.rmu.Lock()
	defer b.rmu.Unlock()
	if err := c.skipRestLocked(ctx); err != nil {
		return 0, nil, err
	}
	b.gen++ // a reader of the last message is stale now
	var data []byte
	for {
		m, err := c.nextPulledLocked(ctx)
		if err != nil {
			return 0, nil, err
		}
		if data == nil && !m.more {
			return m.typ, m.data, nil // a message in one piece: the common case
		}
		if limit := c.eng.cfg.ReadLimit; int64(len(data))+int64(len(m.data)) > limit {
			return 0, nil, c.tooBigLocked(ctx, limit, m.more)
		}
		data = append(data, m.data...)
		if !m.more {
			b.inMsg = false
			return m.typ, data, nil
		}
		b.inMsg = true // a cancelled ctx leaves the rest for the next call to skip
	}
}

// tooBigLocked fails a message that Read cannot hold: close with 1009, skip
// everything until the end of the connection and return its reason.
func (c *Conn) tooBigLocked(ctx context.Context, limit int64, more bool) error {
	_ = c.Close(StatusMessageTooBig, "message larger than "+strconv.FormatInt(limit, 10)+" bytes") // closing already is fine
	c.blk().inMsg = more
	for {
		if _, err := c.nextPulledLocked(ctx); err != nil {
			return err
		}
	}
}

// NextReader returns the next message of a pull-mode connection as a
// reader, which yields its pieces as they arrive and io.EOF at its end: a
// message of any size is read in constant memory. Config.ReadLimit does
// not apply (nothing is buffered; bound the reader yourself if needed),
// except to compressed messages, which are inflated whole first. The
// reader is valid until the next call of NextReader or Read, which skip
// whatever was left of it; its reads wait at most until ctx ends. When the
// connection ends in the middle of the message, the reader returns the
// connection's end reason (see Read).
func (c *Conn) NextReader(ctx context.Context) (MessageType, io.Reader, error) {
	if !c.eng.pull {
		return 0, nil, ErrReadNotSupported
	}
	b := c.blk()
	b.rmu.Lock()
	defer b.rmu.Unlock()
	if err := c.skipRestLocked(ctx); err != nil {
		return 0, nil, err
	}
	m, err := c.nextPulledLocked(ctx)
	if err != nil {
		return 0, nil, err
	}
	b.inMsg = m.more
	b.gen++
	return m.typ, &messageReader{c: c, ctx: ctx, gen: b.gen, buf: m.data, more: m.more}, nil
}

// skipRestLocked discards the unread pieces of the last message.
func (c *Conn) skipRestLocked(ctx context.Context) error {
	b := c.blk()
	for b.inMsg {
		m, err := c.nextPulledLocked(ctx)
		if err != nil {
			return err
		}
		b.inMsg = m.more
	}
	return nil
}

// nextPulledLocked takes the next queued message or piece. A protocol
// error queued behind the messages before it is acted on here (its close
// frame sent); the connection's end is returned as its reason.
func (c *Conn) nextPulledLocked(ctx context.Context) (pulledMessage, error) {
	for {
		select {
		case m, ok := <-c.blk().msgs:
			if !ok {
				c.blk().inMsg = false
				return pulledMessage{}, c.endReason()
			}
			if m.fail != nil {
				c.failClose(m.fail.Code, m.fail.Reason)
				continue // the end follows: EOF or the close timeout
			}
			return m, nil
		case <-ctx.Done():
			return pulledMessage{}, fmt.Errorf("websocket: read: %w", ctx.Err())
		}
	}
}

// messageReader reads one message; see NextReader.
type messageReader struct {
	c    *Conn
	ctx  context.Context // NextReader's: the reader lives as long as that call's result
	gen  uint64
	buf  []byte // the unread part of the current piece
	more bool   // pieces follow
	err  error  // sticky: io.EOF or why the message was cut short
}

func (r *messageReader) Read(p []byte) (int, error) {
	b := r.c.blk()
	b.rmu.Lock()
	defer b.rmu.Unlock()
	if r.gen != b.gen {
		return 0, errStaleReader
	}
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if !r.more {
			r.err = io.EOF
			return 0, io.EOF
		}
		m, err := r.c.nextPulledLocked(r.ctx)
		if err != nil {
			if errors.Is(err, r.ctx.Err()) && r.ctx.Err() != nil {
				return 0, err // not sticky: the pieces are still queued
			}
			r.err = err
			return 0, err
		}
		r.buf, r.more = m.data, m.more
		b.inMsg = m.more
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// onChunk implements frameSink: a piece of a message, in pull mode.
func (c *Conn) onChunk(typ MessageType, data []byte, last bool) error {
	m := pulledMessage{typ: typ, data: make([]byte, len(data)), more: !last}
	copy(m.data, data)
	return c.sendPull(m)
}

// NextWriter starts a message of type typ that is sent as it is written:
// each Write sends one frame (none for an empty Write), and Close sends the
// final frame. A message of any size is sent in constant memory. Writes
// wait, until ctx ends, for room in the write queue (Config.WriteQueueLimit)
// as Write does. Streamed messages are not compressed. Until Close, the
// connection's other data writes (WriteMessage, Write, WritePrepared, another
// NextWriter) fail: a message's frames may not be interleaved with another
// message's. Control frames (Ping, Close) may still be sent. Any mode,
// client or server.
func (c *Conn) NextWriter(ctx context.Context, typ MessageType) (io.WriteCloser, error) {
	if typ != TextMessage && typ != BinaryMessage {
		return nil, errBadType
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writableLocked(); err != nil {
		return nil, err
	}
	if c.wflags&wfStreaming != 0 {
		return nil, errWriterOpen
	}
	c.wflags |= wfStreaming
	return &messageWriter{c: c, ctx: ctx, op: opcode(typ)}, nil
}

// messageWriter writes one message; see NextWriter.
type messageWriter struct {
	c      *Conn
	ctx    context.Context // NextWriter's, as for messageReader
	op     opcode          // of the next frame: the type, then continuation
	closed bool
}

func (w *messageWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("websocket: write to a closed message writer")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := w.c.writeFragment(w.ctx, w.op, false, p); err != nil {
		return 0, err
	}
	w.op = opContinuation
	return len(p), nil
}

// Close sends the message's final frame and ends the writer.
func (w *messageWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.c.writeFragment(w.ctx, w.op, true, nil)
	w.c.wmu.Lock()
	w.c.wflags &^= wfStreaming
	w.c.wmu.Unlock()
	return err
}

// writeFragment sends one frame of a streamed message, waiting for room
// in the write queue until ctx ends.
func (c *Conn) writeFragment(ctx context.Context, op opcode, fin bool, p []byte) error {
	for {
		c.wmu.Lock()
		err := c.writableLocked()
		if err == nil {
			err = c.sendFrameFinLocked(op, fin, false, p, false)
		}
		c.wmu.Unlock()
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
