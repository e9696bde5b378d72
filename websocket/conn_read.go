package websocket

import "errors"

// The read side: the I/O goroutine (a poller, or the blocking reader)
// feeds what it reads to the parser, and Conn, as the parser's frameSink,
// hands messages to the inbox (or to Read) and answers pings.

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
	// Fail the connection (RFC 6455 §7.1.7): stop reading at once, and
	// send the code once the messages that came before the bad frame have
	// been handled, so that their replies still go out (no data may follow
	// our close frame). With nothing pending, the close goes out now.
	c.setEndReason(ce)
	switch {
	case c.eng.pull:
		c.startDrain(false)
		if err := c.deliverPullFailure(ce); err != nil {
			c.finish(c.endErr(err))
		}
	case c.handlerBusy():
		c.startDrain(false) // arms the close timeout: a stuck handler cannot hold the conn
		it := getItem()
		it.kind = itemFail
		it.code = ce.Code
		c.push(it)
	default:
		c.io = ioDraining
		c.failClose(ce.Code, ce.Reason)
	}
}

// handlerBusy reports whether callbacks are queued or running, which a
// protocol error's close frame must wait for.
func (c *Conn) handlerBusy() bool {
	c.imu.Lock()
	defer c.imu.Unlock()
	return c.scheduled
}

// failClose sends the close frame that fails the connection (unless one
// went out already) and sends our FIN after it: the side that fails a
// connection closes TCP (RFC 6455 §7.1.7). Any goroutine.
func (c *Conn) failClose(code StatusCode, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wflags&(wfCloseSent|wfBroken) == 0 {
		_ = c.sendCloseLocked(code, reason) // a failed write breaks the conn itself
	}
	c.drainLocked(true)
}

// onEOF handles the peer's FIN.
func (c *Conn) onEOF() {
	c.finish(c.endErr(errNoCloseFrame))
}

// onMessage implements frameSink.
func (c *Conn) onMessage(typ MessageType, data []byte) error {
	if c.eng.pull {
		return c.deliverPull(typ, data)
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

// takeMessage implements msgTaker: a message assembled in a pooled buffer
// goes to the inbox as it is, saving a copy (16 MiB for the largest).
func (c *Conn) takeMessage(typ MessageType, buf *[]byte) error {
	if c.eng.pull || c.eng.h.OnMessage == nil {
		err := c.onMessage(typ, *buf)
		putMsgBuf(buf)
		return err
	}
	it := getItem()
	it.kind = itemMessage
	it.typ = typ
	it.buf = buf
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

// failReason is the reason of the protocol error being sent by an
// itemFail: the end reason, set before the item was queued and never
// changed after.
func (c *Conn) failReason() string {
	var ce *CloseError
	if errors.As(c.endReason(), &ce) {
		return ce.Reason
	}
	return ""
}
