package websocket

import (
	"sync"
	"time"
)

// The executor runs Handler callbacks on at most Config.Workers goroutines.
// Each connection has a FIFO inbox; a connection with work sits once on a
// run queue, so its callbacks never run concurrently and keep their order,
// while a slow callback blocks only its own connection (whose reading
// pauses when its inbox is full) and one worker.

const (
	// workerIdle is how long a worker waits for work before exiting.
	workerIdle = 10 * time.Second
	// runBatch is how many items a worker takes from one connection before
	// moving it to the back of the run queue, for fairness.
	runBatch = 16
)

type executor struct {
	max     int
	idleFor time.Duration // workerIdle; shorter in tests
	wake    chan struct{} // one token per idle worker told to look again
	quit    chan struct{} // closed by stop

	mu         sync.Mutex
	head, tail *Conn // run queue, linked through Conn.runNext
	workers    int   // running worker goroutines
	idle       int   // waiting workers not yet sent a token
	stopped    bool
	wg         sync.WaitGroup
}

func (e *executor) init(workers int) {
	e.max = workers
	e.idleFor = workerIdle
	e.wake = make(chan struct{}, workers)
	e.quit = make(chan struct{})
}

// schedule puts c on the run queue and makes sure a worker will see it.
func (e *executor) schedule(c *Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.appendLocked(c)
	switch {
	case e.idle > 0:
		e.idle--
		e.wake <- struct{}{} // never blocks: cap(wake) = max ≥ waiting workers
	case e.workers < e.max && !e.stopped:
		e.workers++
		e.wg.Add(1)
		go e.work()
	}
}

func (e *executor) appendLocked(c *Conn) {
	c.runNext = nil
	if e.tail == nil {
		e.head = c
	} else {
		e.tail.runNext = c
	}
	e.tail = c
}

// work is one worker goroutine.
func (e *executor) work() {
	defer e.wg.Done()
	t := time.NewTimer(e.idleFor)
	defer t.Stop()
	for {
		c := e.next(t)
		if c == nil {
			return
		}
		if c.runInbox() {
			e.mu.Lock()
			e.appendLocked(c)
			e.mu.Unlock()
		}
	}
}

// next waits for a connection to run; nil means the worker must exit.
// Invariant under mu: idle + len(wake) = workers waiting in select.
func (e *executor) next(t *time.Timer) *Conn {
	for {
		e.mu.Lock()
		if c := e.head; c != nil {
			e.head = c.runNext
			if e.head == nil {
				e.tail = nil
			}
			c.runNext = nil
			e.mu.Unlock()
			return c
		}
		if e.stopped {
			e.workers--
			e.mu.Unlock()
			return nil
		}
		e.idle++
		e.mu.Unlock()
		t.Reset(e.idleFor)
		select {
		case <-e.wake:
			t.Stop()
			continue
		case <-e.quit:
			t.Stop()
		case <-t.C:
		}
		// Timed out or stopping: leave unless a token is already ours.
		e.mu.Lock()
		if e.idle > 0 {
			e.idle--
			if !e.stopped {
				e.workers--
				e.mu.Unlock()
				return nil
			}
			e.mu.Unlock()
			continue
		}
		e.mu.Unlock()
		<-e.wake // idle == 0: a token was sent for this worker
	}
}

// stop makes idle workers exit and waits for all of them. Call it only
// when no connection can be scheduled any more.
func (e *executor) stop() {
	e.mu.Lock()
	if !e.stopped {
		e.stopped = true
		close(e.quit)
	}
	e.mu.Unlock()
	e.wg.Wait()
}

// --- the per-connection inbox ---

type itemKind uint8

const (
	itemOpen itemKind = iota
	itemMessage
	itemEcho // answer the peer's close frame
	itemClose
)

// inboxItem is one pending callback; pooled.
type inboxItem struct {
	next *inboxItem
	kind itemKind
	typ  MessageType
	code StatusCode // itemEcho: the peer's close code
	buf  *[]byte    // message copy (pooled)
}

var itemPool = sync.Pool{New: func() any { return new(inboxItem) }}

func getItem() *inboxItem { return itemPool.Get().(*inboxItem) }

func putItem(it *inboxItem) {
	if it.buf != nil {
		putMsgBuf(it.buf)
	}
	*it = inboxItem{}
	itemPool.Put(it)
}

// pushOpen queues OnOpen, before any message can arrive.
func (c *Conn) pushOpen() {
	if c.eng.pull || c.eng.h.OnOpen == nil {
		return
	}
	it := getItem()
	it.kind = itemOpen
	c.push(it)
}

