package websocket

import (
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"
)

// TestConnSize keeps Conn in the 192-byte allocation class: a gateway holds
// one per idle connection, and the next class up (208) would cost 16 bytes
// more for each of them and, 208 not being a multiple of 64, put the
// first 64 bytes of most Conns (what a write touches) across two cache
// lines. Objects of the 192-byte class start on 64-byte boundaries.
func TestConnSize(t *testing.T) {
	size := unsafe.Sizeof(Conn{})
	t.Logf("unsafe.Sizeof(Conn{}) = %d bytes (parser %d)", size, unsafe.Sizeof(parser{}))
	if size > 192 {
		t.Errorf("got unsafe.Sizeof(Conn{}) = %d, want ≤ 192", size)
	}
	if off := unsafe.Offsetof(Conn{}.lastWrite); off >= 64 {
		t.Errorf("lastWrite at offset %d, want it in the first 64 bytes with the rest of the write path", off)
	}
}

// dispatchFixture is a server connection without a socket whose handler
// reports each message on got.
func dispatchFixture(t *testing.T) (*Conn, <-chan int) {
	t.Helper()
	got := make(chan int, 1)
	e := newEngine(Config{Workers: 1, InboxLimit: 1 << 20}, Handler{
		OnMessage: func(_ *Conn, _ MessageType, data []byte) { got <- len(data) },
	}, false, false)
	t.Cleanup(e.exec.stop)
	c := &Conn{eng: e, fd: -1, slot: -1}
	c.p.init(parserConfig{server: true, readLimit: 1 << 20})
	return c, got
}

// maskedFrame returns a masked client frame carrying payload.
func maskedFrame(op opcode, payload []byte) []byte {
	return appendFrame(nil, op, true, false, payload, true, [4]byte{1, 2, 3, 4})
}

// TestDispatchZeroAlloc: the reactor's read → parse → inbox → executor →
// OnMessage path allocates nothing for a small message once pools are warm.
func TestDispatchZeroAlloc(t *testing.T) {
	if raceDetectorOn() {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	c, got := dispatchFixture(t)
	frame := maskedFrame(opBinary, []byte("a small message of about sixty bytes, a typical push"))
	buf := make([]byte, len(frame))
	allocs := testing.AllocsPerRun(1000, func() {
		copy(buf, frame) // feed unmasks in place
		c.consume(buf)
		if n := <-got; n != 52 {
			t.Fatalf("got a %d-byte message, want 52", n)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per message, want 0", allocs)
	}
}

// TestDispatchOrderAndRelease: messages fed in one buffer reach OnMessage
// whole and in order, and the inbox is empty afterwards.
func TestDispatchOrderAndRelease(t *testing.T) {
	c, got := dispatchFixture(t)
	var in []byte
	for i := range 50 {
		in = append(in, maskedFrame(opBinary, make([]byte, i))...)
	}
	c.consume(in)
	for i := range 50 {
		select {
		case n := <-got:
			if n != i {
				t.Fatalf("message %d: got %d bytes, want %d", i, n, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not delivered", i)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.imu.Lock()
		idle := c.inTail == nil && c.inN == 0 && !c.scheduled
		c.imu.Unlock()
		if idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("inbox not idle after every message was delivered")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPeerAddr(t *testing.T) {
	for _, s := range []string{"127.0.0.1:80", "10.1.2.3:65535", "[::1]:443", "[2001:db8::1]:1", "[::ffff:192.0.2.1]:8080"} {
		ap := netip.MustParseAddrPort(s)
		got := makePeerAddr(ap).tcpAddr().String()
		want := net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())).String()
		if got != want {
			t.Errorf("%s: got %s, want %s", s, got, want)
		}
	}
}

func TestPutHeaderMatchesAppendFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20} {
		for _, rsv1 := range []bool{false, true} {
			var h [maxHeaderSize]byte
			got := putHeader(&h, opText, rsv1, n)
			payload := make([]byte, n)
			want := appendFrame(nil, opText, true, rsv1, payload, false, [4]byte{})
			want = want[:len(want)-n]
			if string(got) != string(want) {
				t.Errorf("n=%d rsv1=%v: got header %x, want %x", n, rsv1, got, want)
			}
		}
	}
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
