package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DialOptions tunes one client-side handshake. A nil *DialOptions means the
// zero value. The handshake as a whole (TCP connect, TLS, HTTP exchange) is
// bounded only by the ctx passed to Dial: give it a deadline.
type DialOptions struct {
	// Header is added to the upgrade request (Cookie, Authorization, Origin,
	// ...). A Host entry replaces the Host derived from the URL; User-Agent
	// defaults to "wsgate". Headers the handshake sets itself (Upgrade,
	// Connection, Sec-WebSocket-*) are rejected with an error.
	Header http.Header
	// Subprotocols offered in Sec-WebSocket-Protocol, in preference order.
	Subprotocols []string
	// TLSConfig for wss:// URLs (cloned; ServerName defaults to the URL host).
	// nil uses the system roots. Forces blocking mode.
	TLSConfig *tls.Config
	// NetDial opens the TCP connection; default net.Dialer.DialContext.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// maxErrorBody is how much of a non-101 response body is kept for the caller;
// the first errorBodySnippet bytes of it also go into the error text.
const (
	maxErrorBody     = 4 << 10
	errorBodySnippet = 512
	// errorBodyTimeout bounds reading a rejection body: a server that sends
	// no Content-Length and keeps the connection open must not stall Dial.
	errorBodyTimeout = 2 * time.Second
)

// dialTarget is a parsed ws:// or wss:// URL.
type dialTarget struct {
	secure     bool
	addr       string // host:port to dial
	host       string // Host header value
	serverName string // TLS server name (host without port or brackets)
	requestURI string // path?query
}

// clientHandshake dials (opts.NetDial / TLS), sends the upgrade request, validates the reply.
// Whenever a response was read it is returned, also with an error, so callers
// can inspect 401/403/429/503 answers; its Body holds up to 4 KiB.
func clientHandshake(ctx context.Context, rawURL string, opts *DialOptions, comp compressionConfig) (handshakeResult, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	t, err := parseDialURL(rawURL)
	if err != nil {
		return handshakeResult{}, nil, err
	}
	req, key, err := buildUpgradeRequest(t, opts, comp)
	if err != nil {
		return handshakeResult{}, nil, err
	}
	conn, err := dialTransport(ctx, t, opts)
	if err != nil {
		return handshakeResult{}, nil, err
	}
	res, resp, err := exchangeUpgrade(ctx, conn, req, key, opts.Subprotocols, comp)
	if err != nil {
		_ = conn.Close() // handshake failed; the error below says why
		return handshakeResult{}, resp, err
	}
	return res, resp, nil
}

// parseDialURL accepts ws:// and wss:// URLs (RFC 6455 §3).
func parseDialURL(rawURL string) (dialTarget, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return dialTarget{}, fmt.Errorf("websocket: bad URL: %w", err)
	}
	var t dialTarget
	port := "80"
	switch u.Scheme {
	case "ws":
	case "wss":
		t.secure, port = true, "443"
	default:
		return dialTarget{}, fmt.Errorf("websocket: bad URL %q: scheme must be ws or wss", rawURL)
	}
	if u.Host == "" || u.Hostname() == "" {
		return dialTarget{}, fmt.Errorf("websocket: bad URL %q: missing host", rawURL)
	}
	if u.User != nil {
		return dialTarget{}, fmt.Errorf("websocket: bad URL %q: user info not allowed; send credentials in DialOptions.Header", rawURL)
	}
	if u.Fragment != "" || strings.Contains(rawURL, "#") {
		return dialTarget{}, fmt.Errorf("websocket: bad URL %q: fragment not allowed", rawURL)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	t.serverName = u.Hostname()
	t.addr = net.JoinHostPort(t.serverName, port)
	t.host = u.Host
	t.requestURI = u.RequestURI()
	if !isPrintableASCII(t.requestURI) || !isPrintableASCII(t.host) {
		return dialTarget{}, fmt.Errorf("websocket: bad URL %q: control characters or spaces", rawURL)
	}
	return t, nil
}

// isPrintableASCII reports whether s is safe to put on the request line.
func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isHandshakeRequestHeader reports whether the handshake sets the canonical
// header key itself, so DialOptions.Header must not carry it.
func isHandshakeRequestHeader(key string) bool {
	switch key {
	case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
		"Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Sec-Websocket-Accept":
		return true
	}
	return false
}

// buildUpgradeRequest renders the GET request and returns it with its key.
func buildUpgradeRequest(t dialTarget, opts *DialOptions, comp compressionConfig) ([]byte, string, error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, "", fmt.Errorf("websocket: make key: %w", err)
	}
	key := base64.StdEncoding.EncodeToString(nonce[:])
	h := make(http.Header, len(opts.Header)+4)
	host := t.host
	for k, vs := range opts.Header {
		ck := http.CanonicalHeaderKey(k)
		switch {
		case isHandshakeRequestHeader(ck):
			return nil, "", fmt.Errorf("websocket: header %s is set by the handshake; use DialOptions fields", ck)
		case ck == "Host":
			if len(vs) > 0 {
				host = vs[0]
			}
		default:
			h[ck] = append(h[ck], vs...)
		}
	}
	if !isPrintableASCII(host) {
		return nil, "", fmt.Errorf("websocket: bad Host header %q", host)
	}
	if _, ok := h["User-Agent"]; !ok {
		h.Set("User-Agent", "wsgate")
	}
	h.Set("Sec-WebSocket-Key", key)
	h.Set("Sec-WebSocket-Version", "13")
	if len(opts.Subprotocols) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(opts.Subprotocols, ", "))
	}
	if comp.enabled {
		h.Set("Sec-WebSocket-Extensions", deflateOffer(comp))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", t.requestURI, host)
	_ = h.Write(&b) // writing to a bytes.Buffer cannot fail
	b.WriteString("\r\n")
	return b.Bytes(), key, nil
}

