package websocket

import (
	"errors"
	"strconv"
	"strings"
)

// permessage-deflate (RFC 7692) negotiation: the server picks an offer
// from Sec-WebSocket-Extensions and answers it, the client makes an offer
// and checks the answer. Both sides default to no_context_takeover, which
// keeps compression state per message instead of per connection (see
// deflate.go for what context takeover costs).

const (
	extPermessageDeflate     = "permessage-deflate"
	paramServerNoContext     = "server_no_context_takeover"
	paramClientNoContext     = "client_no_context_takeover"
	paramServerMaxWindowBits = "server_max_window_bits"
	paramClientMaxWindowBits = "client_max_window_bits"

	// maxWindowBits is compress/flate's LZ77 window, the largest there is;
	// a smaller one is honoured by compressing in independent pieces (see
	// deflater.window).
	maxWindowBits = 15
	// minWindowBits is the smallest window RFC 7692 allows.
	minWindowBits = 8
)

// deflateParams is the negotiated permessage-deflate configuration (RFC 7692 §7).
// Window bits are 15 unless the peer announced a smaller window for its own
// compressor (we can inflate any window).
type deflateParams struct {
	serverNoContextTakeover, clientNoContextTakeover bool
	serverMaxWindowBits, clientMaxWindowBits         int
}

// compressWindow is the LZ77 window this endpoint's compressor may use:
// the peer's inflater may hold no more.
func (dp *deflateParams) compressWindow(server bool) int {
	if server {
		return 1 << dp.serverMaxWindowBits
	}
	return 1 << dp.clientMaxWindowBits
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
// it has unknown or duplicate parameters or invalid values. An error means
// the header is malformed (RFC 6455 §9.1: fail the handshake).
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
	if err != nil || n < minWindowBits || n > maxWindowBits {
		return 0, false
	}
	return n, true
}

// acceptOffer decides on one offer and builds the response. Without context
// takeover the response always carries both no_context_takeover parameters:
// RFC 7692 §7.1.1.1 and §7.1.1.2 let a server add them even when not offered
// (gorilla/websocket servers have always answered so, and browsers, Node ws
// and Python websockets honour it).
// server_max_window_bits (8-15) is granted as asked: our compressor then
// keeps its back-references within that window. client_max_window_bits is
// never answered: we inflate any window.
func acceptOffer(params []extParam, cfg compressionConfig) (*deflateParams, string, bool) {
	o, ok := parseDeflateParams(params, true)
	if !ok {
		return nil, "", false
	}
	dp := &deflateParams{
		serverNoContextTakeover: o.serverNoContext || !cfg.contextTakeover,
		clientNoContextTakeover: o.clientNoContext || !cfg.contextTakeover,
		serverMaxWindowBits:     maxWindowBits,
		clientMaxWindowBits:     maxWindowBits,
	}
	if o.serverBits != 0 {
		dp.serverMaxWindowBits = o.serverBits
	}
	resp := extPermessageDeflate
	if dp.serverNoContextTakeover {
		resp += "; " + paramServerNoContext
	}
	if dp.clientNoContextTakeover {
		resp += "; " + paramClientNoContext
	}
	if o.serverBits != 0 {
		resp += "; " + paramServerMaxWindowBits + "=" + strconv.Itoa(o.serverBits)
	}
	return dp, resp, true
}

// deflateOffer is the client's Sec-WebSocket-Extensions value; "" when
// compression is off. It offers client_max_window_bits without a value: the
// server may then ask our compressor for any window, which it honours.
func deflateOffer(cfg compressionConfig) string {
	switch {
	case !cfg.enabled:
		return ""
	case cfg.contextTakeover:
		return extPermessageDeflate + "; " + paramClientMaxWindowBits
	}
	return extPermessageDeflate + "; " + paramServerNoContext + "; " + paramClientNoContext + "; " + paramClientMaxWindowBits
}

// acceptDeflateResponse validates the server's Sec-WebSocket-Extensions
// values against the offer made by deflateOffer(cfg) (RFC 7692 §7.1): no
// extension means no compression; anything the client did not offer, or a
// missing server_no_context_takeover that was asked for is an error, and
// the client must fail the connection. client_max_window_bits (which must
// have a value in a response) sets our compressor's window.
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
	if o.clientBits != 0 {
		dp.clientMaxWindowBits = o.clientBits
	}
	return dp, nil
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
