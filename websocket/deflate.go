package websocket

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"sync"
)

// permessage-deflate (RFC 7692): compressing and decompressing messages.
// Negotiation is in deflate_negotiate.go.
//
// Memory. A compress/flate writer is about 1.2 MB (its hash chains are
// fixed arrays whatever the level) and a reader about 48 KiB; see
// TestDeflateMemoryCost. Holding them per connection would cost gigabytes
// at 10k connections, so by default neither is: both come from a sync.Pool
// for the duration of one message, and negotiation asks both sides for
// no_context_takeover so that every message is compressed on its own.
//
// Context takeover (compressionConfig.contextTakeover) compresses better for
// streams of similar messages, at a price per connection: the compressing
// side keeps its flate writer (~1.2 MB) between messages, and the
// decompressing side keeps the last 32 KiB of output as a dictionary (the
// pooled reader is reset with it for each message).

const (
	// maxWindow is the LZ77 window: the dictionary kept for context takeover.
	maxWindow = 1 << maxWindowBits

	// deflateLevel favours speed: a gateway compresses every outgoing message.
	deflateLevel = flate.BestSpeed

	// syncTail ends every sync-flushed DEFLATE stream; senders strip it and
	// receivers put it back (RFC 7692 §7.2.1, §7.2.2).
	syncTail = "\x00\x00\xff\xff"
	// inflateTail is syncTail plus a final empty stored block, so the
	// reader reports io.EOF at the end of a well-formed message and
	// io.ErrUnexpectedEOF for a truncated one.
	inflateTail = syncTail + "\x01\x00\x00\xff\xff"
)

// inflateMessage decompresses one message (its payload without the sync
// tail) into a pooled buffer, starting from dict with context takeover.
func inflateMessage(src, dict []byte, limit int64, text bool) (*[]byte, error) {
	if len(src) == 0 {
		// Not valid DEFLATE data (an empty message compresses to 0x00), but
		// some peers send it for an empty message; zlib reads it as empty.
		return getMsgBuf(0), nil
	}
	in := getInflater()
	defer putInflater(in)
	in.src = inflateSource{data: src, final: true}
	if err := in.fr.(flate.Resetter).Reset(&in.src, dict); err != nil {
		return nil, errCorruptDeflate()
	}
	return inflateAll(in.fr, limit, text, len(src))
}

// inflateAll reads r to the end into a pooled buffer. Output is bounded by
// limit as it is produced, so a small compressed message cannot expand past
// it (1009), and text is UTF-8 checked chunk by chunk as it comes out of the
// decompressor (1007). Corrupt data is 1007.
func inflateAll(r io.Reader, limit int64, text bool, sizeHint int) (*[]byte, error) {
	out := getMsgBuf(int(min(int64(sizeHint)*3+64, limit+1)))
	var u utf8State
	for {
		if len(*out) == cap(*out) {
			out = growMsgBuf(out, int(min(int64(cap(*out))*2, limit+1)))
		}
		buf := *out
		avail := buf[len(buf):min(int64(cap(buf)), limit+1)]
		n, err := r.Read(avail)
		*out = buf[:len(buf)+n]
		var cerr *CloseError
		switch {
		case text && !u.write(avail[:n]):
			cerr = errInvalidUTF8()
		case int64(len(*out)) > limit:
			cerr = &CloseError{Code: StatusMessageTooBig, Reason: "message larger than " + strconv.FormatInt(limit, 10) + " bytes after decompression"}
		case err == io.EOF && text && !u.complete():
			cerr = errInvalidUTF8()
		case err == io.EOF:
			return out, nil
		case err != nil:
			cerr = errCorruptDeflate()
		}
		if cerr != nil {
			putMsgBuf(out)
			return nil, cerr
		}
	}
}

// errCorruptDeflate is the error for compressed data that does not inflate.
func errCorruptDeflate() *CloseError {
	return &CloseError{Code: StatusInvalidFramePayloadData, Reason: "invalid compressed data"}
}

// inflateStreamThreshold is the compressed size from which a message still
// arriving is inflated as it arrives rather than buffered until its last
// frame. Below it, buffering costs less than the flate reader (~48 KiB) a
// stream holds; above it, streaming bounds memory by the output and finds
// invalid text or a bomb before the message ends (within the 32 KiB the
// decompressor emits at a time).
const inflateStreamThreshold = 32 << 10