// dialTransport opens TCP (and TLS for wss) within ctx.
func dialTransport(ctx context.Context, t dialTarget, opts *DialOptions) (net.Conn, error) {
	dial := opts.NetDial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("websocket: dial %s: %w", t.addr, err)
	}
	if !t.secure {
		return conn, nil
	}
	cfg := &tls.Config{}
	if opts.TLSConfig != nil {
		cfg = opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = t.serverName
	}
	// The upgrade is an HTTP/1.1 mechanism; a server that picked h2 by ALPN
	// would not understand it.
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close() // TLS failed; nothing else owns conn
		return nil, fmt.Errorf("websocket: TLS handshake with %s: %w", t.addr, err)
	}
	return tc, nil
}

// exchangeUpgrade writes req on conn and validates the response, all within ctx.
func exchangeUpgrade(ctx context.Context, conn net.Conn, req []byte, key string, offered []string, comp compressionConfig) (res handshakeResult, resp *http.Response, err error) {
	stop := watchContext(ctx, conn)
	defer func() {
		alive := stop()
		switch {
		case err != nil:
			err = contextError(ctx, err)
		case !alive:
			err = fmt.Errorf("websocket: handshake: %w", ctx.Err())
		default:
			if cerr := conn.SetDeadline(time.Time{}); cerr != nil {
				err = fmt.Errorf("websocket: clear deadline: %w", cerr)
			}
		}
	}()
	if err := writeAll(conn, req); err != nil {
		return handshakeResult{}, nil, fmt.Errorf("websocket: write upgrade request: %w", err)
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err = http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return handshakeResult{}, nil, fmt.Errorf("websocket: read handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return handshakeResult{}, resp, rejectionError(ctx, conn, resp)
	}
	res, err = checkUpgradeResponse(resp, key, offered, comp)
	if err != nil {
		return handshakeResult{}, resp, err
	}
	res.conn = conn
	if n := br.Buffered(); n > 0 {
		peeked, _ := br.Peek(n) // cannot fail: n bytes are buffered
		res.buffered = bytes.Clone(peeked)
	}
	return res, resp, nil
}

// watchContext applies ctx's deadline to conn and interrupts blocked I/O when
// ctx is cancelled. The returned stop reports whether ctx stayed alive; once
// it returns, the watcher has finished touching conn.
func watchContext(ctx context.Context, conn net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d) // a failure shows up as an I/O error below
	}
	fired := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = conn.SetDeadline(time.Unix(1, 0)) // wake blocked reads/writes; conn is closed by the caller
	})
	return func() bool {
		if stopWatch() {
			return true
		}
		<-fired
		return false
	}
}

