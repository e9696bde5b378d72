package faulttest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// link is the network between some clients and one node: a TCP forwarder on
// loopback that can be cut (open connections reset, new ones closed at
// once) and mended. It takes clients offline without closing them, so that
// they come back with the position their SDK holds.
type link struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}

	wg sync.WaitGroup // the accept loop and every copy
}

func newLink(t *testing.T, target string) *link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &link{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	l.wg.Add(1)
	go l.accept()
	t.Cleanup(l.close)
	return l
}

func (l *link) ws() string { return "ws://" + l.ln.Addr().String() + "/ws" }

func (l *link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		l.wg.Add(1)
		go l.serve(c)
	}
}

// serve forwards one connection both ways until either side ends.
func (l *link) serve(c net.Conn) {
	defer l.wg.Done()
	if !l.track(c) {
		_ = c.Close() // the link is cut
		return
	}
	defer l.untrack(c)
	up, err := net.Dial("tcp", l.target)
	if err != nil {
		_ = c.Close() // the node is down: the client sees its dial fail
		return
	}
	if !l.track(up) {
		_ = up.Close() // cut while dialing
		_ = c.Close()
		return
	}
	defer l.untrack(up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // ends when either side closes
		_ = dst.Close()          // wakes the other copy
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

func (l *link) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut || l.conns == nil {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *link) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// setCut cuts (true) or mends (false) the link. Cutting resets every open
// connection: an abrupt loss, no close frame.
func (l *link) setCut(cut bool) {
	l.mu.Lock()
	l.cut = cut
	var open []net.Conn
	if cut {
		for c := range l.conns {
			open = append(open, c)
		}
	}
	l.mu.Unlock()
	for _, c := range open {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, like a dropped network
		}
		_ = c.Close() // the copies end
	}
}

func (l *link) close() {
	_ = l.ln.Close() // stops accept
	l.setCut(true)
	l.mu.Lock()
	l.conns = nil
	l.mu.Unlock()
	l.wg.Wait()
}
