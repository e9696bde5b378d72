package websocket

import (
	"encoding/binary"
	"strconv"
	"sync"
)

// fallbackReadLimit applies when parserConfig.readLimit is not positive.
const fallbackReadLimit = 16 << 20

// maxReadLimit keeps limit arithmetic (limit+1, compressed slack) from
// overflowing int64.
const maxReadLimit = 1 << 60

// parserConfig configures a parser for one connection.
type parserConfig struct {
	server          bool           // expect masked frames (server) / unmasked (client)
	readLimit       int64          // max message size after decompression; ≤ 0 means 16 MiB
	deflate         *deflateParams // nil: permessage-deflate not negotiated (RSV1 → 1002)
	contextTakeover bool           // keep the inflate window across messages
	stream          bool           // deliver uncompressed data as it arrives (onChunk), without the read limit
}

// frameSink receives what the parser decodes, in wire order.
type frameSink interface {
	onMessage(typ MessageType, data []byte) error // whole message, decompressed, UTF-8 checked; data valid only during the call
	// onChunk receives an uncompressed message piece by piece in stream
	// mode: UTF-8 checked so far, last on its final piece (which may be
	// empty); data valid only during the call.
	onChunk(typ MessageType, data []byte, last bool) error
	onPing(payload []byte) error
	onPong(payload []byte) error
	onClose(code StatusCode, reason string) error // already validated; 1005 when the payload is empty
}

// parser is an incremental RFC 6455 frame decoder: feed accepts input split
// anywhere (one byte at a time, a frame across reads, many frames per call)
// and delivers whole messages.
//
// Memory is the point of its design. A connection spends almost all its life
// idle, so an idle parser holds no buffer: 56 bytes in all, what only some
// connections need some of the time waiting in a pooled parserAux. A message
// that arrives whole inside one feed call is unmasked in place and delivered
// as a sub-slice of the caller's buffer, with no copy and no allocation. Only
// a message split across frames or reads is copied, into a buffer taken from
// a size-class pool and returned as soon as the message is delivered.
type parser struct {
	limit     int64      // max message size (decompressed)
	remaining int64      // payload bytes of the current frame not yet consumed
	msgLen    int64      // payload bytes of the current message so far (compressed size if compressed)
	msg       *[]byte    // pooled: a message split across frames or reads; nil when none
	aux       *parserAux // pooled: see parserAux; nil when none

	maskPos uint8     // key offset of the next payload byte
	key     [4]byte   // masking key of the current frame
	op      opcode    // current frame
	msgOp   opcode    // first opcode of the message in progress; opContinuation when none
	utf8    utf8State // validator for an uncompressed text message in progress

	fin        bool // current frame ends its message
	inPayload  bool // header done; consuming payload
	compressed bool // message in progress has RSV1
	server     bool
	deflate    bool // permessage-deflate negotiated
	takeover   bool // inflate context kept across messages
	chunked    bool // parserConfig.stream
	closed     bool // a close frame was delivered; input is ignored from now on
}

// parserAux holds what a parser needs only now and then, so that an idle
// parser holds none of it: taken from auxPool when first needed, returned
// at the end of the feed call after which it is empty.
type parserAux struct {
	ctl    *[]byte             // pooled: a control frame payload split across reads; nil when none
	window *[]byte             // last 32 KiB of inflated output, kept only with context takeover
	stream *inflateStream      // a large compressed message being inflated as it arrives
	hdr    [maxHeaderSize]byte // a frame header split across reads
	hdrLen uint8               // bytes collected in hdr
}

var auxPool = sync.Pool{New: func() any { return new(parserAux) }}

// extra returns p.aux, taking one from the pool if needed.
func (p *parser) extra() *parserAux {
	if p.aux == nil {
		p.aux = auxPool.Get().(*parserAux)
	}
	return p.aux
}

// tidyAux returns p.aux to the pool once it holds nothing.
func (p *parser) tidyAux() {
	if a := p.aux; a != nil && a.ctl == nil && a.window == nil && a.stream == nil && a.hdrLen == 0 {
		p.aux = nil
		auxPool.Put(a)
	}
}

