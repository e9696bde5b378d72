package websocket

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The part of io_uring (linux/io_uring.h) that Batch uses: a ring of
// batchSize submission entries, each a send(2) with MSG_DONTWAIT. The
// kernel issues a non-blocking send inline, within io_uring_enter, and
// completes it there, written, partly written or refused with EAGAIN, so
// that one system call does the work of up to batchSize write(2)s and
// returns with every answer. probeURing checks, once per process, that
// this kernel does so before any Batch relies on it.
const (
	uringOffSQEs          = 0x10000000 // mmap offset of the entries (IORING_OFF_SQES)
	uringEnterGetEvents   = 1 << 0     // IORING_ENTER_GETEVENTS
	uringSetupSubmitAll   = 1 << 7     // IORING_SETUP_SUBMIT_ALL: one bad entry does not stop the rest
	uringSetupCoopTaskrun = 1 << 8     // IORING_SETUP_COOP_TASKRUN: no interrupts for completions
	uringFeatSingleMmap   = 1 << 0     // IORING_FEAT_SINGLE_MMAP
	uringOpSend           = 26         // IORING_OP_SEND
)

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	_                                                                      [3]uint32
	sqOff                                                                  uringOffsets
	cqOff                                                                  uringOffsets
}

// uringOffsets are io_sqring_offsets (head, tail, ring_mask, ring_entries,
// flags, dropped, array) and io_cqring_offsets (head, tail, ring_mask,
// ring_entries, overflow, cqes, flags), which share one layout.
type uringOffsets struct {
	head, tail, ringMask, ringEntries, v4, v5, v6, _ uint32
	_                                                uint64
}

type uringSQE struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64
	addr     uint64
	len      uint32
	msgFlags uint32
	userData uint64
	_        [3]uint64
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// uring is one ring, used by one Batch at a time.
type uring struct {
	pending []batchEntry // the Batch's writes waiting for send (capacity batchSize)
	fd      int
	ringMem []byte // the submission and completion rings (one mapping)
	sqeMem  []byte // the submission entries
	sqHead  *uint32
	sqTail  *uint32
	sqMask  uint32
	sqes    []uringSQE
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    []uringCQE
	results [batchSize]sendResult
	broken  bool // io_uring_enter failed: closed instead of going back to the pool
}

func newURing() (*uring, error) {
	p := uringParams{flags: uringSetupSubmitAll | uringSetupCoopTaskrun}
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, batchSize, uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, e
	}
	r := &uring{fd: int(fd), pending: make([]batchEntry, 0, batchSize)}
	if p.features&uringFeatSingleMmap == 0 || p.sqEntries < batchSize || p.cqEntries < batchSize {
		r.close()
		return nil, errors.New("websocket: io_uring: an older kernel than this needs")
	}
	size := max(p.sqOff.v6+p.sqEntries*4, p.cqOff.v5+p.cqEntries*uint32(unsafe.Sizeof(uringCQE{})))
	mem, err := unix.Mmap(r.fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.close()
		return nil, err
	}
	r.ringMem = mem
	sqes, err := unix.Mmap(r.fd, uringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.close()
		return nil, err
	}
	r.sqeMem = sqes
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&mem[off]) }
	r.sqHead = (*uint32)(at(p.sqOff.head))
	r.sqTail = (*uint32)(at(p.sqOff.tail))
	r.sqMask = *(*uint32)(at(p.sqOff.ringMask))
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&sqes[0])), p.sqEntries)
	// Submission slot i always holds entry i: the indirection array is
	// the identity, set once.
	array := unsafe.Slice((*uint32)(at(p.sqOff.v6)), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	r.cqHead = (*uint32)(at(p.cqOff.head))
	r.cqTail = (*uint32)(at(p.cqOff.tail))
	r.cqMask = *(*uint32)(at(p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*uringCQE)(at(p.cqOff.v5)), p.cqEntries)
	return r, nil
}

func (r *uring) close() {
	if r.sqeMem != nil {
		_ = unix.Munmap(r.sqeMem)
	}
	if r.ringMem != nil {
		_ = unix.Munmap(r.ringMem)
	}
	_ = unix.Close(r.fd)
}

// send writes each entry's frame to its connection's socket (at most
// batchSize entries, whose write locks are held) and returns the kernel's
// answers in entry order. If io_uring_enter itself fails, the entries the
// kernel did not take are written with write(2), and the ring is retired.
func (r *uring) send(entries []batchEntry) []sendResult {
	n := uint32(len(entries))
	res := r.results[:n]
	if r.broken {
		writeEach(entries, res)
		return res
	}
	tail := *r.sqTail // only this goroutine moves it
	for i := range entries {
		r.sqes[(tail+uint32(i))&r.sqMask] = sendSQE(entries[i].c.fd, entries[i].frame, i)
		res[i] = sendResult{n: -1} // no answer yet
	}
	atomic.StoreUint32(r.sqTail, tail+n)
	var submitted, answered uint32
	for answered < n {
		toSubmit, wait, flags := n-submitted, uint32(0), uintptr(0)
		if toSubmit == 0 {
			// Every entry is in, and some answers are not: sends the
			// kernel kept to finish later, which probeURing found this
			// kernel does not do. Wait for them.
			wait, flags = n-answered, uringEnterGetEvents
		}
		m, e := uringEnter(r.fd, toSubmit, wait, flags)
		switch {
		case e == unix.EINTR:
		case e != 0 && toSubmit > 0:
			// The kernel took none of the rest: take them back and write
			// them one by one.
			r.broken = true
			submitted = atomic.LoadUint32(r.sqHead) - tail
			atomic.StoreUint32(r.sqTail, tail+submitted)
			writeEach(entries[submitted:], res[submitted:])
			answered += n - submitted
			submitted = n
		case e != 0:
			// No answers to wait for, ever: their connections are broken
			// below (this ring's kernel state is unknown, so it is retired).
			r.broken = true
			answered = n
		default:
			submitted += uint32(m)
		}
		answered += r.reap(res)
	}
	for i := range res {
		if res[i].n < 0 {
			res[i] = sendResult{err: errors.New("websocket: io_uring gave no answer")}
		}
	}
	runtime.KeepAlive(entries) // the kernel read the frames through raw addresses
	return res
}

