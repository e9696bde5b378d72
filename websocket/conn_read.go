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
