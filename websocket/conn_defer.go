package websocket

// Deferred writes: a caller that must keep several connections' output in
// a fixed order under its own lock queues under the lock with Enqueue and
// sends after unlocking with Flush, so that no write(2) happens while the
// lock is held.

// Enqueue is WritePrepared that never touches the socket on the calling
// goroutine: the frame waits in the write queue, behind whatever is there,
// until Flush (or the connection's poller, or in blocking mode its writer
// goroutine) sends it. The caller must call Flush once it holds no lock
// that other writers need. Errors are those of WritePrepared.
func (c *Conn) Enqueue(pm *PreparedMessage) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wflags |= wfDeferred
	err := c.writePreparedLocked(pm)
	c.wflags &^= wfDeferred
	return err
}

// Flush sends what Enqueue queued: in reactor mode on the calling
// goroutine, as far as the kernel takes it (the poller sends the rest); in
// blocking mode the writer goroutine does. It never blocks on the peer.
func (c *Conn) Flush() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.queuedLocked() == 0 || c.wflags&(wfClosed|wfBroken) != 0 {
		return
	}
	if c.poller != nil && c.wflags&(wfCorked|wfHeld) == 0 {
		c.flushLocked()
		return
	}
	c.kickLocked()
}

// EnqueueMessage is WriteMessage that never touches the socket on the
// calling goroutine; see Enqueue.
func (c *Conn) EnqueueMessage(typ MessageType, data []byte) error {
	return c.writeMessage(typ, data, wfDeferred)
}
