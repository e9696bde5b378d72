package wsgate

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// handshakeCounters count upgrade requests by outcome (Stats.Handshakes).
type handshakeCounters struct {
	accepted, badRequest, unauthorized  atomic.Uint64
	forbidden, rateLimited, unavailable atomic.Uint64
}

// count records one handshake answered with status.
func (h *handshakeCounters) count(status int) {
	switch {
	case status == http.StatusSwitchingProtocols:
		h.accepted.Add(1)
	case status == http.StatusUnauthorized:
		h.unauthorized.Add(1)
	case status == http.StatusForbidden:
		h.forbidden.Add(1)
	case status == http.StatusTooManyRequests:
		h.rateLimited.Add(1)
	case status >= 500:
		h.unavailable.Add(1)
	default: // 400, and 405, 426, 505 from the engine
		h.badRequest.Add(1)
	}
}

func (h *handshakeCounters) stats() HandshakeStats {
	return HandshakeStats{
		Accepted:     h.accepted.Load(),
		BadRequest:   h.badRequest.Load(),
		Unauthorized: h.unauthorized.Load(),
		Forbidden:    h.forbidden.Load(),
		RateLimited:  h.rateLimited.Load(),
		Unavailable:  h.unavailable.Load(),
	}
}

// reject answers a handshake with status and body, and counts and logs it
// with reason. Headers the status needs (Retry-After, WWW-Authenticate)
// are set by the caller first.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, status int, reason, body string) {
	http.Error(w, body, status)
	s.rejected(r, status, reason)
}

// rejected counts and logs a handshake that was answered with status.
func (s *Server) rejected(r *http.Request, status int, reason string) {
	s.ctr.hs.count(status)
	s.rejectLog.log(s.now(), "wsgate: handshake rejected",
		slog.Int("status", status),
		slog.String("reason", reason),
		slog.String("client", s.clientIP(r)),
		slog.String("peer", r.RemoteAddr),
		slog.String("path", r.URL.Path))
}

// acceptFailed counts and logs a failed websocket.Accept: the engine wrote
// the HTTP error (rec saw its status) or, when the connection was already
// hijacked and could not start, a 503 (or Shutdown's close frame).
func (s *Server) acceptFailed(rec *statusRecorder, r *http.Request, err error) {
	status := rec.status
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	s.rejected(r, status, limitReason(err.Error()))
}

// statusRecorder remembers the status written through it. Unwrap lets
// http.ResponseController reach the connection to hijack.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Rates of the log limiters: rejected handshakes are logged at up to
// rejectLogRate lines a second after a burst of rejectLogBurst, refused
// TCP connections (out of descriptors, MaxPendingConns) once per
// refuseLogInterval. A flood then writes a few hundred bytes a second; the
// counters in Stats see everything.
const (
	rejectLogRate     = 2
	rejectLogBurst    = 20
	refuseLogInterval = 10 * time.Second
)

// logLimiter writes log lines at a bounded rate, so that a flood cannot
// fill the disk, and says in the next line it writes how many it held
// back.
type logLimiter struct {
	logger *slog.Logger
	level  slog.Level
	rate   float64 // lines per second
	burst  float64

	mu         sync.Mutex
	bucket     tokenBucket
	suppressed uint64
}

func newLogLimiter(l *slog.Logger, level slog.Level, rate, burst float64) *logLimiter {
	return &logLimiter{logger: l, level: level, rate: rate, burst: burst}
}

// log writes msg with attrs unless the rate is exceeded; now is the
// Server's monotonic clock.
func (l *logLimiter) log(now int64, msg string, attrs ...slog.Attr) {
	l.mu.Lock()
	ok, _ := l.bucket.take(now, l.rate, l.burst)
	var dropped uint64
	if ok {
		dropped, l.suppressed = l.suppressed, 0
	} else {
		l.suppressed++
	}
	l.mu.Unlock()
	if !ok {
		return
	}
	if dropped > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", dropped)) // lines held back since the last one
	}
	l.logger.LogAttrs(context.Background(), l.level, msg, attrs...)
}

// maxReasonLen bounds what a log line quotes from a request (an Origin
// header, an error that quotes a token) so that a peer cannot make lines
// long.
const maxReasonLen = 200

// limitReason cuts v to maxReasonLen bytes.
func limitReason(v string) string {
	if len(v) <= maxReasonLen {
		return v
	}
	return v[:maxReasonLen] + "…"
}
