package websocket

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTakeFDNonBlocking: the reactor's duplicate of a socket is
// non-blocking without a call of its own (it shares the open file, and its
// flags, with the descriptor Go's poller made non-blocking): a read with
// nothing to read returns EAGAIN instead of blocking the poller.
func TestTakeFDNonBlocking(t *testing.T) {
	local, peer := tcpPair(t)
	defer peer.Close()
	fd, ok, err := takeFD(local)
	if err != nil || !ok {
		t.Fatalf("takeFD: %v, %v", ok, err)
	}
	defer unix.Close(fd)
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatalf("flags %#x: want O_NONBLOCK", flags)
	}
	var buf [1]byte
	if _, err := unix.Read(fd, buf[:]); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("read with nothing to read: got %v, want EAGAIN", err)
	}
}