// sendSQE is the submission entry of a non-blocking send of b to fd,
// answered under user data i. The kernel reads b through its raw address:
// the caller keeps b alive until the answer is reaped.
func sendSQE(fd int32, b []byte, i int) uringSQE {
	return uringSQE{
		opcode:   uringOpSend,
		fd:       fd,
		addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))),
		len:      uint32(len(b)),
		msgFlags: unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL,
		userData: uint64(i),
	}
}

// uringEnter is io_uring_enter. A submission that waits for nothing
// skips the Go scheduler's syscall bookkeeping, as writeFD does: it never
// blocks (every send is MSG_DONTWAIT), and a batch takes long enough
// (tens to hundreds of microseconds) that sysmon would otherwise hand
// the goroutine's P to another thread during every batch, and the
// goroutine would wait for one afterwards, behind whatever runs.
func uringEnter(fd int, toSubmit, wait uint32, flags uintptr) (uintptr, unix.Errno) {
	if wait == 0 {
		m, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(toSubmit), 0, flags, 0, 0)
		return m, e
	}
	m, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(toSubmit), uintptr(wait), flags, 0, 0)
	return m, e
}

// reap collects the completions waiting in the ring into res.
func (r *uring) reap(res []sendResult) uint32 {
	head := *r.cqHead // only this goroutine moves it
	tail := atomic.LoadUint32(r.cqTail)
	count := tail - head
	for ; head != tail; head++ {
		cqe := &r.cqes[head&r.cqMask]
		i := cqe.userData
		if i >= uint64(len(res)) {
			continue // not ours: cannot happen, every entry is one of res
		}
		switch errno := unix.Errno(-cqe.res); {
		case cqe.res >= 0:
			res[i] = sendResult{n: int(cqe.res)}
		case errno == unix.EAGAIN || errno == unix.EINTR:
			res[i] = sendResult{} // no room: all of it is queued
		default:
			res[i] = sendResult{err: errno}
		}
	}
	atomic.StoreUint32(r.cqHead, head)
	return count
}

// writeEach writes each entry with write(2), as transmitLocked does.
func writeEach(entries []batchEntry, res []sendResult) {
	for i := range entries {
		n, err := entries[i].c.writeDirect(nil, entries[i].frame)
		res[i] = sendResult{n: n, err: err}
	}
}

// uringPool holds the rings of this process: made on demand, at most
// maxRings, each used by one Batch at a time and kept for the next one
// (like the runtime's own epoll descriptor, for the life of the process).
var uringPool struct {
	once     sync.Once
	works    bool // probeURing passed
	maxRings int
	mu       sync.Mutex
	free     []*uring
	made     int
}

func uringUsable() bool {
	uringPool.once.Do(probeURing)
	return uringPool.works
}

// getRing returns a ring for a Batch, or nil when io_uring does not work
// here or every ring is in use (the Batch then writes directly).
func getRing() *uring {
	if !uringUsable() {
		return nil
	}
	p := &uringPool
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		r := p.free[n-1]
		p.free = p.free[:n-1]
		return r
	}
	if p.made >= p.maxRings {
		return nil
	}
	r, err := newURing()
	if err != nil {
		return nil
	}
	p.made++
	return r
}

// putRing gives back a ring getRing returned.
func putRing(r *uring) {
	p := &uringPool
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.broken {
		r.close()
		p.made--
		return
	}
	p.free = append(p.free, r)
}

// probeURing decides whether Batch may use io_uring: the kernel must let
// this process make a ring, and must answer a send with MSG_DONTWAIT on a
// full socket at once with EAGAIN, rather than keep it to finish later,
// since a Batch holds its connections' write locks until every send is
// answered. The ring made for the probe is the pool's first.
func probeURing() {
	p := &uringPool
	p.maxRings = max(8, 4*runtime.GOMAXPROCS(0))
	r, err := newURing()
	if err != nil {
		return
	}
	if !probeSend(r) {
		r.close()
		return
	}
	p.works = true
	p.free = append(p.free, r)
	p.made = 1
}

// probeSend sends on a full socket and on one with room, through r.
func probeSend(r *uring) bool {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	chunk := make([]byte, 4096)
	for {
		if _, err := unix.Write(fds[0], chunk); err != nil {
			if err != unix.EAGAIN {
				return false
			}
			break
		}
	}
	tail := *r.sqTail
	for i, fd := range fds { // fds[0] is full, fds[1] has room
		r.sqes[(tail+uint32(i))&r.sqMask] = sendSQE(int32(fd), chunk[:1], i)
	}
	atomic.StoreUint32(r.sqTail, tail+2)
	m, e := uringEnter(r.fd, 2, 0, 0)
	var res [2]sendResult
	got := r.reap(res[:])
	runtime.KeepAlive(chunk)
	return e == 0 && m == 2 && got == 2 && res[0] == sendResult{} && res[1] == sendResult{n: 1}
}
