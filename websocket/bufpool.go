package websocket

import (
	"math/bits"
	"sync"
)

// The package's one buffer pool. Every transient buffer comes from it and
// goes back to it: the parser's partial frames and messages, inflated
// output, the inbox's message copies, compressed and masked outgoing
// frames and queued output. Sharing it means a buffer freed by one stage
// (a message copy after OnMessage) serves the next (the reply's queued
// frame) instead of each stage keeping its own idle buffers.
//
// One sync.Pool per power-of-two size class from 128 B (a control frame)
// to 16 MiB (the default read limit). Larger buffers are allocated and
// dropped. Pools hold *[]byte so Put does not allocate.
const (
	minBufShift = 7
	maxBufShift = 24
)

// maxPooledBuf is the largest pooled buffer.
const maxPooledBuf = 1 << maxBufShift

var msgBufPools [maxBufShift - minBufShift + 1]sync.Pool

// msgBufClass returns the size class index for a buffer of at least n bytes,
// or -1 when n is larger than the largest class.
func msgBufClass(n int) int {
	shift := bits.Len(uint(n - 1))
	if n <= 1<<minBufShift {
		shift = minBufShift
	}
	if shift > maxBufShift {
		return -1
	}
	return shift - minBufShift
}

// getMsgBuf returns an empty buffer with capacity ≥ n.
func getMsgBuf(n int) *[]byte {
	c := msgBufClass(n)
	if c < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	if b, ok := msgBufPools[c].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1<<(c+minBufShift))
	return &b
}

// putMsgBuf returns b to its pool; nil and odd-sized buffers are ignored.
func putMsgBuf(b *[]byte) {
	if b == nil {
		return
	}
	n := cap(*b)
	c := msgBufClass(n)
	if c < 0 || n != 1<<(c+minBufShift) {
		return
	}
	*b = (*b)[:0]
	msgBufPools[c].Put(b)
}
