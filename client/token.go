package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// Tokens (docs/PROTOCOL.md, token refresh). With Options.GetToken the
// client asks for a token before every connection attempt, and again when
// the server warns with an id-0 wire.CodeTokenExpiring error that the
// connection's token is about to expire; that token goes to the server in a
// refresh frame and the connection stays open. A refused token (HTTP 401,
// close 4500) is final unless GetToken then returns a different one, so a
// bad token costs one more attempt, not a reconnect storm.

// errSameToken is why a client stops when GetToken has nothing newer than
// the token the server refused.
var errSameToken = errors.New("wsgate: the server refused the token and GetToken returned it again")

// tokenState remembers the token of the last attempt and the one refused.
type tokenState struct {
	mu         sync.Mutex
	last       string
	refused    string
	hasRefused bool
	refreshing atomic.Bool
}

// dialToken returns the token for a connection attempt.
func (c *Client) dialToken(ctx context.Context) (string, error) {
	if c.opts.GetToken == nil {
		return c.opts.Token, nil
	}
	tok, err := c.opts.GetToken(ctx)
	if err != nil {
		return "", fmt.Errorf("wsgate: GetToken: %w", err)
	}
	c.tok.mu.Lock()
	same := c.tok.hasRefused && tok == c.tok.refused
	c.tok.last, c.tok.hasRefused = tok, false
	c.tok.mu.Unlock()
	if same {
		return "", &HandshakeError{StatusCode: http.StatusUnauthorized, Err: errSameToken}
	}
	return tok, nil
}

// tokenMayHelp reports whether err, which says the token was refused,
// should lead to one more attempt with a token from GetToken; it
// remembers the refused token so that dialToken can stop if it comes back.
func (c *Client) tokenMayHelp(err error) bool {
	if c.opts.GetToken == nil || errors.Is(err, errSameToken) {
		return false
	}
	var he *HandshakeError
	refused := errors.As(err, &he) && he.StatusCode == http.StatusUnauthorized ||
		websocket.CloseStatus(err) == websocket.StatusCode(wire.CloseUnauthorized)
	if !refused {
		return false
	}
	c.tok.mu.Lock()
	c.tok.refused, c.tok.hasRefused = c.tok.last, true
	c.tok.mu.Unlock()
	return true
}

// notice handles an id-0 error frame the client acts on; it reports
// whether it did. The refresh runs on its own goroutine, owned by the
// client (Close waits for it), because GetToken may take a while and the
// read loop must go on.
func (c *Client) notice(f *wire.Frame) bool {
	if f.Code != wire.CodeTokenExpiring || c.opts.GetToken == nil {
		return false
	}
	if c.tok.refreshing.Swap(true) {
		return true // one refresh at a time
	}
	c.wg.Add(1) // the loop, our caller, holds the group open
	go func() {
		defer c.wg.Done()
		defer c.tok.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(c.life, c.opts.DialTimeout)
		defer cancel()
		tok, err := c.opts.GetToken(ctx)
		if err == nil {
			err = c.RefreshToken(ctx, tok)
		}
		if err != nil {
			c.opts.Logger.Warn("wsgate client: token refresh failed; the server will close at expiry", "err", err)
		}
	}()
	return true
}

// RefreshToken sends token to the server for the current connection, so
// that it stays open past the old token's expiry, and waits for the
// server's answer until ctx ends. A token the server refuses (another
// user, expired, invalid) is returned as *Error with wire.CodeForbidden.
// The token is also used for the next reconnect unless GetToken is set.
func (c *Client) RefreshToken(ctx context.Context, token string) error {
	conn, id, cl, err := c.register(len(token))
	if err != nil {
		return err
	}
	if err := c.write(ctx, conn, wire.Frame{Type: wire.TypeRefresh, ID: id, Payload: []byte(token)}); err != nil {
		c.forget(id)
		return err
	}
	select {
	case r := <-cl.done:
		if r.err == nil {
			c.tok.mu.Lock()
			c.tok.last = token
			c.tok.mu.Unlock()
		}
		return r.err
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("wsgate: token refresh: %w", ctx.Err())
	}
}
