package wsgate

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Accepting again after running out of descriptors waits from
// acceptRetryMin, doubling to acceptRetryMax, while nothing can be
// refused; refuseWriteTimeout bounds the write of a refusal.
const (
	acceptRetryMin     = 5 * time.Millisecond
	acceptRetryMax     = 100 * time.Millisecond
	refuseWriteTimeout = 10 * time.Millisecond
)

// refusedResponse is the 503 of a connection refused before its request
// was read.
const refusedResponse = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 34\r\n\r\n" +
	"wsgate: server busy, retry later\r\n"

// guardedListener hands net/http only the connections the server can
// afford: at most Config.MaxPendingConns that are not (yet) WebSockets, at
// most Config.MaxPendingConnsPerIP of them from one address, and none it
// could not serve for want of file descriptors. A connection
// it turns away gets a 503 before its request is read (at the descriptor
// limit, through a spare descriptor kept for that) and is closed; the
// accept loop neither spins nor logs through net/http's unstructured log,
// and serves again by itself once descriptors are free. Established
// connections are not affected: they need no new descriptors.
type guardedListener struct {
	net.Listener
	s       *Server
	limit   int64
	pending atomic.Int64 // accepted connections not yet hijacked or closed
	byAddr  addrCounts   // the same, per address (perIPKey)
	done    chan struct{}
	once    sync.Once
	log     *logLimiter

	refused atomic.Uint64 // connections turned away since start

	mu      sync.Mutex
	reserve *os.File // the spare descriptor; nil while it is in use
	closed  bool     // no spare is taken any more
}

func newGuardedListener(s *Server, ln net.Listener) *guardedListener {
	l := &guardedListener{
		Listener: ln,
		s:        s,
		limit:    int64(s.cfg.MaxPendingConns),
		byAddr:   addrCounts{limit: s.cfg.MaxPendingConnsPerIP, n: make(map[netip.Addr]int)},
		done:     make(chan struct{}),
		log:      newLogLimiter(s.cfg.Logger, slog.LevelWarn, 1/refuseLogInterval.Seconds(), 1),
	}
	l.reopenReserve()
	return l
}

// Accept returns the next connection the server can afford.
func (l *guardedListener) Accept() (net.Conn, error) {
	delay := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if l.pending.Add(1) > l.limit {
				l.pending.Add(-1)
				l.s.ctr.http.pendingLimit.Add(1)
				l.refuse(c, "too many pending connections", false)
				continue
			}
			if key, ok := l.addrKey(c); ok && !l.byAddr.add(key) {
				l.pending.Add(-1)
				l.s.ctr.http.perIPLimit.Add(1)
				l.refuse(c, "too many pending connections from one address", false)
				continue
			}
			return l.s.watch(c), nil
		}
		if !outOfDescriptors(err) {
			return nil, err // net/http retries temporary errors; others end Serve
		}
		if l.refuseAtLimit(err) {
			delay = 0
			continue
		}
		delay = min(max(2*delay, acceptRetryMin), acceptRetryMax)
		select {
		case <-time.After(delay):
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
}

// outOfDescriptors reports whether err says the process or the system ran
// out of file descriptors.
func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// refuseAtLimit gives up the spare descriptor to accept one waiting
// connection and refuse it. It reports false when there was no spare or
// no connection could be taken with it.
func (l *guardedListener) refuseAtLimit(cause error) bool {
	l.mu.Lock()
	f := l.reserve
	l.reserve = nil
	l.mu.Unlock()
	if f == nil {
		l.logRefused("out of file descriptors", cause)
		return false
	}
	_ = f.Close() // frees the descriptor for the Accept below
	c, err := l.Listener.Accept()
	if err != nil {
		l.reopenReserve()
		l.logRefused("out of file descriptors", cause)
		return false
	}
	l.s.ctr.http.outOfFiles.Add(1)
	l.refuse(c, "out of file descriptors", true)
	return true
}

// reopenReserve takes the spare descriptor again if it is free; failing
// that (still at the limit) the next refusal tries again.
func (l *guardedListener) reopenReserve() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reserve != nil || l.closed {
		return
	}
	if f, err := os.Open(os.DevNull); err == nil {
		l.reserve = f
	}
}

