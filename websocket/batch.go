package websocket

import "runtime"

// Batched writes: a fanout writes one small frame to each of thousands of
// connections, and nearly all of its cost is the kernel's: on a loopback
// or a virtual machine, entering and leaving the kernel once per
// recipient (about a microsecond each, with today's speculation
// mitigations) costs as much as a third of the write. A Batch hands the
// kernel up to batchSize of those writes in one system call (io_uring, on
// Linux where the kernel allows it), and otherwise writes them one by one
// as Conn.WritePrepared does.

// batchSize is how many writes a Batch gathers before it sends them: most
// of the gain per write is there by 64, and a batch holds the write locks
// of its connections until it is sent (about 250 µs at this size on the
// 2-core benchmark machine), delaying any other writer of those
// connections as long.
const batchSize = 64

// Batch sends prepared messages to many connections in as few system
// calls as the platform allows. The zero value is ready to use; a Batch
// is for one goroutine, and its owner must call Send when done, holding no
// lock that another writer of those connections may need (as with
// Conn.Enqueue and Flush). Messages to one connection keep their order, and
// with the connection's other writes.
type Batch struct {
	ring   *uring // taken from the pool at the first batched write, with the writes waiting in it
	noRing bool   // the pool had none for this batch: write directly
	failed int    // writes the kernel refused since the last Send
}

// batchEntry is a direct write waiting in a Batch: its Conn's wmu is held
// and frame is what transmitLocked would have written.
type batchEntry struct {
	c     *Conn
	frame []byte
}

// WritePrepared is c.WritePrepared(pm) through the batch: a write that
// would go straight to the socket waits, with c's write lock held, until
// the batch is sent; any other write (queued behind earlier output, or
// framed by the connection itself) happens now. It returns the errors
// Conn.WritePrepared returns before writing; a batched write that the
// kernel then refuses breaks its connection and is counted by Send.
func (b *Batch) WritePrepared(c *Conn, pm *PreparedMessage) error {
	if c.poller == nil || c.eng.cfg.DisableIOURing || !b.hasRing() {
		return c.WritePrepared(pm)
	}
	if !c.wmu.TryLock() {
		// Never wait for a connection's lock while holding others: two
		// batches over the same connections in different orders would
		// deadlock, and a writer of one of ours would wait for us.
		b.flush()
		c.wmu.Lock()
	}
	frame, err := c.sharedFrameLocked(pm)
	if frame == nil || !c.directLocked() {
		if frame != nil {
			err = c.transmitLocked(nil, frame, nil, true)
		}
		c.wmu.Unlock()
		return err
	}
	c.noteWriteLocked()
	b.ring.pending = append(b.ring.pending, batchEntry{c: c, frame: frame})
	if len(b.ring.pending) == batchSize {
		b.flush()
		// A writer that found one of those connections locked is parked,
		// and unlocking readied it on this goroutine's P, where it would
		// wait until this goroutine (a broadcast: milliseconds of work
		// more) next blocks or is preempted. Let it run now.
		runtime.Gosched()
	}
	return nil
}

// Send sends the writes the batch holds, releases their connections and
// the batch's ring, and returns how many writes since the last Send the
// kernel refused (their connections are broken and will close, as after
// a failed Conn.WritePrepared).
func (b *Batch) Send() (failed int) {
	b.flush()
	if b.ring != nil {
		putRing(b.ring)
		b.ring = nil
	}
	b.noRing = false
	failed, b.failed = b.failed, 0
	return failed
}

// hasRing takes a ring from the pool at the batch's first write.
func (b *Batch) hasRing() bool {
	if b.ring == nil && !b.noRing {
		b.ring = getRing()
		b.noRing = b.ring == nil
	}
	return b.ring != nil
}

// flush sends the waiting writes and unlocks their connections.
func (b *Batch) flush() {
	if b.ring == nil || len(b.ring.pending) == 0 {
		return
	}
	pending := b.ring.pending
	results := b.ring.send(pending)
	for i := range pending {
		e := &pending[i]
		if !e.c.settleLocked(e.frame, results[i]) {
			b.failed++
		}
		e.c.wmu.Unlock()
		*e = batchEntry{}
	}
	b.ring.pending = pending[:0]
}

// settleLocked finishes a batched write of frame to which the kernel
// answered n (bytes written) or err, as transmitLocked finishes a direct
// one: the rest is queued for the poller, and an error breaks the
// connection (with the error itself, as transmitLocked breaks it). It
// reports whether the write succeeded.
func (c *Conn) settleLocked(frame []byte, res sendResult) bool {
	if res.err != nil {
		c.breakLocked(res.err)
		return false
	}
	if res.n < len(frame) {
		c.enqueueLocked(outChunk{b: frame[res.n:]}) // shared bytes: no copy
		c.kickLocked()
	}
	return true
}

// sendResult is the kernel's answer to one batched write: bytes written
// (0 when the socket had no room) or the error that broke the connection.
type sendResult struct {
	n   int
	err error
}

// IOURingUsable reports whether a Batch can hand its writes to the kernel
// through io_uring in this process (unless Config.DisableIOURing): Linux,
// and a kernel, sysctl and seccomp profile that allow it. The first call
// makes the check.
func IOURingUsable() bool { return uringUsable() }