// inflateStream inflates a message whose payload arrives over many reads,
// as it arrives. compress/flate only reads from an io.Reader and cannot
// resume after running out of input, so the reader runs in a coroutine
// (iter.Pull): when it needs input it yields back to write, which resumes
// it with the next chunk. No goroutine runs in parallel: control passes
// back and forth on the caller's goroutine.
type inflateStream struct {
	in   *inflater
	next func() (struct{}, bool)
	stop func()
	out  *[]byte // result, once done
	err  error   // result, once done
	done bool    // the coroutine has returned
}

// newInflateStream starts a stream; dict must not change until the first
// write.
func newInflateStream(dict []byte, limit int64, text bool) *inflateStream {
	st := &inflateStream{in: getInflater()}
	st.in.src = inflateSource{}
	st.next, st.stop = iter.Pull(func(yield func(struct{}) bool) {
		defer func() { st.done = true }()
		st.in.src.yield = yield
		if err := st.in.fr.(flate.Resetter).Reset(&st.in.src, dict); err != nil {
			st.err = errCorruptDeflate()
			return
		}
		st.out, st.err = inflateAll(st.in.fr, limit, text, inflateStreamThreshold/2)
	})
	return st
}

// write inflates chunk; it is consumed before write returns. An error is
// final: invalid text, too big, or corrupt.
func (st *inflateStream) write(chunk []byte) error {
	if !st.done && len(chunk) > 0 {
		st.in.src.data = chunk
		st.next()
		st.in.src.data = nil
	}
	return st.err
}

// finish feeds the end of the message and returns the whole output, which
// the caller now owns.
func (st *inflateStream) finish() (*[]byte, error) {
	st.in.src.final = true
	if !st.done {
		st.next()
	}
	out := st.out
	st.out = nil
	return out, st.err
}

// release ends the coroutine if it is still waiting for input and returns
// the pooled reader and any output.
func (st *inflateStream) release() {
	st.stop() // the reader gets errInflateStopped and returns
	putInflater(st.in)
	putMsgBuf(st.out)
	st.in, st.out = nil, nil
}

// growMsgBuf moves b into a pooled buffer of capacity ≥ n.
func growMsgBuf(b *[]byte, n int) *[]byte {
	nb := getMsgBuf(n)
	*nb = append(*nb, *b...)
	putMsgBuf(b)
	return nb
}

// slideWindow appends out to the dictionary w and keeps its last 32 KiB.
func slideWindow(w, out []byte) []byte {
	if len(out) >= maxWindow {
		return append(w[:0], out[len(out)-maxWindow:]...)
	}
	if keep := maxWindow - len(out); len(w) > keep {
		copy(w, w[len(w)-keep:])
		w = w[:keep]
	}
	return append(w, out...)
}

// inflater is a pooled flate reader with its input source, so a message
// costs no allocation once the pool is warm.
type inflater struct {
	fr  io.ReadCloser // implements flate.Resetter
	src inflateSource
}

var inflaterPool sync.Pool

func getInflater() *inflater {
	if in, ok := inflaterPool.Get().(*inflater); ok {
		return in
	}
	in := &inflater{}
	in.fr = flate.NewReader(&in.src)
	return in
}

// putInflater pools in without keeping a reference to the message.
func putInflater(in *inflater) {
	in.src = inflateSource{}
	inflaterPool.Put(in)
}

// inflateSource feeds the message payload and then inflateTail to the flate
// reader. It is an io.ByteReader so flate does not wrap it in a bufio.Reader.
// In a stream (yield set), running out of data before final suspends the
// reader until more arrives.
type inflateSource struct {
	data  []byte
	tail  int  // bytes of inflateTail consumed
	final bool // no data after data: the tail comes next
	yield func(struct{}) bool
}

// errInflateStopped ends a stream's reader when its parser is released.
var errInflateStopped = errors.New("websocket: inflate stream released")

// more waits for data; false means the tail is next.
func (s *inflateSource) more() (bool, error) {
	for len(s.data) == 0 && !s.final {
		if s.yield == nil || !s.yield(struct{}{}) {
			return false, errInflateStopped
		}
	}
	return len(s.data) > 0, nil
}

func (s *inflateSource) Read(b []byte) (int, error) {
	if ok, err := s.more(); err != nil {
		return 0, err
	} else if ok {
		n := copy(b, s.data)
		s.data = s.data[n:]
		return n, nil
	}
	if s.tail == len(inflateTail) {
		return 0, io.EOF
	}
	n := copy(b, inflateTail[s.tail:])
	s.tail += n
	return n, nil
}