// refuse answers c with 503 and closes it, counting it and logging once
// per interval. It does not wait for the client: whatever the client has
// sent is read first (without blocking), so that closing sends a FIN
// after the 503 rather than a reset that could destroy it; the 503 fits
// a fresh socket's buffer. atLimit: c holds the spare descriptor, taken
// again once c is closed.
func (l *guardedListener) refuse(c net.Conn, reason string, atLimit bool) {
	l.s.ctr.hs.unavailable.Add(1)
	l.refused.Add(1)
	l.logRefused(reason, nil, slog.String("peer", c.RemoteAddr().String()))
	if tc, ok := c.(*tls.Conn); ok {
		// No TLS handshake on the accepting goroutine for a refusal: the
		// client sees the connection closed and retries with backoff.
		_ = tc.NetConn().Close() // refused
		if atLimit {
			l.reopenReserve()
		}
		return
	}
	drainNow(c)
	_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout)) // a full buffer shows in Write
	if _, err := c.Write([]byte(refusedResponse)); err == nil {
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite() // the client may be gone; we close anyway
		}
	}
	_ = c.Close() // refused whatever the client does
	if atLimit {
		l.reopenReserve()
	}
}

// drainNow reads and discards what has arrived on c, without waiting.
func drainNow(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var buf [4096]byte
	_ = raw.Read(func(fd uintptr) bool { // errors: nothing to drain
		for range 16 {
			if n, err := syscall.Read(int(fd), buf[:]); n <= 0 || err != nil {
				break
			}
		}
		return true // never wait for more
	})
}

// logRefused logs a refusal at most once per refuseLogInterval, with the
// total so far; extra names the peer when there is one.
func (l *guardedListener) logRefused(reason string, cause error, extra ...slog.Attr) {
	attrs := append([]slog.Attr{slog.String("reason", reason), slog.Uint64("refused_total", l.refused.Load())}, extra...)
	if cause != nil {
		attrs = append(attrs, slog.String("err", cause.Error()))
	}
	l.log.log(l.s.now(), "wsgate: refusing new connections", attrs...)
}

// release is net/http's ConnState for connections that leave the pending
// set: hijacked (now a WebSocket, bounded by MaxConns) or closed.
func (l *guardedListener) release(c net.Conn) {
	l.pending.Add(-1)
	if key, ok := l.addrKey(c); ok {
		l.byAddr.remove(key)
	}
}

// addrKey is the address c counts against in MaxPendingConnsPerIP, or
// false when it counts against none: a trusted proxy (it carries many
// clients; MaxPendingConns still bounds it) or an address that is not IP.
func (l *guardedListener) addrKey(c net.Conn) (netip.Addr, bool) {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	if l.s.trusted(ip) {
		return netip.Addr{}, false
	}
	return perIPKey(ip), true
}

// perIPKey is ip, or for IPv6 its /64: one subscriber's network, which
// a single host can draw any number of addresses from.
func perIPKey(ip netip.Addr) netip.Addr {
	if ip.Is4() {
		return ip
	}
	p, _ := ip.Prefix(64) // cannot fail for an IPv6 address
	return p.Addr()
}

// addrCounts counts connections per address under a bound. It holds an
// entry only while its count is positive, so at most MaxPendingConns.
type addrCounts struct {
	limit int
	mu    sync.Mutex
	n     map[netip.Addr]int
}

// add counts one more connection from key, or reports false when key
// already has limit.
func (a *addrCounts) add(key netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[key] >= a.limit {
		return false
	}
	a.n[key]++
	return true
}

func (a *addrCounts) remove(key netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[key] <= 1 {
		delete(a.n, key)
		return
	}
	a.n[key]--
}

// Close stops Accept and gives up the spare descriptor.
func (l *guardedListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() {
		close(l.done)
		l.mu.Lock()
		l.closed = true
		if l.reserve != nil {
			_ = l.reserve.Close() // nothing else uses it
			l.reserve = nil
		}
		l.mu.Unlock()
	})
	return err
}
