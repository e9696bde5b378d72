package websocket

import "testing"

func TestMsgBufSizeClasses(t *testing.T) {
	tests := []struct {
		n, wantCap int
	}{
		{0, 128}, {1, 128}, {125, 128}, {128, 128}, {129, 256},
		{4 << 10, 4 << 10}, {4<<10 + 1, 8 << 10},
		{16 << 20, 16 << 20},
		{16<<20 + 1, 16<<20 + 1}, // beyond the largest class: exact, not pooled
	}
	for _, tt := range tests {
		b := getMsgBuf(tt.n)
		if len(*b) != 0 || cap(*b) != tt.wantCap {
			t.Errorf("getMsgBuf(%d): got len %d cap %d, want len 0 cap %d", tt.n, len(*b), cap(*b), tt.wantCap)
		}
		putMsgBuf(b)
	}
}

// TestPutMsgBufIgnoresForeignBuffers: nil and buffers whose capacity is
// not a size class are dropped, never handed out as a class buffer.
func TestPutMsgBufIgnoresForeignBuffers(t *testing.T) {
	putMsgBuf(nil)
	odd := make([]byte, 10, 200)
	putMsgBuf(&odd)
	for range 100 {
		b := getMsgBuf(200)
		if cap(*b) != 256 {
			t.Fatalf("getMsgBuf(200): got cap %d, want 256", cap(*b))
		}
	}
}

// TestOneBufPoolForParserInboxAndWrites: the inbox's message copy, once
// OnMessage is done with it, is the buffer the next stage of the same size
// class gets — the parser assembling a fragmented message, or a masked
// frame being written — because they share one pool.
func TestOneBufPoolForParserInboxAndWrites(t *testing.T) {
	if raceDetectorOn() {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	// AllocsPerRun pins the goroutine to one P (GOMAXPROCS 1), so a Put is
	// seen by the next Get of the same class.
	testing.AllocsPerRun(1, func() {
		it := getItem()
		it.buf = getMsgBuf(1000)
		freed := it.buf
		putItem(it) // what runInbox does after OnMessage
		if got := getMsgBuf(600); got != freed {
			t.Errorf("getMsgBuf after putItem: got a new buffer, want the one the inbox released")
		}
	})
	c, got := dispatchFixture(t)
	frag := appendFrame(nil, opBinary, false, false, make([]byte, 300), true, [4]byte{1, 2, 3, 4})
	frag = appendFrame(frag, opContinuation, true, false, make([]byte, 300), true, [4]byte{5, 6, 7, 8})
	buf := make([]byte, len(frag))
	allocs := testing.AllocsPerRun(200, func() {
		copy(buf, frag) // feed unmasks in place
		c.consume(buf)  // parser buffer + inbox copy, both pooled
		if n := <-got; n != 600 {
			t.Fatalf("got a %d-byte message, want 600", n)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per fragmented message, want 0 (pooled parser and inbox buffers)", allocs)
	}
}
