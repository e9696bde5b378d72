package wsgate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// net/http answers some requests itself, before any handler sees them: a
// request whose headers exceed MaxHeaderBytes gets 431, a malformed one
// 400, and a connection that does not finish its headers within
// ReadHeaderTimeout (or its body within ReadTimeout) is closed. It neither
// logs nor counts them. watchedConn sees them from below: it is the
// net.Conn that Serve hands net/http, so it sees the answers net/http
// writes while no handler has the request, and the reads that time out.
// It only lives until the upgrade: the WebSocket engine gets the
// connection it wraps (hijackUnwrapper). TLS connections are not watched
// (net/http needs the *tls.Conn itself); only the listener's refusals are
// counted for them.
type watchedConn struct {
	net.Conn
	s *Server

	// Used on net/http's goroutine of the connection, except that Read
	// also runs on its background reader while a handler runs.
	handling atomic.Bool  // a handler has the current request
	served   atomic.Bool  // a request was handled: waiting now is keep-alive idleness
	arrived  atomic.Bool  // bytes arrived since the connection was accepted or went idle
	counted  atomic.Bool  // the current request's rejection is counted
	deadline atomic.Int64 // the read deadline, Unix nanoseconds; 0: none
}

// httpCounters count what HTTPRejections reports.
type httpCounters struct {
	pendingLimit, perIPLimit, outOfFiles    atomic.Uint64
	headersTooLarge, badRequest, idleClosed atomic.Uint64
	headerTimeout, bodyTimeout              atomic.Uint64
}

func (h *httpCounters) stats() HTTPRejections {
	return HTTPRejections{
		PendingLimit:    h.pendingLimit.Load(),
		PerIPLimit:      h.perIPLimit.Load(),
		OutOfFiles:      h.outOfFiles.Load(),
		HeadersTooLarge: h.headersTooLarge.Load(),
		BadRequest:      h.badRequest.Load(),
		HeaderTimeout:   h.headerTimeout.Load(),
		BodyTimeout:     h.bodyTimeout.Load(),
		IdleClosed:      h.idleClosed.Load(),
	}
}

// watch wraps a connection the listener accepted, unless it is TLS.
func (s *Server) watch(c net.Conn) net.Conn {
	if _, ok := c.(*tls.Conn); ok {
		return c
	}
	return &watchedConn{Conn: c, s: s}
}

// abortedDeadline (2000-01-01, Unix nanoseconds): net/http interrupts its
// own background read by setting a read deadline in the past (1970); a
// timeout caused by a deadline before this is not the peer's doing.
const abortedDeadline = 946684800 * int64(time.Second)

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.arrived.Load() {
		c.arrived.Store(true)
	}
	// The deadline first: net/http aborts its background read after every
	// request with a deadline in the past, and errors.As on that error
	// cost about 3 % of a push through the HTTP API.
	var ne net.Error
	if err != nil && c.deadline.Load() > abortedDeadline && errors.As(err, &ne) && ne.Timeout() {
		c.timedOut()
	}
	return n, err
}

// Write sees net/http's own answers: whatever is written while no
// handler has the request.
func (c *watchedConn) Write(p []byte) (int, error) {
	if !c.handling.Load() && !c.counted.Swap(true) {
		c.s.httpAnswered(c, p)
	}
	return c.Conn.Write(p)
}

func (c *watchedConn) SetReadDeadline(t time.Time) error {
	c.setDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *watchedConn) SetDeadline(t time.Time) error {
	c.setDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *watchedConn) setDeadline(t time.Time) {
	var d int64
	if !t.IsZero() {
		d = t.UnixNano()
	}
	c.deadline.Store(d)
}