func (s *inflateSource) ReadByte() (byte, error) {
	if ok, err := s.more(); err != nil {
		return 0, err
	} else if ok {
		c := s.data[0]
		s.data = s.data[1:]
		return c, nil
	}
	if s.tail == len(inflateTail) {
		return 0, io.EOF
	}
	c := inflateTail[s.tail]
	s.tail++
	return c, nil
}

// deflater compresses message payloads (RFC 7692 §7.2.1). The zero value
// takes a flate writer from a pool for each message and compresses every
// message on its own (no context takeover). With contextTakeover set it
// keeps its writer, and so the LZ77 window, between messages: ~1.2 MB per
// connection until release.
//
// window, when set below 32 KiB, honours a peer that negotiated a smaller
// LZ77 window (server_max_window_bits or client_max_window_bits below 15):
// compress/flate always looks back 32 KiB, so the message is compressed in
// pieces of window bytes, the writer reset before each, and no
// back-reference can reach farther back than the start of its own piece.
// The pieces are sync-flushed DEFLATE blocks of one stream, which any
// inflater reads as one message. This beats Huffman-only coding (no
// back-references at all) at every window size on JSON-like text; see
// TestDeflateWindowRatio. Context takeover is then off for our compressor.
type deflater struct {
	contextTakeover bool
	window          int          // piece size when below maxWindow; 0 means maxWindow
	w               *flateWriter // held between messages only with contextTakeover
}

// newDeflater returns a deflater; see the type's doc for the memory cost of
// contextTakeover.
func newDeflater(contextTakeover bool) *deflater {
	return &deflater{contextTakeover: contextTakeover}
}

// compress appends the compressed form of src to dst, without the sync
// tail: the payload of a message's first frame, sent with RSV1 set.
func (d *deflater) compress(dst, src []byte) ([]byte, error) {
	w := d.w
	if w == nil {
		w = getFlateWriter()
	}
	start := len(dst)
	w.out.b = dst
	var err error
	if d.window > 0 && d.window < maxWindow {
		err = w.compressPieces(src, d.window)
	} else {
		_, err = w.fw.Write(src)
		if err == nil {
			err = w.fw.Flush()
		}
	}
	out := w.out.b
	w.out.b = nil
	if d.contextTakeover && err == nil {
		d.w = w
	} else {
		d.w = nil
		putFlateWriter(w)
	}
	if err != nil {
		return dst, fmt.Errorf("websocket: compress: %w", err)
	}
	if !bytes.HasSuffix(out[start:], []byte(syncTail)) {
		return dst, errors.New("websocket: compress: flush did not end with a sync marker")
	}
	return out[:len(out)-len(syncTail)], nil
}

// compressPieces compresses src in pieces of at most window bytes, each
// with a freshly reset writer and sync-flushed, so that no back-reference
// spans more than window bytes. Reset costs little at deflateLevel
// (BestSpeed keeps its tables and only moves its offset past every old
// match).
func (w *flateWriter) compressPieces(src []byte, window int) error {
	for first := true; first || len(src) > 0; first = false {
		piece := src[:min(window, len(src))]
		src = src[len(piece):]
		w.fw.Reset(&w.out)
		if _, err := w.fw.Write(piece); err != nil {
			return err
		}
		if err := w.fw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// release returns a held writer to the pool; the connection is gone.
func (d *deflater) release() {
	if d.w != nil {
		putFlateWriter(d.w)
		d.w = nil
	}
}

// flateWriter is a pooled flate writer bound to a slice it appends to.
type flateWriter struct {
	fw  *flate.Writer
	out sliceWriter
}

// sliceWriter appends everything written to b.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var flateWriterPool sync.Pool

func getFlateWriter() *flateWriter {
	if w, ok := flateWriterPool.Get().(*flateWriter); ok {
		return w
	}
	w := &flateWriter{}
	// NewWriter only fails for an invalid level; deflateLevel is valid.
	w.fw, _ = flate.NewWriter(&w.out, deflateLevel)
	return w
}

// putFlateWriter resets w, dropping its window, and pools it.
func putFlateWriter(w *flateWriter) {
	w.out.b = nil
	w.fw.Reset(&w.out)
	flateWriterPool.Put(w)
}