// ctl, window and stream read p.aux's fields; nil without one.
func (p *parser) ctl() *[]byte {
	if p.aux == nil {
		return nil
	}
	return p.aux.ctl
}

func (p *parser) window() *[]byte {
	if p.aux == nil {
		return nil
	}
	return p.aux.window
}

func (p *parser) stream() *inflateStream {
	if p.aux == nil {
		return nil
	}
	return p.aux.stream
}

// init prepares p for a new connection.
func (p *parser) init(cfg parserConfig) {
	p.release()
	limit := cfg.readLimit
	if limit <= 0 {
		limit = fallbackReadLimit
	}
	*p = parser{
		limit:    min(limit, maxReadLimit),
		server:   cfg.server,
		deflate:  cfg.deflate != nil,
		takeover: cfg.deflate != nil && cfg.contextTakeover,
		chunked:  cfg.stream,
	}
}

// release returns pooled buffers; the connection is gone.
func (p *parser) release() {
	putMsgBuf(p.msg)
	p.msg = nil
	if a := p.aux; a != nil {
		putMsgBuf(a.ctl)
		putMsgBuf(a.window)
		if a.stream != nil {
			a.stream.release()
		}
		*a = parserAux{}
		p.tidyAux()
	}
}

// feed consumes all of b, unmasking it in place. Events go to s in wire
// order. A protocol violation returns a *CloseError carrying the code to
// send (1002, 1007, 1009); a sink error is returned as is. After an error
// feed must not be called again. Once a close frame has been delivered the
// rest of the input is ignored: RFC 6455 §5.5.1 allows nothing after it.
func (p *parser) feed(b []byte, s frameSink) error {
	err := p.feedFrames(b, s)
	if p.aux != nil {
		p.tidyAux()
	}
	return err
}

// feedFrames is feed without the tidying.
func (p *parser) feedFrames(b []byte, s frameSink) error {
	for !p.closed {
		if !p.inPayload {
			if len(b) == 0 {
				return nil
			}
			h, n := p.readHeader(b)
			b = b[n:]
			if h == nil {
				return nil // header incomplete; all of b is in p.aux.hdr
			}
			if err := p.beginFrame(h); err != nil {
				return err
			}
		}
		if len(b) == 0 && p.remaining > 0 {
			return nil
		}
		var n int
		var err error
		if p.op.isControl() {
			n, err = p.controlPayload(b, s)
		} else {
			n, err = p.dataPayload(b, s)
		}
		b = b[n:]
		if err != nil {
			return err
		}
	}
	return nil
}

// bulk reports whether more than n bytes of the current frame's payload
// are still to come: a reader may then read in larger pieces.
func (p *parser) bulk(n int) bool { return p.inPayload && p.remaining > int64(n) }

// frameHeaderLen returns the header length announced by its first two bytes.
func frameHeaderLen(b0, b1 byte) int {
	n := 2
	switch b1 & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&maskBit != 0 {
		n += 4
	}
	return n
}

// readHeader returns the complete frame header and how many bytes of b it
// consumed, or nil once all of b has been stashed in p.aux.hdr. A header
// that lies entirely in b is used in place.
func (p *parser) readHeader(b []byte) ([]byte, int) {
	if (p.aux == nil || p.aux.hdrLen == 0) && len(b) >= 2 {
		if need := frameHeaderLen(b[0], b[1]); len(b) >= need {
			return b[:need], need
		}
	}
	a := p.extra()
	used := 0
	for {
		need := 2
		if a.hdrLen >= 2 {
			need = frameHeaderLen(a.hdr[0], a.hdr[1])
		}
		if int(a.hdrLen) == need {
			a.hdrLen = 0
			return a.hdr[:need], used // valid until feed returns and tidies
		}
		n := copy(a.hdr[a.hdrLen:need], b[used:])
		a.hdrLen += uint8(n)
		used += n
		if int(a.hdrLen) < need {
			return nil, used
		}
	}
}

// beginFrame decodes and validates a complete frame header (RFC 6455 §5.2).
func (p *parser) beginFrame(h []byte) error {
	b0, b1 := h[0], h[1]
	op := opcode(b0 & opMask)
	fin, rsv1, masked := b0&finBit != 0, b0&rsv1Bit != 0, b1&maskBit != 0
	var n uint64
	switch l := b1 & 0x7F; l {
	case 126:
		n = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		n = binary.BigEndian.Uint64(h[2:])
	default:
		n = uint64(l)
	}
	if masked {
		copy(p.key[:], h[len(h)-4:])
	}
	switch {
	case b0&(rsv2Bit|rsv3Bit) != 0:
		return protocolError("RSV2 or RSV3 set")
	case masked != p.server && p.server:
		return protocolError("unmasked client frame")
	case masked != p.server:
		return protocolError("masked server frame")
	case n>>63 != 0:
		return protocolError("frame length has the most significant bit set")
	}
	var err error
	if op.isControl() {
		err = p.checkControl(op, fin, rsv1, n)
	} else {
		err = p.checkData(op, rsv1, int64(n))
	}
	if err != nil {
		return err
	}
	p.op, p.fin, p.remaining, p.maskPos, p.inPayload = op, fin, int64(n), 0, true
	return nil
}

// checkControl enforces RFC 6455 §5.5: known opcode, unfragmented, ≤ 125 bytes.
func (p *parser) checkControl(op opcode, fin, rsv1 bool, n uint64) error {
	switch {
	case op > opPong:
		return protocolError("reserved opcode " + strconv.Itoa(int(op)))
	case !fin:
		return protocolError("fragmented control frame")
	case n > maxControlPayload:
		return protocolError("control frame longer than 125 bytes")
	case rsv1:
		return protocolError("RSV1 set on a control frame")
	}
	return nil
}

// checkData enforces fragmentation order (RFC 6455 §5.4), RSV1 only on the
// first frame of a compressed message (RFC 7692 §6), and the read limit as
// soon as the frame length is known, before anything is buffered.
func (p *parser) checkData(op opcode, rsv1 bool, n int64) error {
	switch op {
	case opContinuation:
		if p.msgOp == opContinuation {
			return protocolError("continuation frame without a message to continue")
		}
		if rsv1 {
			return protocolError("RSV1 set on a continuation frame")
		}
	case opText, opBinary:
		if p.msgOp != opContinuation {
			return protocolError("new message inside a fragmented message")
		}
		if rsv1 && !p.deflate {
			return protocolError("RSV1 set without a negotiated extension")
		}
		p.msgOp, p.compressed, p.msgLen, p.utf8 = op, rsv1, 0, utf8Accept
	default:
		return protocolError("reserved opcode " + strconv.Itoa(int(op)))
	}
	if p.streaming() {
		return nil // nothing is buffered: the consumer bounds the message
	}
	limit := p.limit
	if p.compressed {
		limit = compressedLimit(limit)
	}
	if n > limit-p.msgLen {
		return &CloseError{Code: StatusMessageTooBig, Reason: "message larger than " + strconv.FormatInt(p.limit, 10) + " bytes"}
	}
	return nil
}

// compressedLimit bounds the compressed size of a message whose inflated
// size may reach limit: a poor encoder (fixed Huffman codes on random data)
// expands input by up to 1/8. The inflated size is checked separately.
func compressedLimit(limit int64) int64 { return limit + limit/8 + 1024 }

// controlPayload consumes control frame payload from b. A payload wholly in
// b is delivered in place; one split across reads is collected in
// p.aux.ctl.
func (p *parser) controlPayload(b []byte, s frameSink) (int, error) {
	if p.ctl() == nil && int64(len(b)) >= p.remaining {
		n := int(p.remaining)
		payload := b[:n]
		if p.server {
			maskBytes(p.key, 0, payload)
		}
		p.remaining, p.inPayload = 0, false
		return n, p.control(payload, s)
	}
	n := int(min(int64(len(b)), p.remaining))
	chunk := b[:n]
	p.unmask(chunk)
	a := p.extra()
	if a.ctl == nil {
		a.ctl = getMsgBuf(maxControlPayload)
	}
	*a.ctl = append(*a.ctl, chunk...)
	if p.remaining -= int64(n); p.remaining > 0 {
		return n, nil
	}
	p.inPayload = false
	err := p.control(*a.ctl, s)
	putMsgBuf(a.ctl)
	a.ctl = nil
	return n, err
}

// control delivers a complete control frame.
func (p *parser) control(payload []byte, s frameSink) error {
	switch p.op {
	case opPing:
		return s.onPing(payload)
	case opPong:
		return s.onPong(payload)
	}
	code, reason, err := parseClosePayload(payload)
	if err != nil {
		return err
	}
	p.closed = true
	return s.onClose(code, reason)
}

// unmask unmasks a piece of the current frame's payload in place.
func (p *parser) unmask(chunk []byte) {
	if p.server {
		p.maskPos = uint8(maskBytes(p.key, int(p.maskPos), chunk))
	}
}

// streaming reports whether the message in progress is delivered piece by
// piece: stream mode, uncompressed (a compressed message is inflated whole,
// under the read limit).
func (p *parser) streaming() bool { return p.chunked && !p.compressed }

// streamPayload delivers the payload in b as it comes (stream mode).
func (p *parser) streamPayload(b []byte, s frameSink) (int, error) {
	n := int(min(int64(len(b)), p.remaining))
	chunk := b[:n]
	p.unmask(chunk)
	p.remaining -= int64(n)
	p.msgLen += int64(n)
	typ := MessageType(p.msgOp)
	if typ == TextMessage && !p.utf8.write(chunk) {
		return n, errInvalidUTF8()
	}
	if p.remaining == 0 {
		p.inPayload = false
	}
	if p.remaining > 0 || !p.fin {
		if n == 0 {
			return n, nil
		}
		return n, s.onChunk(typ, chunk, false)
	}
	if typ == TextMessage && !p.utf8.complete() {
		return n, errInvalidUTF8()
	}
	p.msgOp, p.msgLen, p.utf8 = opContinuation, 0, utf8Accept
	return n, s.onChunk(typ, chunk, true)
}

// dataPayload consumes data frame payload from b. A single-frame message
// wholly in b is unmasked in place and delivered as a sub-slice of b (the
// hot path: no copy, no allocation). Anything else goes through collect.
func (p *parser) dataPayload(b []byte, s frameSink) (int, error) {
	if p.streaming() {
		return p.streamPayload(b, s)
	}
	if p.fin && p.msgLen == 0 && p.msgOp == p.op && int64(len(b)) >= p.remaining {
		n := int(p.remaining)
		payload := b[:n]
		if p.server {
			maskBytes(p.key, 0, payload)
		}
		p.remaining, p.inPayload = 0, false
		if !p.compressed && p.msgOp == opText && !validUTF8(payload) {
			return n, errInvalidUTF8()
		}
		return n, p.finishMessage(payload, s)
	}
	n := int(min(int64(len(b)), p.remaining))
	chunk := b[:n]
	p.unmask(chunk)
	p.remaining -= int64(n)
	p.msgLen += int64(n)
	if err := p.collect(chunk); err != nil {
		return n, err
	}
	if p.remaining > 0 {
		return n, nil
	}
	p.inPayload = false
	if !p.fin {
		return n, nil
	}
	if !p.compressed && p.msgOp == opText && !p.utf8.complete() {
		return n, errInvalidUTF8()
	}
	var data []byte
	if p.msg != nil {
		data = *p.msg
	}
	return n, p.finishMessage(data, s)
}

// collect keeps a payload piece of a message that spans frames or reads.
// Uncompressed text is UTF-8 checked here, as each piece arrives, so
// invalid text fails before the message ends (RFC 6455 §8.1). Compressed
// data is buffered, and once there is enough of it, inflated (and checked)
// as it arrives.
func (p *parser) collect(chunk []byte) error {
	switch st := p.stream(); {
	case st != nil:
		return st.write(chunk)
	case !p.compressed && p.msgOp == opText && !p.utf8.write(chunk):
		return errInvalidUTF8()
	}
	if len(chunk) > 0 {
		p.appendMsg(chunk)
	}
	if !p.compressed || p.msg == nil || len(*p.msg) < inflateStreamThreshold {
		return nil
	}
	st := newInflateStream(p.dict(), p.limit, p.msgOp == opText)
	p.extra().stream = st
	err := st.write(*p.msg)
	putMsgBuf(p.msg)
	p.msg = nil
	return err
}

// dict returns the inflate dictionary: the window with context takeover.
func (p *parser) dict() []byte {
	if w := p.window(); p.takeover && w != nil {
		return *w
	}
	return nil
}

// errInvalidUTF8 is the error for a text message that is not UTF-8.
func errInvalidUTF8() *CloseError {
	return &CloseError{Code: StatusInvalidFramePayloadData, Reason: "invalid UTF-8 in text message"}
}

// appendMsg adds a payload piece to p.msg, growing it through the size
// classes. While the rest of the frame is small (≤ 64 KiB) room for all of
// it is taken at once; a larger announced length is not trusted before the
// bytes arrive, so a peer cannot make us reserve memory it never sends.
func (p *parser) appendMsg(chunk []byte) {
	cur := 0
	if p.msg != nil {
		cur = len(*p.msg)
		if cap(*p.msg)-cur >= len(chunk) {
			*p.msg = append(*p.msg, chunk...)
			return
		}
	}
	need := cur + len(chunk)
	if rest := int64(need) + p.remaining; rest <= 64<<10 {
		need = int(rest)
	}
	nb := getMsgBuf(need)
	if p.msg != nil {
		*nb = append(*nb, *p.msg...)
		putMsgBuf(p.msg)
	}
	*nb = append(*nb, chunk...)
	p.msg = nb
}

// msgTaker is a frameSink that can take over the pooled buffer holding a
// whole message (one that spanned frames or reads), instead of copying it.
type msgTaker interface {
	takeMessage(typ MessageType, buf *[]byte) error // buf is the taker's, to putMsgBuf when done
}

// finishMessage inflates the message if compressed, delivers it and makes
// the parser idle again, returning every buffer.
func (p *parser) finishMessage(data []byte, s frameSink) error {
	typ := MessageType(p.msgOp)
	if t, ok := s.(msgTaker); ok && !p.compressed && p.msg != nil {
		buf := p.msg
		p.msg, p.msgOp, p.msgLen, p.utf8 = nil, opContinuation, 0, utf8Accept
		return t.takeMessage(typ, buf)
	}
	var out *[]byte
	if p.compressed {
		var err error
		if out, err = p.inflate(data); err != nil {
			return err
		}
		data = *out
	}
	err := s.onMessage(typ, data)
	putMsgBuf(out)
	putMsgBuf(p.msg)
	p.msg, p.msgOp, p.msgLen, p.compressed, p.utf8 = nil, opContinuation, 0, false, utf8Accept
	return err
}

// inflate decompresses a whole message, or finishes its stream, and with
// context takeover keeps the last 32 KiB of output as the next message's
// dictionary.
func (p *parser) inflate(data []byte) (*[]byte, error) {
	var out *[]byte
	var err error
	if st := p.stream(); st != nil {
		out, err = st.finish()
		st.release()
		p.aux.stream = nil
	} else {
		out, err = inflateMessage(data, p.dict(), p.limit, p.msgOp == opText)
	}
	if err != nil || !p.takeover {
		return out, err
	}
	a := p.extra()
	if a.window == nil {
		a.window = getMsgBuf(maxWindow)
	}
	*a.window = slideWindow(*a.window, *out)
	return out, nil
}
