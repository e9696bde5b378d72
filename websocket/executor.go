package websocket

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// The executor runs Handler callbacks on at most Config.Workers goroutines.
// Each connection has a FIFO inbox; a connection with work sits once on a
// run queue, so its callbacks never run concurrently and keep their order,
// while a slow callback blocks only its own connection (whose reading
// pauses when its inbox is full) and one worker.
//
// Workers start on demand, but only as many as can help. While work waits,
// up to GOMAXPROCS start at once: more cannot run quick callbacks any
// faster, and every extra goroutine keeps its stack. Beyond that, one timer
// checks every slowCallback whether work still waits, and starts a worker
// for each one that has been running the same connection's callbacks for
// longer than that (blocked on I/O, most likely), up to Workers. So a burst
// of quick callbacks on thousands of connections runs on a few goroutines,
// while callbacks that block still get up to Workers goroutines between
// them. An idle worker waits on its own channel; the most recently parked
// one is woken first, so that the others stay parked and exit after
// workerIdle, which a second timer enforces.

const (
	// workerIdle is how long a worker waits for work before exiting.
	workerIdle = 10 * time.Second
	// slowCallback is how long a worker may run one connection's callbacks
	// before it counts as blocked, and how often the executor checks.
	slowCallback = time.Millisecond
	// runBatch is how many items a worker takes from one connection before
	// moving it to the back of the run queue, for fairness.
	runBatch = 16
)

type executor struct {
	max       int
	base      int           // workers started without waiting: min(GOMAXPROCS, max)
	idleFor   time.Duration // workerIdle; shorter in tests
	slowAfter time.Duration // slowCallback; changed in tests
	epoch     time.Time     // base of since

	mu         sync.Mutex
	runq       []*Conn   // run queue: a ring of queued connections from runq[rhead]; its length a power of two
	rhead      int       // index of the first queued connection
	queued     int       // connections on the run queue
	workers    int       // running worker goroutines
	all        []*worker // the running workers
	idle       []*worker // parked workers, most recently parked last
	stopped    bool
	reap, grow ownedTimer // retire idle workers; add workers for blocked ones
	wg         sync.WaitGroup
}

// worker is one worker goroutine's state; its fields other than wake are
// guarded by executor.mu.
type worker struct {
	wake  chan bool // cap 1; true: look for work, false: exit
	busy  bool      // running a connection's callbacks
	since int64     // when it parked, or took its connection (executor.now)
}

// ownedTimer is a time.AfterFunc timer the executor waits for: it counts
// in executor.wg from arming until its callback is done, so stop returns
// only after any callback has finished. Guarded by executor.mu.
type ownedTimer struct {
	t     *time.Timer
	f     func() // set once in init: a method value made at each arming would allocate
	armed bool
}

func (e *executor) init(workers int) {
	e.max = workers
	e.base = min(runtime.GOMAXPROCS(0), workers)
	e.idleFor = workerIdle
	e.slowAfter = slowCallback
	e.epoch = time.Now()
	e.reap.f, e.grow.f = e.reapIdle, e.growForBlocked
}

// now is the executor's monotonic clock in nanoseconds.
func (e *executor) now() int64 { return int64(time.Since(e.epoch)) }

// schedule puts c on the run queue and makes sure a worker will see it.
func (e *executor) schedule(c *Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.appendLocked(c)
	if n := len(e.idle); n > 0 {
		w := e.idle[n-1]
		e.idle[n-1] = nil
		e.idle = e.idle[:n-1]
		w.wake <- true // never blocks: a parked worker's channel is empty
		return
	}
	switch {
	case e.stopped:
	case e.workers < e.base:
		e.startLocked()
	case e.workers < e.max:
		e.armLocked(&e.grow, e.slowAfter)
	}
}

// runqKeep is the largest run queue ring kept once it is empty: a burst
// may grow it, and the memory returns when the burst is over.
const runqKeep = 256

