//go:build linux

package websocket

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The reactor drives plain-TCP connections from Config.Pollers goroutines,
// each blocked in epoll_wait on its own epoll instance. A connection costs
// no goroutine, timer or buffer while idle: a poller reads into one 64 KiB
// buffer shared by all its connections and the parser keeps only partial
// frames.
//
// Descriptor safety: a connection's fd is closed only by its poller, after
// setting wfClosed under the write mutex; every other goroutine touches the
// fd (write, epoll_ctl MOD) only under that mutex after checking wfClosed,
// so it can never write to a reused descriptor. Epoll events carry a table
// slot and a generation, so a stale event for a freed slot is ignored.

const (
	reactorSupported = true
	// pollReadBuffer is the read buffer each poller shares among its
	// connections.
	pollReadBuffer = 64 << 10
	// pollEvents is how many events one epoll_wait returns at most.
	pollEvents = 256
	// sweepEvery is how often a poller checks idle and close timeouts.
	sweepEvery = time.Second
	// wakeSlot marks the eventfd's epoll events.
	wakeSlot = -1
	// maxIovecs bounds one writev of queued chunks.
	maxIovecs = 64
)

type reactor struct {
	pollers []*poller
	next    atomic.Uint32
	wg      sync.WaitGroup
}

// poller is one epoll instance and its goroutine.
type poller struct {
	eng    *engine
	epfd   int
	ep     *os.File        // epfd, registered with Go's netpoller
	rc     syscall.RawConn // waits for epfd to become readable without blocking a thread
	efd    int             // eventfd that wakes the poller when tasks are posted
	buf    []byte
	events []unix.EpollEvent
	slots  []*Conn // indexed by Conn.slot
	free   []int32
	now    int64  // unix nanos, refreshed after every epoll_wait
	tick   uint32 // the engine's activity clock at now

	mu    sync.Mutex
	tasks []pollTask
	spare []pollTask
	woken bool // an eventfd write is pending
}

// pollTask is work for a poller from another goroutine.
type pollTask struct {
	c        *Conn
	op       taskOp
	buffered []byte
}

type taskOp uint8

const (
	taskRegister taskOp = iota // add c to epoll after parsing buffered
	taskAbort                  // tear c down (CloseNow or a write error)
	taskFlush                  // send c's queue (writes made while corked)
	taskStop                   // exit the poll loop
)

// startReactor creates the pollers and starts their goroutines.
func startReactor(e *engine) (*reactor, error) {
	r := &reactor{}
	for range e.cfg.Pollers {
		p, err := newPoller(e)
		if err != nil {
			for _, q := range r.pollers {
				q.closeFDs()
			}
			return nil, err
		}
		r.pollers = append(r.pollers, p)
	}
	for _, p := range r.pollers {
		r.wg.Add(1)
		go p.run(&r.wg)
	}
	return r, nil
}