// contextError makes a failure caused by ctx report ctx's error, so callers
// can test errors.Is(err, context.DeadlineExceeded / context.Canceled).
func contextError(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil {
		// The conn deadline (set from ctx) can expire a moment before ctx's own timer.
		if d, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, cerr)
}

// writeAll writes all of b; net.Conn.Write already loops, this only guards
// against a misbehaving NetDial connection that returns n < len(b) and nil.
func writeAll(conn net.Conn, b []byte) error {
	for len(b) > 0 {
		n, err := conn.Write(b)
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
	}
	return nil
}

// rejectionError reads a bounded prefix of a non-101 response body (keeping
// it readable through resp.Body) and describes the rejection.
func rejectionError(ctx context.Context, conn net.Conn, resp *http.Response) error {
	d := time.Now().Add(errorBodyTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	_ = conn.SetReadDeadline(d)                                    // best effort: the body is informational
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // partial body is fine
	_ = resp.Body.Close()                                          // the connection is closed by the caller anyway
	resp.Body = io.NopCloser(bytes.NewReader(body))
	snippet := body
	if len(snippet) > errorBodySnippet {
		snippet = snippet[:errorBodySnippet]
	}
	msg := strings.TrimSpace(string(snippet))
	if msg == "" {
		return fmt.Errorf("websocket: handshake rejected: %s", resp.Status)
	}
	return fmt.Errorf("websocket: handshake rejected: %s: %q", resp.Status, msg)
}

// checkUpgradeResponse validates a 101 against what the request asked for.
func checkUpgradeResponse(resp *http.Response, key string, offered []string, comp compressionConfig) (handshakeResult, error) {
	h := resp.Header
	if !tokenListContains(h.Values("Upgrade"), "websocket") {
		return handshakeResult{}, errors.New("websocket: bad handshake: missing \"Upgrade: websocket\" in response")
	}
	if !tokenListContains(h.Values("Connection"), "upgrade") {
		return handshakeResult{}, errors.New("websocket: bad handshake: missing \"Connection: Upgrade\" in response")
	}
	if got, want := h.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
		return handshakeResult{}, fmt.Errorf("websocket: bad handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	var res handshakeResult
	proto, err := checkResponseSubprotocol(h.Values("Sec-WebSocket-Protocol"), offered)
	if err != nil {
		return handshakeResult{}, err
	}
	res.subprotocol = proto
	exts := h.Values("Sec-WebSocket-Extensions")
	switch {
	case comp.enabled:
		res.deflate, err = acceptDeflateResponse(exts, comp)
		if err != nil {
			return handshakeResult{}, err // already "websocket: ..." and specific
		}
	case len(parseTokenList(exts)) > 0:
		return handshakeResult{}, fmt.Errorf("websocket: bad handshake: server selected extension %q that was not offered",
			strings.Join(exts, ", "))
	}
	return res, nil
}

// checkResponseSubprotocol returns the server's choice if it is one we offered.
func checkResponseSubprotocol(values []string, offered []string) (string, error) {
	if len(values) == 0 || (len(values) == 1 && strings.TrimSpace(values[0]) == "") {
		return "", nil
	}
	if len(values) > 1 || strings.Contains(values[0], ",") {
		return "", fmt.Errorf("websocket: bad handshake: server selected several subprotocols %q", strings.Join(values, ", "))
	}
	proto := strings.TrimSpace(values[0])
	for _, o := range offered {
		if o == proto {
			return proto, nil
		}
	}
	return "", fmt.Errorf("websocket: bad handshake: server selected subprotocol %q that was not offered", proto)
}
