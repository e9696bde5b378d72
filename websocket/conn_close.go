package websocket

import (
	"fmt"
	"net"
	"time"
)

// The closing handshake (RFC 6455 §7) and teardown: Close sends our close
// frame and arms the close timeout; the peer's close frame is echoed;
// either way the read side then drains until EOF or the timeout, and
// finish closes the socket and queues OnClose.

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

// CloseNow drops the TCP connection without a closing handshake: for a
// peer not worth waiting for (misbehaving, or Shutdown's ctx is over).
// OnClose still runs, with an error wrapping net.ErrClosed (or the
// *CloseError of a closing handshake already begun).
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

// sendCloseLocked sends our close frame (once) and starts waiting for the
// peer's.
func (c *Conn) sendCloseLocked(code StatusCode, reason string) error {
	c.wflags |= wfCloseSent
	c.armDeadlineLocked()
	return c.sendFrameLocked(opClose, false, closePayload(code, reason), true)
}

// armDeadlineLocked starts the close timeout unless it runs already.
func (c *Conn) armDeadlineLocked() {
	x := c.ext()
	if x.deadline.Load() != 0 {
		return
	}
	d := time.Now().Add(c.eng.cfg.CloseTimeout)
	x.deadline.Store(d.UnixNano())
	if b := c.blk(); b != nil {
		_ = b.conn.SetReadDeadline(d) // wake a reader blocked without a deadline; failure means it is closed
		b.wakeReader()                // and one paused for its handler or for Read
	}
}

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
		if c.queuedLocked() == 0 && c.wflags&wfHeld == 0 {
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
	c.wflags |= wfClosed | wfBroken
	c.wmu.Unlock()
	if c.poller != nil {
		c.poller.release(c)
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

// unavailableResponse answers a handshake whose connection could not start.
const unavailableResponse = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 52\r\n\r\n" +
	"websocket: server cannot take the connection, retry\n"

// refuseWriteTimeout bounds the write of a refused connection's close
// frame (blocking mode; the reactor's socket never blocks).
const refuseWriteTimeout = time.Second

// refuse ends a connection whose I/O never started, after its handshake
// succeeded: it sends the server's 101 (response, nil on the client side),
// a close frame (engine.refusal) and our FIN, and closes the socket
// without waiting for the answer. A server connection that could not
// start for want of resources (the reactor could not take its socket: out
// of file descriptors) gets HTTP 503 instead of its 101: a client that
// was never served must see a refused handshake it retries, not 101 then
// 1011. The socket is c.fd once the reactor took it, else conn.
func (c *Conn) refuse(conn net.Conn, response []byte) {
	code, reason, closing := c.eng.refusal()
	var out []byte
	if response != nil && !closing {
		out = []byte(unavailableResponse)
	} else {
		out = appendFrame(response, opClose, true, false, closePayload(code, reason), c.eng.client, maskKey())
	}
	if c.fd >= 0 {
		refuseFD(int(c.fd), out)
	} else {
		_ = conn.SetWriteDeadline(time.Now().Add(refuseWriteTimeout)) // failure shows in Write
		if _, err := conn.Write(out); err == nil {
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite() // the peer may be gone; we close anyway
			}
		}
		_ = conn.Close() // the connection is over whatever the peer does
	}
	c.p.release()
}