// appendLocked puts c at the back of the run queue. The queue is a ring
// of pointers rather than a list linked through the connections: a link
// would cost every connection 8 bytes for its whole life, the ring only
// the connections waiting to run, while they wait.
func (e *executor) appendLocked(c *Conn) {
	if e.queued == len(e.runq) {
		ring := make([]*Conn, max(16, 2*len(e.runq)))
		for i := range e.queued {
			ring[i] = e.runq[(e.rhead+i)&(len(e.runq)-1)]
		}
		e.runq, e.rhead = ring, 0
	}
	e.runq[(e.rhead+e.queued)&(len(e.runq)-1)] = c
	e.queued++
}

// popLocked takes the connection at the front of the run queue, nil if
// it is empty.
func (e *executor) popLocked() *Conn {
	if e.queued == 0 {
		return nil
	}
	c := e.runq[e.rhead]
	e.runq[e.rhead] = nil
	e.rhead = (e.rhead + 1) & (len(e.runq) - 1)
	e.queued--
	if e.queued == 0 {
		e.rhead = 0
		if len(e.runq) > runqKeep {
			e.runq = nil
		}
	}
	return c
}

func (e *executor) startLocked() {
	w := &worker{wake: make(chan bool, 1)}
	e.all = append(e.all, w)
	e.workers++
	e.wg.Add(1)
	go e.work(w)
}

// removeLocked forgets a worker that is about to exit.
func (e *executor) removeLocked(w *worker) {
	for i, x := range e.all {
		if x == w {
			last := len(e.all) - 1
			e.all[i] = e.all[last]
			e.all[last] = nil
			e.all = e.all[:last]
			break
		}
	}
	e.workers--
}

