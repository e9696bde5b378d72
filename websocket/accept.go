package websocket

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AcceptOptions tunes one server-side handshake. A nil *AcceptOptions means the
// zero value: no subprotocols, the default same-origin check, no extra headers.
type AcceptOptions struct {
	// Subprotocols in server preference order; the first one the client also
	// offered wins. If the client offered some and none match, the handshake
	// still succeeds without a subprotocol (RFC 6455 §4.2.2); the application
	// decides whether that is acceptable by looking at Conn.Subprotocol.
	Subprotocols []string
	// CheckOrigin decides whether a browser page from another origin may
	// connect. nil: allow requests without an Origin header (non-browser
	// clients) and requests whose Origin host equals r.Host (case-insensitive).
	// Returning false answers 403.
	CheckOrigin func(r *http.Request) bool
	// ResponseHeader is added to the 101 response (Set-Cookie, ...). Headers the
	// handshake itself controls (Upgrade, Connection, Sec-WebSocket-Accept,
	// Sec-WebSocket-Protocol, Sec-WebSocket-Extensions) are ignored here.
	ResponseHeader http.Header
	// Value is stored on the Conn before any callback (Conn.Value).
	Value any
}

// handshakeResult is what a finished handshake hands to the connection layer.
type handshakeResult struct {
	conn        net.Conn       // hijacked / dialed connection
	buffered    []byte         // bytes already read past the handshake (must be fed to the parser first)
	subprotocol string         // negotiated subprotocol, "" if none
	deflate     *deflateParams // nil if not negotiated
	response    []byte         // server: the 101, not yet sent (see Conn.releaseResponse)
}

// websocketGUID is the fixed string RFC 6455 §1.3 appends to the key before hashing.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// handshakeError is a rejected upgrade request: the HTTP status that was (or
// must be) answered and the reason sent as the plain-text body.
type handshakeError struct {
	status int
	msg    string // starts with "websocket: "
}

func (e *handshakeError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.msg, e.status)
}

func rejectf(status int, format string, args ...any) *handshakeError {
	return &handshakeError{status: status, msg: fmt.Sprintf("websocket: "+format, args...)}
}

// serverHandshake validates r and hijacks the connection, or writes the HTTP
// error. The 101 is in the result, not sent: the connection layer sends it
// once OnOpen has run.
// On failure the HTTP error has been written through w and the returned error
// describes it; w must not be used for anything else afterwards.
func serverHandshake(w http.ResponseWriter, r *http.Request, opts *AcceptOptions, comp compressionConfig) (handshakeResult, error) {
	if opts == nil {
		opts = &AcceptOptions{}
	}
	plan, herr := checkUpgradeRequest(r, opts, comp)
	if herr != nil {
		writeHandshakeError(w, herr)
		return handshakeResult{}, herr
	}
	res, err := hijackAndRespond(w, plan, opts.ResponseHeader)
	if err != nil {
		return handshakeResult{}, err
	}
	return res, nil
}

// upgradePlan is what a valid upgrade request negotiated; it is turned into
// the 101 response.
type upgradePlan struct {
	accept       acceptValue // Sec-WebSocket-Accept value
	subprotocol  string
	deflate      *deflateParams
	extensionHdr string // Sec-WebSocket-Extensions value, "" if none
}

// checkUpgradeRequest applies RFC 6455 §4.2.1 to r. It has no side effects,
// so it can be fuzzed and table-tested without a connection.
func checkUpgradeRequest(r *http.Request, opts *AcceptOptions, comp compressionConfig) (upgradePlan, *handshakeError) {
	if herr := checkRequestLine(r); herr != nil {
		return upgradePlan{}, herr
	}
	if herr := checkUpgradeHeaders(r.Header); herr != nil {
		return upgradePlan{}, herr
	}
	key, herr := checkKey(r.Header)
	if herr != nil {
		return upgradePlan{}, herr
	}
	if !originAllowed(r, opts.CheckOrigin) {
		return upgradePlan{}, rejectf(http.StatusForbidden, "origin %q not allowed", r.Header.Get("Origin"))
	}
	plan := upgradePlan{
		subprotocol: selectSubprotocol(r.Header.Values("Sec-WebSocket-Protocol"), opts.Subprotocols),
	}
	plan.accept.set(key)
	if comp.enabled {
		p, ext, err := negotiateDeflate(r.Header.Values("Sec-WebSocket-Extensions"), comp)
		if err != nil {
			reason := strings.TrimPrefix(err.Error(), "websocket: ")
			return upgradePlan{}, rejectf(http.StatusBadRequest, "bad Sec-WebSocket-Extensions: %s", reason)
		}
		plan.deflate, plan.extensionHdr = p, ext
	}
	return plan, nil
}