// CloseWrite lets net/http half-close after an error answer, as it does
// on a bare *net.TCPConn.
func (c *watchedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// timedOut counts a read that ran into its deadline, by what was being
// waited for: the rest of a request whose handler runs (ReadTimeout: its
// body, read by the handler or discarded by net/http after it), the next
// request of an idle keep-alive connection (HTTPIdleTimeout: not a
// rejection, counted only), or headers (ReadHeaderTimeout). Once per
// request.
func (c *watchedConn) timedOut() {
	if c.counted.Swap(true) {
		return
	}
	switch {
	case c.handling.Load():
		c.s.ctr.http.bodyTimeout.Add(1)
		c.s.httpRejected(c, 0, "request body not read within the read timeout")
	case c.served.Load() && !c.arrived.Load():
		c.s.ctr.http.idleClosed.Add(1)
	default:
		c.s.ctr.http.headerTimeout.Add(1)
		c.s.httpRejected(c, 0, "request headers not read within the read-header timeout")
	}
}

// handled marks the start of a handler's request (serveHTTP).
func (c *watchedConn) handled() { c.handling.Store(true) }

// idle is net/http's StateIdle: the request's answer is out and the next
// may come.
func (c *watchedConn) idle() {
	c.served.Store(true)
	c.arrived.Store(false)
	c.counted.Store(false)
	c.handling.Store(false)
}

// httpAnswered counts and logs an answer net/http wrote itself; p starts
// with its status line.
func (s *Server) httpAnswered(c *watchedConn, p []byte) {
	status, detail := parseAnswer(p)
	switch {
	case status == http.StatusRequestHeaderFieldsTooLarge:
		s.ctr.http.headersTooLarge.Add(1)
		s.httpRejected(c, status, "request headers larger than the max-header-bytes bound")
	case status >= 400:
		s.ctr.http.badRequest.Add(1)
		s.httpRejected(c, status, "malformed request: "+detail)
	}
}

// parseAnswer reads the status and the body's text of an answer net/http
// wrote itself ("HTTP/1.1 400 Bad Request\r\n...\r\n\r\n400 Bad Request:
// missing required Host header"); 0 when p is not one.
func parseAnswer(p []byte) (int, string) {
	line, rest, _ := bytes.Cut(p, []byte("\r\n"))
	_, code, ok := bytes.Cut(line, []byte(" "))
	if !ok || !bytes.HasPrefix(line, []byte("HTTP/1.")) || len(code) < 3 {
		return 0, ""
	}
	status, err := strconv.Atoi(string(code[:3]))
	if err != nil {
		return 0, ""
	}
	_, body, _ := bytes.Cut(rest, []byte("\r\n\r\n"))
	return status, limitReason(string(bytes.TrimSpace(body)))
}

// httpRejected logs a request net/http refused, through the rate limit of
// rejected handshakes; status 0: the connection was closed without an
// answer.
func (s *Server) httpRejected(c net.Conn, status int, reason string) {
	peer := c.RemoteAddr().String()
	client := peer
	if host, _, err := net.SplitHostPort(peer); err == nil {
		client = host
	}
	s.rejectLog.log(s.now(), "wsgate: request rejected",
		slog.Int("status", status),
		slog.String("reason", reason),
		slog.String("client", client),
		slog.String("peer", peer))
}

// watchedKey is the context key of a request's watchedConn.
type watchedKey struct{}

// connContext is http.Server.ConnContext: it gives each request the
// watchedConn it arrived on.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if wc, ok := c.(*watchedConn); ok {
		return context.WithValue(ctx, watchedKey{}, wc)
	}
	return ctx
}

// serveHTTP is the handler of Serve's http.Server: it tells the request's
// watchedConn that a handler has the request, and hands upgrades a
// ResponseWriter whose Hijack gives the engine the connection itself.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if wc, ok := r.Context().Value(watchedKey{}).(*watchedConn); ok {
		wc.handled()
		if isUpgrade(r) {
			w = hijackUnwrapper{w}
		}
	}
	s.mux.ServeHTTP(w, r)
}

// hijackUnwrapper hijacks the underlying connection of a watchedConn: the
// engine drives the socket itself (its epoll reactor needs the
// *net.TCPConn), and net/http's answers are over once it has hijacked.
type hijackUnwrapper struct{ http.ResponseWriter }

func (w hijackUnwrapper) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if wc, ok := c.(*watchedConn); ok {
		c = wc.Conn
	}
	return c, brw, err
}

func (w hijackUnwrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }
