package websocket

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"sync"
)

// permessage-deflate (RFC 7692).
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
	extPermessageDeflate     = "permessage-deflate"
	paramServerNoContext     = "server_no_context_takeover"
	paramClientNoContext     = "client_no_context_takeover"
	paramServerMaxWindowBits = "server_max_window_bits"
	paramClientMaxWindowBits = "client_max_window_bits"

	// maxWindowBits is the only LZ77 window compress/flate compresses with.
	maxWindowBits = 15
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

// deflateParams is the negotiated permessage-deflate configuration (RFC 7692 §7).
// Window bits are 15 unless the peer announced a smaller window for its own
// compressor (we can inflate any window).
type deflateParams struct {
	serverNoContextTakeover, clientNoContextTakeover bool
	serverMaxWindowBits, clientMaxWindowBits         int
}

// contextTakeover reports whether this endpoint's compressor (compress) and
// decompressor (decompress) keep their LZ77 window between messages under
// the negotiated parameters.
func (dp *deflateParams) contextTakeover(server bool) (compress, decompress bool) {
	if server {
		return !dp.serverNoContextTakeover, !dp.clientNoContextTakeover
	}
	return !dp.clientNoContextTakeover, !dp.serverNoContextTakeover
}

// compressionConfig is what this endpoint is willing to negotiate.
type compressionConfig struct {
	enabled, contextTakeover bool
}

// negotiateDeflate picks the first acceptable permessage-deflate offer from
// the request's Sec-WebSocket-Extensions values (RFC 7692 §5, §7.1) and
// returns its parameters and the response header value, or nil and "" when
// no offer is acceptable (or compression is off). An offer is declined when
// it has unknown or duplicate parameters, invalid values, or asks for
// server_max_window_bits below 15, which compress/flate cannot honour. An
// error means the header is malformed (RFC 6455 §9.1: fail the handshake).
func negotiateDeflate(values []string, cfg compressionConfig) (*deflateParams, string, error) {
	exts, err := parseExtensions(values)
	if err != nil || !cfg.enabled {
		return nil, "", err
	}
	for _, e := range exts {
		if !strings.EqualFold(e.name, extPermessageDeflate) {
			continue
		}
		if dp, resp, ok := acceptOffer(e.params, cfg); ok {
			return dp, resp, nil
		}
	}
	return nil, "", nil
}

// offerParams is a parsed permessage-deflate parameter list.
type offerParams struct {
	serverNoContext, clientNoContext bool
	serverBits, clientBits           int  // 0 when absent
	clientBitsGiven                  bool // client_max_window_bits present, with or without value
}

// parseDeflateParams parses permessage-deflate parameters; ok is false for
// unknown or duplicate parameters and invalid values. clientBits without a
// value is allowed only where valueless is true (offers, RFC 7692 §7.1.2.2).
func parseDeflateParams(params []extParam, valueless bool) (o offerParams, ok bool) {
	seen := map[string]bool{}
	for _, pr := range params {
		name := strings.ToLower(pr.name)
		if seen[name] {
			return o, false
		}
		seen[name] = true
		switch name {
		case paramServerNoContext, paramClientNoContext:
			if pr.hasValue {
				return o, false
			}
			if name == paramServerNoContext {
				o.serverNoContext = true
			} else {
				o.clientNoContext = true
			}
		case paramServerMaxWindowBits:
			if o.serverBits, ok = windowBits(pr); !ok {
				return o, false
			}
		case paramClientMaxWindowBits:
			o.clientBitsGiven = true
			if !pr.hasValue && valueless {
				continue
			}
			if o.clientBits, ok = windowBits(pr); !ok {
				return o, false
			}
		default:
			return o, false
		}
	}
	return o, true
}

// windowBits parses a window size: a decimal 8-15 without leading zeros
// (RFC 7692 §7.1.2.1), possibly sent as a quoted string.
func windowBits(pr extParam) (int, bool) {
	v := pr.value
	if !pr.hasValue || len(v) == 0 || len(v) > 2 || v[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 || n > 15 {
		return 0, false
	}
	return n, true
}

// acceptOffer decides on one offer and builds the response. Without context
// takeover the response always carries both no_context_takeover parameters:
// RFC 7692 §7.1.1.1 and §7.1.1.2 let a server add them even when not offered
// (gorilla/websocket servers have always answered so, and browsers, Node ws
// and Python websockets honour it).
// client_max_window_bits is never answered: we inflate any window.
func acceptOffer(params []extParam, cfg compressionConfig) (*deflateParams, string, bool) {
	o, ok := parseDeflateParams(params, true)
	if !ok || (o.serverBits != 0 && o.serverBits < maxWindowBits) {
		return nil, "", false
	}
	dp := &deflateParams{
		serverNoContextTakeover: o.serverNoContext || !cfg.contextTakeover,
		clientNoContextTakeover: o.clientNoContext || !cfg.contextTakeover,
		serverMaxWindowBits:     maxWindowBits,
		clientMaxWindowBits:     maxWindowBits,
	}
	resp := extPermessageDeflate
	if dp.serverNoContextTakeover {
		resp += "; " + paramServerNoContext
	}
	if dp.clientNoContextTakeover {
		resp += "; " + paramClientNoContext
	}
	if o.serverBits != 0 {
		resp += "; " + paramServerMaxWindowBits + "=" + strconv.Itoa(maxWindowBits)
	}
	return dp, resp, true
}

// deflateOffer is the client's Sec-WebSocket-Extensions value; "" when
// compression is off. It never offers client_max_window_bits, so a server
// cannot ask our compressor for a window compress/flate does not have.
func deflateOffer(cfg compressionConfig) string {
	switch {
	case !cfg.enabled:
		return ""
	case cfg.contextTakeover:
		return extPermessageDeflate
	}
	return extPermessageDeflate + "; " + paramServerNoContext + "; " + paramClientNoContext
}

// acceptDeflateResponse validates the server's Sec-WebSocket-Extensions
// values against the offer made by deflateOffer(cfg) (RFC 7692 §7.1): no
// extension means no compression; anything the client did not offer,
// client_max_window_bits (never offered), or a missing
// server_no_context_takeover that was asked for is an error, and the
// client must fail the connection.
func acceptDeflateResponse(values []string, cfg compressionConfig) (*deflateParams, error) {
	exts, err := parseExtensions(values)
	if err != nil {
		return nil, err
	}
	switch {
	case len(exts) == 0:
		return nil, nil
	case !cfg.enabled || !strings.EqualFold(exts[0].name, extPermessageDeflate):
		return nil, errors.New("websocket: server accepted extension " + strconv.Quote(exts[0].name) + " that was not offered")
	case len(exts) > 1:
		return nil, errors.New("websocket: server accepted more than one extension")
	}
	o, ok := parseDeflateParams(exts[0].params, false)
	switch {
	case !ok:
		return nil, errors.New("websocket: invalid permessage-deflate response parameters")
	case o.clientBitsGiven:
		return nil, errors.New("websocket: server sent client_max_window_bits, which was not offered")
	case !cfg.contextTakeover && !o.serverNoContext:
		return nil, errors.New("websocket: server did not accept server_no_context_takeover")
	}
	dp := &deflateParams{
		serverNoContextTakeover: o.serverNoContext,
		clientNoContextTakeover: o.clientNoContext || !cfg.contextTakeover,
		serverMaxWindowBits:     maxWindowBits,
		clientMaxWindowBits:     maxWindowBits,
	}
	if o.serverBits != 0 {
		dp.serverMaxWindowBits = o.serverBits
	}
	return dp, nil
}

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
type deflater struct {
	contextTakeover bool
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
	_, err := w.fw.Write(src)
	if err == nil {
		err = w.fw.Flush()
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

// Sec-WebSocket-Extensions parsing (RFC 6455 §9.1, with RFC 2616 implied
// linear white space):
//
//	extension-list = 1#extension
//	extension      = token *( ";" extension-param )
//	extension-param = token [ "=" (token | quoted-string) ]

// extension is one element of an extension list.
type extension struct {
	name   string
	params []extParam
}

// extParam is one extension parameter; value is unquoted.
type extParam struct {
	name, value string
	hasValue    bool
}

// parseExtensions parses every header value into one list. Empty list
// elements (", ,") are allowed, as RFC 2616 #rule does.
func parseExtensions(values []string) ([]extension, error) {
	var exts []extension
	for _, v := range values {
		s := extScanner{s: v}
		for {
			s.skipSpace()
			if s.eof() {
				break
			}
			if s.peek() == ',' {
				s.i++
				continue
			}
			e, err := s.extension()
			if err != nil {
				return nil, err
			}
			exts = append(exts, e)
		}
	}
	return exts, nil
}

// errBadExtensions reports a malformed Sec-WebSocket-Extensions header.
var errBadExtensions = errors.New("websocket: malformed Sec-WebSocket-Extensions header")

// extScanner walks one header value.
type extScanner struct {
	s string
	i int
}

func (s *extScanner) eof() bool  { return s.i >= len(s.s) }
func (s *extScanner) peek() byte { return s.s[s.i] }

func (s *extScanner) skipSpace() {
	for !s.eof() && (s.peek() == ' ' || s.peek() == '\t') {
		s.i++
	}
}

// extension reads "name *(; param)" up to the next comma or the end.
func (s *extScanner) extension() (extension, error) {
	e := extension{name: s.token()}
	if e.name == "" {
		return e, errBadExtensions
	}
	for {
		s.skipSpace()
		if s.eof() {
			return e, nil
		}
		switch s.peek() {
		case ',':
			s.i++
			return e, nil
		case ';':
			s.i++
		default:
			return e, errBadExtensions
		}
		p, err := s.param()
		if err != nil {
			return e, err
		}
		e.params = append(e.params, p)
	}
}

// param reads "name [= value]".
func (s *extScanner) param() (extParam, error) {
	s.skipSpace()
	p := extParam{name: s.token()}
	if p.name == "" {
		return p, errBadExtensions
	}
	s.skipSpace()
	if s.eof() || s.peek() != '=' {
		return p, nil
	}
	s.i++
	s.skipSpace()
	p.hasValue = true
	if !s.eof() && s.peek() == '"' {
		v, ok := s.quoted()
		if !ok {
			return p, errBadExtensions
		}
		p.value = v
		return p, nil
	}
	if p.value = s.token(); p.value == "" {
		return p, errBadExtensions
	}
	return p, nil
}

// token reads an RFC 2616 token; "" if none.
func (s *extScanner) token() string {
	start := s.i
	for !s.eof() && isTokenChar(s.peek()) {
		s.i++
	}
	return s.s[start:s.i]
}

// quoted reads a quoted-string and returns it unescaped.
func (s *extScanner) quoted() (string, bool) {
	s.i++ // opening quote
	var b strings.Builder
	for !s.eof() {
		c := s.peek()
		s.i++
		switch {
		case c == '"':
			return b.String(), true
		case c == '\\':
			if s.eof() {
				return "", false
			}
			b.WriteByte(s.peek())
			s.i++
		case c < 0x20 && c != '\t', c == 0x7F:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

// isTokenChar reports whether c may appear in an RFC 2616 token.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