// checkRequestLine rejects anything but an HTTP/1.1 GET without a body.
func checkRequestLine(r *http.Request) *handshakeError {
	if r.ProtoMajor != 1 {
		return rejectf(http.StatusHTTPVersionNotSupported,
			"%s upgrade (RFC 8441 extended CONNECT) is not supported; connect with HTTP/1.1", r.Proto)
	}
	if !r.ProtoAtLeast(1, 1) {
		return rejectf(http.StatusHTTPVersionNotSupported, "upgrade requires HTTP/1.1, got %s", r.Proto)
	}
	if r.Method != http.MethodGet {
		return rejectf(http.StatusMethodNotAllowed, "upgrade method must be GET, got %q", r.Method)
	}
	// A body would sit in the connection's read buffer and be taken for frames.
	if r.ContentLength != 0 {
		return rejectf(http.StatusBadRequest, "upgrade request must not have a body")
	}
	return nil
}

// checkUpgradeHeaders checks Connection, Upgrade and Sec-WebSocket-Version.
func checkUpgradeHeaders(h http.Header) *handshakeError {
	if !tokenListContains(h.Values("Connection"), "upgrade") {
		return rejectf(http.StatusBadRequest, "missing \"Connection: Upgrade\" header")
	}
	if !tokenListContains(h.Values("Upgrade"), "websocket") {
		return rejectf(http.StatusBadRequest, "missing \"Upgrade: websocket\" header")
	}
	if v := h.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return rejectf(http.StatusUpgradeRequired, "unsupported version %q; only 13 is supported",
			strings.Join(v, ", "))
	}
	return nil
}

// checkKey returns the Sec-WebSocket-Key if it is the base64 of 16 bytes.
func checkKey(h http.Header) (string, *handshakeError) {
	v := h.Values("Sec-WebSocket-Key")
	if len(v) != 1 {
		return "", rejectf(http.StatusBadRequest, "want exactly one Sec-WebSocket-Key header, got %d", len(v))
	}
	key := strings.TrimSpace(v[0])
	if len(key) != 24 {
		return "", rejectf(http.StatusBadRequest, "Sec-WebSocket-Key must be base64 of 16 bytes")
	}
	var raw [18]byte // base64.StdEncoding.DecodedLen(24)
	if n, err := base64.StdEncoding.Decode(raw[:], []byte(key)); err != nil || n != 16 {
		return "", rejectf(http.StatusBadRequest, "Sec-WebSocket-Key must be base64 of 16 bytes")
	}
	return key, nil
}

// acceptKey computes Sec-WebSocket-Accept for a client key (RFC 6455 §4.2.2).
func acceptKey(key string) string {
	var a acceptValue
	a.set(key)
	return string(a[:])
}

// acceptValue is a Sec-WebSocket-Accept value: the base64 of a SHA-1 sum.
type acceptValue [28]byte

// set computes the value for key; a valid key (24 bytes) is hashed
// without allocating.
func (a *acceptValue) set(key string) { AppendAcceptKey(a[:0], key) }

