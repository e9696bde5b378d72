package websocket

import (
	"context"
	"net/http"
)

// Dialer opens event-mode client connections that share one reactor and
// one executor, like a Server's: the way to hold thousands of client
// connections (load generators, bridges) in one process.
type Dialer struct {
	eng *engine
}

// NewDialer returns a dialer for cfg and h. It starts no goroutines.
func NewDialer(cfg Config, h Handler) *Dialer {
	return &Dialer{eng: newEngine(cfg, h, true, false)}
}

// Dial opens a connection to a ws:// or wss:// URL and starts delivering
// its events to the Dialer's Handler. wss:// connections run in blocking
// mode. ctx bounds the handshake only. opts may be nil. On a rejected
// handshake the server's response is returned with the error.
func (d *Dialer) Dial(ctx context.Context, url string, opts *DialOptions) (*Conn, *http.Response, error) {
	if d.eng.isClosing() {
		return nil, nil, errShutdown
	}
	if opts == nil {
		opts = &DialOptions{}
	}
	res, resp, err := clientHandshake(ctx, url, opts, d.eng.compression())
	if err != nil {
		return nil, resp, err
	}
	c, err := d.eng.open(res, nil)
	return c, resp, err
}

// Shutdown closes every connection of the dialer with code and reason,
// waits for them to finish (or for ctx, after which they are dropped) and
// stops every goroutine.
func (d *Dialer) Shutdown(ctx context.Context, code StatusCode, reason string) error {
	return d.eng.shutdown(ctx, code, reason)
}

// Len returns the number of connections whose OnClose has not returned
// yet, closing ones included.
func (d *Dialer) Len() int { return d.eng.len() }

// Panics returns how many Handler callbacks have panicked (and were
// recovered) since the dialer was made.
func (d *Dialer) Panics() uint64 { return d.eng.panics.Load() }

// Dial opens a pull-mode client connection: one reader goroutine reads
// ahead a few messages and Conn.Read returns them. cfg may be nil (its
// Mode, Workers, InboxLimit and Pollers do not apply). ctx bounds the
// handshake only. opts may be nil.
func Dial(ctx context.Context, url string, cfg *Config, opts *DialOptions) (*Conn, *http.Response, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	eng := newEngine(c, Handler{}, true, true)
	if opts == nil {
		opts = &DialOptions{}
	}
	res, resp, err := clientHandshake(ctx, url, opts, eng.compression())
	if err != nil {
		return nil, resp, err
	}
	conn, err := eng.open(res, nil)
	return conn, resp, err
}