func newPoller(e *engine) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("websocket: epoll_create1: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd) // nothing registered yet
		return nil, fmt.Errorf("websocket: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev)
	if err == nil {
		err = unix.SetNonblock(epfd, true) // makes os.NewFile hand it to Go's netpoller
	}
	if err != nil {
		_ = unix.Close(efd)
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("websocket: epoll setup: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "websocket-epoll")
	rc, err := ep.SyscallConn()
	if err == nil {
		// Only a file in Go's netpoller takes deadlines; without it the
		// poller could not wait for events.
		err = ep.SetReadDeadline(time.Time{})
	}
	if err != nil {
		_ = ep.Close()
		_ = unix.Close(efd)
		return nil, fmt.Errorf("websocket: epoll raw conn: %w", err)
	}
	return &poller{
		eng:    e,
		epfd:   epfd,
		ep:     ep,
		rc:     rc,
		efd:    efd,
		buf:    make([]byte, pollReadBuffer),
		events: make([]unix.EpollEvent, pollEvents),
	}, nil
}

// stop ends every poller and waits for their goroutines.
func (r *reactor) stop() {
	for _, p := range r.pollers {
		p.post(pollTask{op: taskStop})
	}
	r.wg.Wait()
}

// bind assigns c (round robin) to a poller. The fd is added to epoll later,
// by the poller itself (register).
func (r *reactor) bind(c *Conn, fd int) {
	c.poller = r.pollers[int(r.next.Add(1))%len(r.pollers)]
	c.fd = int32(fd)
	c.gen = c.eng.gen.Add(1)
}

// register asks c's poller to parse buffered and start polling c.
func (p *poller) register(c *Conn, buffered []byte) {
	p.post(pollTask{c: c, op: taskRegister, buffered: buffered})
}

// post queues a task and wakes the poller.
func (p *poller) post(t pollTask) {
	p.mu.Lock()
	p.tasks = append(p.tasks, t)
	wake := !p.woken
	p.woken = true
	p.mu.Unlock()
	if wake {
		one := [8]byte{1}                // eventfd adds this little-endian uint64 to its counter
		_, _ = unix.Write(p.efd, one[:]) // cannot fail short of EAGAIN at 2^64-1
	}
}

// run is the poller goroutine. It does not block a thread in epoll_wait:
// an epoll fd is itself pollable, so the goroutine parks in Go's netpoller
// until epfd is readable and then collects the events with a zero
// timeout. Wakeups then cost what any network goroutine's cost, instead of
// a thread leaving a blocking syscall and looking for a P. A read deadline
// on epfd wakes it for the timeout sweep.
func (p *poller) run(wg *sync.WaitGroup) {
	defer wg.Done()
	defer p.shutdown()
	nextSweep := time.Now().Add(sweepEvery)
	_ = p.ep.SetReadDeadline(nextSweep) // cannot fail on an open pollable file
	var n int
	var werr error
	collect := func(fd uintptr) bool {
		n, werr = epollPoll(int(fd), p.events)
		return n > 0 || (werr != nil && werr != unix.EINTR)
	}
	for {
		n, werr = 0, nil
		err := p.rc.Read(collect)
		if werr != nil && werr != unix.EINTR || err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return // a bug (EBADF, EINVAL): shutdown drops every connection
		}
		now := time.Now()
		p.now = now.UnixNano()
		p.tick = p.eng.ticks(now)
		for i := range n {
			ev := &p.events[i]
			if ev.Fd == wakeSlot {
				if !p.runTasks() {
					return
				}
				continue
			}
			p.handle(ev)
		}
		if err != nil || !now.Before(nextSweep) {
			p.sweep()
			nextSweep = now.Add(sweepEvery)
			_ = p.ep.SetReadDeadline(nextSweep) // cannot fail on an open pollable file
		}
	}
}

// runTasks runs posted tasks; false means stop.
func (p *poller) runTasks() bool {
	var cnt [8]byte
	_, _ = unix.Read(p.efd, cnt[:]) // resets the counter; EAGAIN if already read
	p.mu.Lock()
	tasks := p.tasks
	p.tasks = p.spare[:0]
	p.woken = false
	p.mu.Unlock()
	keep := true
	for i := range tasks {
		t := &tasks[i]
		switch t.op {
		case taskRegister:
			p.add(t.c, t.buffered)
		case taskAbort:
			t.c.finish(t.c.endErr(errDropped))
		case taskFlush:
			t.c.flushQueue()
		case taskStop:
			keep = false
		}
		tasks[i] = pollTask{}
	}
	p.spare = tasks[:0]
	return keep
}

// handle dispatches one epoll event. Events are hints: the read and write
// results decide what happened.
func (p *poller) handle(ev *unix.EpollEvent) {
	slot := int(ev.Fd)
	if slot < 0 || slot >= len(p.slots) {
		return
	}
	c := p.slots[slot]
	if c == nil || c.gen != uint32(ev.Pad) {
		return // stale event for a freed or reused slot
	}
	if ev.Events&unix.EPOLLOUT != 0 {
		c.flushQueue()
	}
	if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.io != ioDone {
		p.read(c)
	}
}

// read reads once from c into the shared buffer and parses it. With level
// triggering, anything left is reported again by the next epoll_wait,
// which keeps one busy connection from starving the others.
func (p *poller) read(c *Conn) {
	n, err := readFD(int(c.fd), p.buf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
	case err != nil:
		c.finish(c.endErr(fmt.Errorf("websocket: read: %w", err)))
	case n == 0:
		c.onEOF()
	default:
		c.noteRead(p.tick)
		c.consume(p.buf[:n])
	}
}

// add gives c a slot, parses the handshake's leftover bytes and adds the
// fd to epoll.
func (p *poller) add(c *Conn, buffered []byte) {
	if len(p.free) > 0 {
		c.slot = p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
	} else {
		c.slot = int32(len(p.slots))
		p.slots = append(p.slots, nil)
	}
	p.slots[c.slot] = c
	c.noteRead(p.tick)
	if len(buffered) > 0 {
		c.consume(buffered)
		if c.io == ioDone {
			return
		}
	}
	c.wmu.Lock()
	c.wflags |= wfRegistered
	c.events = c.wantEventsLocked()
	ev := unix.EpollEvent{Events: c.events, Fd: c.slot, Pad: int32(c.gen)}
	err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(c.fd), &ev)
	if err != nil {
		c.wflags &^= wfRegistered
	}
	c.wmu.Unlock()
	if err != nil {
		c.finish(c.endErr(fmt.Errorf("websocket: epoll_ctl add: %w", err)))
	}
}

// release closes c's fd, which also removes it from epoll, and frees its
// slot. No EPOLL_CTL_DEL: the fd is the socket's only descriptor (takeFD
// closed net's, and the duplicate is close-on-exec), so closing it ends
// the registration, and the system call would be a noticeable share of a
// short-lived connection's cost. An event already queued for it is
// caught by the slot's generation.
func (p *poller) release(c *Conn) {
	_ = unix.Close(int(c.fd)) // nothing useful to do on error: the fd is gone either way
	if c.slot >= 0 && p.slots[c.slot] == c {
		p.slots[c.slot] = nil
		p.free = append(p.free, c.slot)
	}
}

// sweep enforces close and idle timeouts, about once a second.
func (p *poller) sweep() {
	// A connection is idle once its last read is over idle ticks old: the
	// stamps are rounded down to a tick, hence the one tick more.
	idle := p.eng.cfg.IdleTimeout
	idleTicks := durationTicks(idle) + 1
	for _, c := range p.slots {
		if c == nil || c.io == ioDone {
			continue
		}
		if d := c.closeDeadline(); d != 0 {
			if p.now >= d {
				c.finish(c.endErr(errCloseTimeout))
			}
			continue
		}
		if idle > 0 && !c.paused.Load() && p.tick-c.lastRead.Load() >= idleTicks {
			c.closeIdle()
			continue
		}
		if c.x.Load() != nil {
			// Replies queued while corked, or a slow reader's backlog,
			// leave a connExt behind: an idle connection sheds it here
			// (at most one allocation per second for a busy one).
			c.wmu.Lock()
			c.shedExtLocked()
			c.wmu.Unlock()
		}
	}
}

// shutdown drops any connection left and closes the poller's descriptors.
func (p *poller) shutdown() {
	for _, c := range p.slots {
		if c != nil {
			c.finish(c.endErr(errShutdown))
		}
	}
	p.closeFDs()
}

func (p *poller) closeFDs() {
	_ = unix.Close(p.efd) // the poller is gone; errors change nothing
	_ = p.ep.Close()      // idem; also leaves Go's netpoller
}

// --- Conn methods for reactor mode ---

// wantEventsLocked is the epoll interest c needs now.
func (c *Conn) wantEventsLocked() uint32 {
	var ev uint32
	if !c.paused.Load() || c.wflags&wfDraining != 0 {
		ev |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if c.queuedLocked() > 0 {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// kickReactorLocked gets queued output moving: a corked connection posts
// one flush task to its poller; otherwise EPOLLOUT is armed.
func (c *Conn) kickReactorLocked() {
	if c.wflags&(wfCorked|wfRegistered) == wfCorked|wfRegistered {
		if c.wflags&wfFlushPosted == 0 {
			c.wflags |= wfFlushPosted
			c.poller.post(pollTask{c: c, op: taskFlush})
		}
		return
	}
	c.updateEventsLocked()
}

// updateEventsLocked brings the epoll interest in line with the pause
// state and the write queue. Any goroutine may call it (under wmu).
func (c *Conn) updateEventsLocked() {
	if c.wflags&wfRegistered == 0 || c.wflags&wfClosed != 0 {
		return // add (or nobody) registers it with the right interest
	}
	want := c.wantEventsLocked()
	if want == c.events {
		return
	}
	c.events = want
	ev := unix.EpollEvent{Events: want, Fd: c.slot, Pad: int32(c.gen)}
	if err := unix.EpollCtl(c.poller.epfd, unix.EPOLL_CTL_MOD, int(c.fd), &ev); err != nil {
		c.breakLocked(fmt.Errorf("websocket: epoll_ctl mod: %w", err))
	}
}

// flushQueue writes queued chunks on EPOLLOUT or for a flush task (poller
// goroutine).
func (c *Conn) flushQueue() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wflags &^= wfFlushPosted
	c.flushLocked()
}

// flushLocked writes queued chunks until the kernel refuses more, then
// brings the epoll interest in line. Any goroutine holding wmu.
func (c *Conn) flushLocked() {
	if c.wflags&(wfClosed|wfBroken) != 0 {
		return
	}
	for c.queuedLocked() > 0 {
		n, total, err := writevChunks(int(c.fd), c.x.Load().q.chunks)
		if err == unix.EAGAIN || err == unix.EINTR {
			break
		}
		if err != nil {
			c.breakLocked(err)
			return
		}
		c.consumedLocked(n)
		if n < total {
			break
		}
	}
	if c.queuedLocked() == 0 {
		c.flushedLocked()
	}
	c.updateEventsLocked()
}

// writevChunks writes up to maxIovecs queued chunks in one writev, with
// the iovecs on the stack so that any goroutine may call it without
// allocating. It returns the bytes written and the bytes offered.
func writevChunks(fd int, chunks []outChunk) (n, total int, err error) {
	var iov [maxIovecs]unix.Iovec
	k := 0
	for i := 0; i < len(chunks) && k < maxIovecs; i++ {
		b := chunks[i].b
		if len(b) == 0 {
			continue
		}
		iov[k].Base = &b[0]
		iov[k].SetLen(len(b))
		total += len(b)
		k++
	}
	if k == 0 {
		return 0, 0, nil
	}
	r, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
	if e != 0 {
		return 0, total, e
	}
	return int(r), total, nil
}

// smallWrite is the largest frame writeDirect copies into one buffer.
const smallWrite = 512

// writeDirect writes hdr and body to the socket without blocking and
// returns how much the kernel took; EAGAIN is not an error.
func (c *Conn) writeDirect(hdr, body []byte) (int, error) {
	fd := int(c.fd)
	var n int
	var err error
	switch {
	case len(hdr) == 0:
		n, err = writeFD(fd, body)
	case len(body) == 0:
		n, err = writeFD(fd, hdr)
	case len(hdr)+len(body) <= smallWrite:
		// One contiguous write costs the kernel less than a two-part
		// writev, and copying a small frame costs less than the difference.
		var buf [smallWrite]byte
		m := copy(buf[:], hdr)
		m += copy(buf[m:], body)
		n, err = writeFD(fd, buf[:m])
	default:
		n, err = writev2(fd, hdr, body)
	}
	if err == unix.EAGAIN || err == unix.EINTR {
		return 0, nil
	}
	return max(n, 0), err
}

// writeFD is write(2) on a non-blocking socket. Writes of up to smallWrite
// bytes skip the Go scheduler's syscall bookkeeping (RawSyscall): such a
// write returns within microseconds, never blocks, and in a fanout, where
// writes follow each other back to back, entersyscall/exitsyscall and the
// system monitor cost several percent of the server's CPU: sysmon polls
// every 20 µs while goroutines sit in syscalls, and hands off the P of a
// write that the kernel preempted (waking another thread to take it) only
// for the writer to have to get a P back afterwards. The goroutine keeps
// its P for those microseconds, as it would for any computation.
func writeFD(fd int, b []byte) (int, error) {
	if len(b) == 0 || len(b) > smallWrite {
		return unix.Write(fd, b)
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// readFD is read(2) on a non-blocking socket, like writeFD without the
// scheduler's syscall bookkeeping: it returns at once, with data or
// EAGAIN, after copying at most the poller's 64 KiB buffer.
func readFD(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// epollPoll collects ready events without waiting (epoll_pwait with a zero
// timeout, which every Linux architecture has), like readFD without the
// scheduler's syscall bookkeeping.
func epollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// writev2 is writev for two buffers with the iovecs on the stack: unlike
// unix.Writev it does not allocate.
func writev2(fd int, a, b []byte) (int, error) {
	var iov [2]unix.Iovec
	iov[0].Base = &a[0]
	iov[0].SetLen(len(a))
	iov[1].Base = &b[0]
	iov[1].SetLen(len(b))
	n, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), 2)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// shutdownFDLocked sends our FIN (poller, or a writer holding wmu).
func (c *Conn) shutdownFDLocked() {
	if c.wflags&wfClosed != 0 {
		return
	}
	_ = unix.Shutdown(int(c.fd), unix.SHUT_WR) // the peer may be gone; the read side will tell
}

// takeFD duplicates the socket of a plain TCP connection for the reactor
// and closes the net.Conn (Go's poller deregisters its own descriptor). It
// reports false for connections the reactor cannot drive (TLS, not TCP).
// On error the net.Conn is left open, for the caller to refuse.
func takeFD(conn net.Conn) (int, bool, error) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return -1, false, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return -1, false, nil // cannot reach the descriptor: use blocking mode
	}
	fd := -1
	var derr error
	err = raw.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil {
		err = derr
	}
	// No SetNonblock: O_NONBLOCK belongs to the open file, which the
	// duplicate shares with Go's descriptor, non-blocking for its poller
	// (TestTakeFDNonBlocking).
	if err != nil {
		if fd >= 0 {
			_ = unix.Close(fd) // half-made duplicate
		}
		return -1, false, fmt.Errorf("websocket: duplicate socket: %w", err)
	}
	_ = tc.Close() // our duplicate keeps the socket open
	return fd, true, nil
}

// refuseFD sends frame (a close frame) and our FIN on a socket that was
// never registered, then closes it. The socket is non-blocking and fresh,
// so the few bytes fit its send buffer; what the peer sent meanwhile is
// discarded first, because closing a socket with unread input sends a
// reset where a FIN was meant.
func refuseFD(fd int, frame []byte) {
	_, _ = unix.Write(fd, frame) // if it fails the peer is gone
	_ = unix.Shutdown(fd, unix.SHUT_WR)
	var buf [512]byte
	for range 8 {
		if n, err := unix.Read(fd, buf[:]); n <= 0 || err != nil {
			break
		}
	}
	_ = unix.Close(fd) // nothing to do on error: the fd is gone either way
}
