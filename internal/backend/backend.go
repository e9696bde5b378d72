// Package backend lets an application written in any language answer client requests:
// wsgate POSTs each request whose action has no in-process handler to the backend's
// URL, and the backend's response becomes the reply. Connects and disconnects are
// POSTed to the same URL so the backend can keep its own presence.
//
// Request body (Content-Type application/json):
//
//	{"type":"request","conn":"c1","user":"alice","action":110,"data":"<base64>"}
//	{"type":"connect","conn":"c1","user":"alice","remote":"203.0.113.7:5555"}
//	{"type":"disconnect","conn":"c1","user":"alice","code":1000}
//
// A request's response is 200 with JSON {"data":"<base64>"} or {"json":<any JSON>} for
// the reply payload, or {"error":{"code":1000,"message":"…"}} for an error reply with an
// application code. Any other status, a timeout, or an unreachable backend becomes an
// error reply (code backend unavailable / timeout) that tells the client what happened;
// the backend's own error text is logged, not forwarded.
package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/wire"
)

// Defaults for Config's zero values.
const (
	DefaultTimeout       = 5 * time.Second
	DefaultMaxConcurrent = 64
	maxResponse          = 1 << 20
)

// Config configures a Forwarder.
type Config struct {
	URL           string        // http:// or https:// endpoint of the backend; required
	Timeout       time.Duration // per call; default DefaultTimeout
	MaxConcurrent int           // calls in flight at once; default DefaultMaxConcurrent
	Client        *http.Client  // default: a client with Timeout
	Logger        *slog.Logger  // nil = discard
}

// Forwarder sends requests and connection events to an HTTP backend.
type Forwarder struct {
	url     string
	timeout time.Duration
	client  *http.Client
	logger  *slog.Logger
	slots   chan struct{} // bounds calls in flight
	mu      sync.Mutex    // orders wg.Add against Close
	closed  bool
	wg      sync.WaitGroup
	dropped atomic.Int64 // notifications dropped because every slot was busy
}

// New returns a Forwarder for cfg.
func New(cfg Config) (*Forwarder, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("wsgate: backend URL %q must be http:// or https://", cfg.URL)
	}
	f := &Forwarder{url: cfg.URL, timeout: cfg.Timeout, client: cfg.Client, logger: cfg.Logger}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	if f.client == nil {
		f.client = &http.Client{Timeout: f.timeout}
	}
	if f.logger == nil {
		f.logger = slog.New(slog.DiscardHandler)
	}
	n := cfg.MaxConcurrent
	if n <= 0 {
		n = DefaultMaxConcurrent
	}
	f.slots = make(chan struct{}, n)
	return f, nil
}

type event struct {
	Type   string `json:"type"`
	Conn   string `json:"conn"`
	User   string `json:"user,omitempty"`
	Action uint32 `json:"action,omitempty"`
	Data   []byte `json:"data,omitempty"` // base64 in JSON
	Remote string `json:"remote,omitempty"`
	Code   int    `json:"code,omitempty"`
}

type reply struct {
	Data  []byte          `json:"data"`
	JSON  json.RawMessage `json:"json"`
	Error *struct {
		Code    uint16 `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Handle forwards one request; use it as wsgate.Config.Fallback.
func (f *Forwarder) Handle(ctx context.Context, req *wsgate.Request) ([]byte, error) {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, &wsgate.ReplyError{Code: wire.CodeRateLimited, Message: "wsgate: backend busy, try again"}
	}
	defer func() { <-f.slots }()
	ev := event{Type: "request", Conn: req.Conn.ID, User: req.Conn.UserID, Action: uint32(req.Action), Data: req.Payload}
	body, status, err := f.post(ctx, ev)
	if err != nil {
		return nil, f.unavailable(err, req)
	}
	if status != http.StatusOK {
		f.logger.Warn("backend answered with an error status", "status", status, "conn", req.Conn.ID, "action", req.Action)
		return nil, &wsgate.ReplyError{Code: wire.CodeUnavailable, Message: fmt.Sprintf("wsgate: backend answered %d", status)}
	}
	return decodeReply(body)
}

func (f *Forwarder) unavailable(err error, req *wsgate.Request) error {
	f.logger.Warn("backend call failed", "err", err, "conn", req.Conn.ID, "action", req.Action)
	if errors.Is(err, context.DeadlineExceeded) {
		return &wsgate.ReplyError{Code: wire.CodeTimeout, Message: "wsgate: backend did not answer in time"}
	}
	return &wsgate.ReplyError{Code: wire.CodeUnavailable, Message: "wsgate: backend unavailable"}
}

func decodeReply(body []byte) ([]byte, error) {
	var r reply
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &wsgate.ReplyError{Code: wire.CodeUnavailable, Message: "wsgate: backend sent a malformed reply"}
	}
	switch {
	case r.Error != nil:
		return nil, &wsgate.ReplyError{Code: wire.ErrorCode(r.Error.Code), Message: r.Error.Message}
	case r.JSON != nil:
		return bytes.TrimSpace(r.JSON), nil
	default:
		return r.Data, nil
	}
}

func (f *Forwarder) post(ctx context.Context, ev event) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, 0, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(b))
	if err != nil {
		return nil, 0, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(hreq)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	return body, resp.StatusCode, err
}

// OnConnect notifies the backend of a new connection; use it as wsgate.Config.OnConnect.
func (f *Forwarder) OnConnect(_ context.Context, c *wsgate.ConnInfo) {
	f.notify(event{Type: "connect", Conn: c.ID, User: c.UserID, Remote: remote(c.RemoteAddr)})
}

// OnDisconnect notifies the backend of a closed connection; use it as wsgate.Config.OnDisconnect.
func (f *Forwarder) OnDisconnect(c *wsgate.ConnInfo, code int) {
	f.notify(event{Type: "disconnect", Conn: c.ID, User: c.UserID, Code: code})
}

// notify posts ev without making the caller wait. When every slot is busy the event
// is dropped and counted: the gateway must not queue without bound for a slow backend.
func (f *Forwarder) notify(ev event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	select {
	case f.slots <- struct{}{}:
	default:
		f.dropped.Add(1)
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer func() { <-f.slots }()
		_, status, err := f.post(context.Background(), ev)
		if err != nil || status/100 != 2 {
			f.logger.Warn("backend notification failed", "type", ev.Type, "conn", ev.Conn, "status", status, "err", err)
		}
	}()
}

// Dropped returns how many notifications were dropped because the backend was saturated.
func (f *Forwarder) Dropped() int64 { return f.dropped.Load() }

// Close stops sending notifications and waits for those in flight (each bounded by
// the timeout).
func (f *Forwarder) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}

// remote formats a client address, "" when unknown (the field is then left out).
func remote(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