// work is one worker goroutine.
func (e *executor) work(w *worker) {
	defer e.wg.Done()
	for {
		c := e.next(w)
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
func (e *executor) next(w *worker) *Conn {
	e.mu.Lock()
	for {
		if c := e.popLocked(); c != nil {
			w.busy, w.since = true, e.now()
			e.mu.Unlock()
			return c
		}
		if e.stopped {
			e.removeLocked(w)
			e.mu.Unlock()
			return nil
		}
		w.busy, w.since = false, e.now()
		e.idle = append(e.idle, w)
		e.armLocked(&e.reap, e.idleFor)
		e.mu.Unlock()
		if !<-w.wake {
			return nil // retired by reapIdle or stop, which forgot it
		}
		e.mu.Lock()
	}
}

// reapIdle retires the workers parked for idleFor or longer, oldest first,
// and re-arms itself for the next one.
func (e *executor) reapIdle() {
	defer e.wg.Done()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reap.armed = false
	now := e.now()
	n := 0
	for n < len(e.idle) && now-e.idle[n].since >= int64(e.idleFor) {
		w := e.idle[n]
		e.removeLocked(w)
		w.wake <- false
		n++
	}
	rest := copy(e.idle, e.idle[n:])
	clear(e.idle[rest:])
	e.idle = e.idle[:rest]
	if rest > 0 {
		e.armLocked(&e.reap, time.Duration(e.idle[0].since+int64(e.idleFor)-now))
	}
}

// growForBlocked runs while work waits and every worker is busy: it starts
// a worker for each one blocked for slowAfter or longer (keeping base
// workers free to run), at most one per waiting connection and Workers in
// all, and checks again after slowAfter while work still waits.
func (e *executor) growForBlocked() {
	defer e.wg.Done()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.grow.armed = false
	if e.stopped || e.queued == 0 {
		return
	}
	now := e.now()
	blocked := 0
	for _, w := range e.all {
		if w.busy && now-w.since >= int64(e.slowAfter) {
			blocked++
		}
	}
	want := min(e.max, blocked+e.base, e.workers+e.queued)
	for e.workers < want {
		e.startLocked()
	}
	if e.workers < e.max {
		e.armLocked(&e.grow, e.slowAfter)
	}
}

// armLocked starts t unless it is armed already or the executor stopped.
func (e *executor) armLocked(t *ownedTimer, d time.Duration) {
	if t.armed || e.stopped {
		return
	}
	t.armed = true
	e.wg.Add(1)
	if t.t == nil {
		t.t = time.AfterFunc(d, t.f)
		return
	}
	t.t.Reset(d)
}

// disarmLocked stops t; a callback already running finishes on its own.
func (e *executor) disarmLocked(t *ownedTimer) {
	if t.armed && t.t.Stop() {
		t.armed = false
		e.wg.Done()
	}
}

// stop makes idle workers exit and waits for all of them and for the
// timers. Call it only when no connection can be scheduled any more.
func (e *executor) stop() {
	e.mu.Lock()
	if !e.stopped {
		e.stopped = true
		for _, w := range e.idle {
			e.removeLocked(w)
			w.wake <- false
		}
		clear(e.idle)
		e.idle = e.idle[:0]
		e.disarmLocked(&e.reap)
		e.disarmLocked(&e.grow)
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
	itemFail // send the close frame of a protocol error (code; reason in closeErr)
	itemClose
)

// inboxItem is one pending callback; pooled.
type inboxItem struct {
	next *inboxItem
	kind itemKind
	typ  MessageType
	code StatusCode // itemEcho: the peer's close code; itemFail: the code to send
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

// openInline runs a server connection's OnOpen on the accepting goroutine,
// before its I/O starts, then sends the 101 (response) and what was written
// meanwhile. The connection counts as scheduled from newConn on, so that
// anything queued for it meanwhile (OnClose, if another goroutine dropped
// it) waits for OnOpen; it then goes to the executor. Running OnOpen here
// rather than on the executor keeps the handshake's latency what it was
// without the hold.
func (c *Conn) openInline(response []byte) {
	c.callOpen()
	c.releaseResponse(response) // after OnOpen's output, a 1011 close if it panicked
	c.imu.Lock()
	more := c.inTail != nil
	c.scheduled = more
	c.imu.Unlock()
	if more {
		c.eng.exec.schedule(c)
	}
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
		it.next = it
	} else {
		it.next = c.inTail.next // the head
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
		case itemFail:
			c.failClose(it.code, c.failReason())
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
	tail := c.inTail
	if tail == nil {
		c.scheduled = false
		c.imu.Unlock()
		return nil, false
	}
	it = tail.next
	if it == tail {
		c.inTail = nil
	} else {
		tail.next = it.next
	}
	it.next = nil
	resume := false
	if it.kind == itemMessage {
		c.inN--
		if c.paused.Load() && int(c.inN) <= c.eng.cfg.InboxLimit/2 {
			c.paused.Store(false)
			resume = true
		}
	}
	more = c.inTail != nil
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
	if it.kind == itemOpen {
		c.callOpen()
		return
	}
	defer c.recoverCallback("OnMessage")
	c.eng.h.OnMessage(c, it.typ, *it.buf)
}

// callOpen runs OnOpen, if any; a panic in it closes the connection with
// 1011.
func (c *Conn) callOpen() {
	if c.eng.h.OnOpen == nil {
		return
	}
	defer c.recoverCallback("OnOpen")
	c.eng.h.OnOpen(c)
}

func (c *Conn) callClose() {
	if c.eng.h.OnClose == nil {
		return
	}
	defer c.recoverCallback("OnClose")
	c.eng.h.OnClose(c, c.endReason())
}

// recoverCallback turns a panicking callback into a 1011 close, as net/http
// turns a panicking handler into a dropped request: one bad connection
// must not take the gateway down. The panic is counted, logged with its
// stack and reported to Config.OnPanic first, so that it can be found.
func (c *Conn) recoverCallback(callback string) {
	if r := recover(); r != nil {
		c.eng.panicked(c, callback, r, debug.Stack())
		_ = c.Close(StatusInternalError, "internal error") // closing is all we can do
	}
}

// panicked counts, logs and reports a recovered callback panic.
func (e *engine) panicked(c *Conn, callback string, value any, stack []byte) {
	e.panics.Add(1)
	if l := e.cfg.Logger; l != nil {
		l.Error("websocket: callback panicked", "callback", callback,
			"remote", c.RemoteAddr().String(), "panic", value, "stack", string(stack))
	}
	if e.cfg.OnPanic != nil {
		defer func() { _ = recover() }() // documented: a panicking OnPanic is ignored
		e.cfg.OnPanic(c, value, stack)
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
