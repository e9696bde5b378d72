package client

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// call is one request awaiting its reply.
type call struct {
	gen  uint64      // connection the request was sent on
	done chan result // buffered (1): whoever finishes the call never blocks
}

type result struct {
	payload []byte
	err     error
}

// Request sends a request for action and waits for its reply payload, until
// ctx ends. An error frame from the server is returned as *Error (match it
// with errors.As and look at Code). While the client is reconnecting, and
// when the connection drops before the reply, it returns an error wrapping
// ErrNotConnected; requests are not retried, because the server may have
// acted on them. A payload over the limit the server announced in hello
// fails with *Error code wire.CodeTooLarge without being sent (the server
// would close the connection with 1009). At most Options.MaxInflight
// requests wait for replies at once; more wait for a slot.
func (c *Client) Request(ctx context.Context, action wire.Action, payload []byte) ([]byte, error) {
	select {
	case c.inflight <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wsgate: request %d: %w", action, ctx.Err())
	}
	defer func() { <-c.inflight }()

	conn, id, cl, err := c.register(len(payload))
	if err != nil {
		return nil, err
	}
	if err := c.write(ctx, conn, wire.Frame{Type: wire.TypeRequest, Action: action, ID: id, Payload: payload}); err != nil {
		c.forget(id)
		return nil, err
	}
	select {
	case r := <-cl.done:
		return r.payload, r.err
	case <-ctx.Done():
		c.forget(id)
		return nil, fmt.Errorf("wsgate: request %d: %w", action, ctx.Err())
	}
}

// Send sends a request for action without asking for a reply (request id
// 0): the server runs the handler and sends nothing back, not even an error.
// It waits, until ctx ends, only for room in the connection's write queue.
func (c *Client) Send(ctx context.Context, action wire.Action, payload []byte) error {
	c.mu.Lock()
	conn, err := c.usableLocked(len(payload))
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.write(ctx, conn, wire.Frame{Type: wire.TypeRequest, Action: action, Payload: payload})
}

// Subscribe subscribes to topic and remembers it: after a reconnect the
// client subscribes again by itself. Errors are *Error with
// wire.CodeForbidden when the token does not allow the topic.
func (c *Client) Subscribe(ctx context.Context, topic string) error {
	if _, err := c.Request(ctx, wire.ActionSubscribe, []byte(topic)); err != nil {
		return err
	}
	c.mu.Lock()
	c.topics[topic] = struct{}{}
	c.mu.Unlock()
	return nil
}

// Unsubscribe ends a subscription and forgets the topic, also when the
// server says it was not subscribed.
func (c *Client) Unsubscribe(ctx context.Context, topic string) error {
	c.mu.Lock()
	delete(c.topics, topic)
	c.mu.Unlock()
	_, err := c.Request(ctx, wire.ActionUnsubscribe, []byte(topic))
	return err
}

// resubscribe subscribes the new connection gen to the remembered topics,
// on a goroutine because the replies arrive through the loop that calls it.
// Failures are logged: the caller of Subscribe has long returned.
func (c *Client) resubscribe(gen uint64) {
	c.mu.Lock()
	topics := make([]string, 0, len(c.topics))
	for t := range c.topics {
		topics = append(topics, t)
	}
	c.mu.Unlock()
	if len(topics) == 0 {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for _, t := range topics {
			ctx, cancel := context.WithTimeout(c.life, c.opts.DialTimeout)
			_, err := c.Request(ctx, wire.ActionSubscribe, []byte(t))
			cancel()
			if err != nil {
				c.opts.Logger.Warn("wsgate client: resubscribe failed", "topic", t, "generation", gen, "err", err)
			}
		}
	}()
}

// register reserves a request id on the current connection.
func (c *Client) register(size int) (*websocket.Conn, uint32, *call, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, err := c.usableLocked(size)
	if err != nil {
		return nil, 0, nil, err
	}
	id := c.nextIDLocked()
	cl := &call{gen: c.gen, done: make(chan result, 1)}
	c.pending[id] = cl
	return conn, id, cl, nil
}

// usableLocked returns the connection to send a payload of size bytes on.
func (c *Client) usableLocked(size int) (*websocket.Conn, error) {
	switch {
	case c.closed:
		return nil, fmt.Errorf("wsgate: client closed: %w", net.ErrClosed)
	case c.conn == nil:
		return nil, ErrNotConnected
	case c.hello.MaxMessage > 0 && size+requestOverhead > c.hello.MaxMessage:
		// Sending it would make the server close the connection with 1009.
		return nil, &Error{Code: wire.CodeTooLarge, Message: fmt.Sprintf("request of %d bytes exceeds the server's limit of %d", size, c.hello.MaxMessage-requestOverhead)}
	}
	return c.conn, nil
}

// requestOverhead is the request frame header: type, action, id.
const requestOverhead = 9

// nextIDLocked returns an id that is not 0 (no reply wanted) and not in use.
func (c *Client) nextIDLocked() uint32 {
	for {
		c.nextID++
		if _, busy := c.pending[c.nextID]; c.nextID != 0 && !busy {
			return c.nextID
		}
	}
}

// forget drops a call that no longer waits (its ctx ended or its frame was
// not sent); a late reply to it is ignored.
func (c *Client) forget(id uint32) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// resolve finishes the call id with r if it was sent on connection gen; a
// reply for a call that gave up, or from an older connection, is dropped.
func (c *Client) resolve(gen uint64, id uint32, r result) {
	c.mu.Lock()
	cl, ok := c.pending[id]
	if ok && cl.gen == gen {
		delete(c.pending, id)
	} else {
		cl = nil
	}
	c.mu.Unlock()
	if cl != nil {
		cl.done <- r
	}
}

// write sends f on conn, waiting until ctx ends for room in the write
// queue. A connection that closed meanwhile gives ErrNotConnected.
func (c *Client) write(ctx context.Context, conn *websocket.Conn, f wire.Frame) error {
	err := writeFrame(ctx, conn, &f)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("wsgate: request %d: %w", f.Action, err)
	default:
		return fmt.Errorf("%w: %v", ErrNotConnected, err)
	}
}