// pushClose queues OnClose, the last item; a pull-mode connection has no
// executor and ends at once.
func (c *Conn) pushClose() {
	if c.eng.pull {
		c.blk().endPull()
		c.finalize()
		return
	}
	it := getItem()
	it.kind = itemClose
	c.push(it)
}

// push appends it to the inbox, schedules the connection and pauses its
// reading when the inbox is full.
func (c *Conn) push(it *inboxItem) {
	pause := false
	c.imu.Lock()
	if c.inTail == nil {
		c.inHead = it
	} else {
		c.inTail.next = it
	}
	c.inTail = it
	if it.kind == itemMessage {
		c.inN++
		if int(c.inN) >= c.eng.cfg.InboxLimit && !c.paused.Load() {
			c.paused.Store(true)
			pause = true
		}
	}
	sched := !c.scheduled
	c.scheduled = true
	c.imu.Unlock()
	if sched {
		c.eng.exec.schedule(c)
	}
	if pause {
		c.readingChanged()
	}
}

// runInbox delivers up to runBatch items on a worker; it reports whether
// the connection has more and must be run again.
func (c *Conn) runInbox() bool {
	corked := false
	defer func() {
		if corked {
			c.setCorked(false)
		}
	}()
	for range runBatch {
		it, more := c.popItem()
		if it == nil {
			return false
		}
		if more && !corked && c.poller != nil {
			// More callbacks follow at once: let their writes collect
			// and go out together (see Conn.setCorked).
			corked = true
			c.setCorked(true)
		}
		switch it.kind {
		case itemClose:
			putItem(it)
			c.callClose()
			c.finalize()
			return false // scheduled stays set: nothing follows OnClose
		case itemEcho:
			c.echoClose(it.code)
			putItem(it)
		default:
			c.deliver(it)
		}
	}
	return true
}

// popItem takes the next inbox item, resuming reading when the inbox has
// drained enough; more reports whether another item follows. A nil item
// means the inbox is empty and the connection is off the run queue.
func (c *Conn) popItem() (it *inboxItem, more bool) {
	c.imu.Lock()
	it = c.inHead
	if it == nil {
		c.scheduled = false
		c.imu.Unlock()
		return nil, false
	}
	c.inHead = it.next
	if c.inHead == nil {
		c.inTail = nil
	}
	resume := false
	if it.kind == itemMessage {
		c.inN--
		if c.paused.Load() && int(c.inN) <= c.eng.cfg.InboxLimit/2 {
			c.paused.Store(false)
			resume = true
		}
	}
	more = c.inHead != nil
	c.imu.Unlock()
	if resume {
		c.readingChanged()
	}
	return it, more
}

// setCorked turns write batching on or off for a reactor connection whose
// callbacks run back to back. While corked, writes are queued instead of
// written one syscall each, and one flush task asks the poller to send
// them together; the poller runs concurrently, so a slow callback does not
// hold back the replies of the ones before it.
func (c *Conn) setCorked(on bool) {
	c.wmu.Lock()
	if on {
		c.wflags |= wfCorked
	} else {
		c.wflags &^= wfCorked
	}
	c.wmu.Unlock()
}

// deliver runs the callback for an open or message item.
func (c *Conn) deliver(it *inboxItem) {
	defer putItem(it)
	defer c.recoverCallback()
	if it.kind == itemOpen {
		c.eng.h.OnOpen(c)
		return
	}
	c.eng.h.OnMessage(c, it.typ, *it.buf)
}

func (c *Conn) callClose() {
	if c.eng.h.OnClose == nil {
		return
	}
	defer c.recoverCallback()
	c.eng.h.OnClose(c, c.endReason())
}

// recoverCallback turns a panicking callback into a 1011 close, as net/http
// turns a panicking handler into a dropped request: one bad connection
// must not take the gateway down.
func (c *Conn) recoverCallback() {
	if r := recover(); r != nil {
		_ = c.Close(StatusInternalError, "internal error") // closing is all we can do
	}
}

// finalize forgets the connection and closes Done.
func (c *Conn) finalize() {
	c.eng.remove(c)
	c.imu.Lock()
	c.finalized = true
	if x := c.x.Load(); x != nil && x.done != nil {
		close(x.done)
	}
	c.imu.Unlock()
}

// readingChanged applies a pause or resume decision to the I/O side.
func (c *Conn) readingChanged() {
	if c.poller != nil {
		c.wmu.Lock()
		c.updateEventsLocked()
		c.wmu.Unlock()
		return
	}
	if !c.paused.Load() {
		c.blk().wakeReader()
	}
}