// AppendAcceptKey appends to dst the Sec-WebSocket-Accept value that
// answers the Sec-WebSocket-Key key (RFC 6455 §4.2.2: the base64 of the
// SHA-1 of the key and the protocol's GUID), without allocating for a
// valid key when dst has room for the 28 bytes. Accept and Dial do this
// themselves; it is for programs that answer a handshake by hand.
func AppendAcceptKey(dst []byte, key string) []byte {
	var buf [64]byte
	sum := sha1.Sum(append(append(buf[:0], key...), websocketGUID...))
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// originAllowed applies check, or the same-origin default when check is nil.
// The default is what stops a page on another site from using the visitor's
// cookies to open a connection (cross-site WebSocket hijacking).
func originAllowed(r *http.Request, check func(*http.Request) bool) bool {
	if check != nil {
		return check(r)
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return true
	}
	if len(origins) > 1 {
		return false
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// selectSubprotocol returns the first of supported (server preference) that
// the client offered, or "" when there is none in common.
func selectSubprotocol(offeredValues []string, supported []string) string {
	if len(supported) == 0 || len(offeredValues) == 0 {
		return ""
	}
	offered := parseTokenList(offeredValues)
	for _, s := range supported {
		for _, o := range offered {
			if o == s { // subprotocol names are case-sensitive (RFC 6455 §11.5)
				return s
			}
		}
	}
	return ""
}

// parseTokenList splits comma-separated header values (possibly several
// header lines) into their non-empty elements with surrounding spaces and tabs
// removed (RFC 9110 §5.6.1).
func parseTokenList(values []string) []string {
	var out []string
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			if t := strings.Trim(elem, " \t"); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// tokenListContains reports whether any element of the comma-separated
// values equals token, ignoring case (for Connection and Upgrade).
func tokenListContains(values []string, token string) bool {
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.Trim(elem, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// writeHandshakeError answers a rejected upgrade with a plain-text reason.
func writeHandshakeError(w http.ResponseWriter, herr *handshakeError) {
	switch herr.status {
	case http.StatusUpgradeRequired:
		w.Header().Set("Sec-WebSocket-Version", "13")
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodGet)
	}
	http.Error(w, herr.msg, herr.status)
}

// hijackAndRespond takes over the connection and renders the 101 for it.
func hijackAndRespond(w http.ResponseWriter, plan upgradePlan, extra http.Header) (handshakeResult, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "websocket: connection cannot be upgraded (hijacking not supported)", http.StatusInternalServerError)
		return handshakeResult{}, fmt.Errorf("websocket: hijack: %w", err)
	}
	// A client may pipeline its first frames right behind the request; they
	// are already in net/http's read buffer and would be lost otherwise.
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		peeked, _ := brw.Reader.Peek(n) // cannot fail: n bytes are buffered
		buffered = bytes.Clone(peeked)
	}
	// net/http may have set deadlines (Server.ReadTimeout, WriteTimeout); the
	// connection layer has its own.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		_ = conn.Close() // the handshake failed; nothing else owns conn
		return handshakeResult{}, fmt.Errorf("websocket: hijacked connection: %w", err)
	}
	return handshakeResult{
		conn:        conn,
		buffered:    buffered,
		subprotocol: plan.subprotocol,
		deflate:     plan.deflate,
		response:    switchingProtocols(plan, extra),
	}, nil
}

// isReservedResponseHeader reports whether the handshake sets the canonical
// header key itself, so AcceptOptions.ResponseHeader cannot override it.
func isReservedResponseHeader(key string) bool {
	switch key {
	case "Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions":
		return true
	}
	return false
}

// switchingProtocols renders the complete 101 response.
func switchingProtocols(plan upgradePlan, extra http.Header) []byte {
	if len(extra) == 0 {
		return plainSwitchingProtocols(plan)
	}
	return headerSwitchingProtocols(plan, extra)
}

// headerSwitchingProtocols renders the 101 with extra headers through an
// http.Header (canonical keys, sorted, values cleaned of line breaks).
func headerSwitchingProtocols(plan upgradePlan, extra http.Header) []byte {
	h := make(http.Header, len(extra)+3)
	for k, vs := range extra {
		ck := http.CanonicalHeaderKey(k)
		if isReservedResponseHeader(ck) {
			continue
		}
		h[ck] = append(h[ck], vs...)
	}
	h.Set("Sec-WebSocket-Accept", string(plan.accept[:]))
	if plan.subprotocol != "" {
		h.Set("Sec-WebSocket-Protocol", plan.subprotocol)
	}
	if plan.extensionHdr != "" {
		h.Set("Sec-WebSocket-Extensions", plan.extensionHdr)
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	_ = h.Write(&b) // writing to a bytes.Buffer cannot fail
	b.WriteString("\r\n")
	return b.Bytes()
}

// plainSwitchingProtocols renders the 101 of a handshake without extra
// headers in one allocation, byte for byte what headerSwitchingProtocols
// renders (TestPlainSwitchingProtocols), which costs a map and several
// small buffers on every handshake.
func plainSwitchingProtocols(plan upgradePlan) []byte {
	const head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	b := make([]byte, 0, len(head)+64+len(plan.extensionHdr)+len(plan.subprotocol)+64)
	b = append(b, head...)
	b = append(b, "Sec-Websocket-Accept: "...)
	b = append(b, plan.accept[:]...)
	b = append(b, "\r\n"...)
	if plan.extensionHdr != "" {
		b = append(b, "Sec-Websocket-Extensions: "...)
		b = append(b, plan.extensionHdr...)
		b = append(b, "\r\n"...)
	}
	if plan.subprotocol != "" {
		b = append(b, "Sec-Websocket-Protocol: "...)
		b = append(b, plan.subprotocol...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}
