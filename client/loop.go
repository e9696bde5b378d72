package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// event is one callback invocation for the dispatch goroutine: a push (of
// epoch), a state change (isState), or a pushes-lost notice (lost).
type event struct {
	isState bool
	lost    bool
	push    Push
	epoch   uint64
	state   State
	err     error
	reason  string
}

// defaultBackoffMax is wire.Backoff's default Max.
const defaultBackoffMax = 30 * time.Second

// loop owns the connection: it reads the current one until it ends, then
// reconnects, until Close or a terminal close. It is the only goroutine
// that reads, attaches connections and reports state changes, which keeps
// those events in order.
func (c *Client) loop(conn *websocket.Conn, gen uint64, heartbeat time.Duration) {
	defer c.wg.Done()
	defer close(c.events) // lets dispatch finish after the last event
	attempt := 0
	for {
		start := c.opts.clock.now()
		err := c.readLoop(conn, gen, heartbeat)
		switch {
		case !c.detach(gen, err):
			c.report(StateClosed, nil) // Close was called: not a failure
			return
		case c.opts.DisableReconnect || !closeCode(err).Reconnect() && !c.tokenMayHelp(err):
			c.report(StateClosed, err)
			return
		}
		if c.opts.clock.now().Sub(start) >= c.stableAfter() {
			attempt = 0
		}
		c.report(StateReconnecting, err)
		var hello Hello
		conn, gen, hello, err = c.reconnect(&attempt, closeCode(err))
		if conn == nil {
			if c.life.Err() != nil {
				err = nil // Close was called while reconnecting
			}
			c.report(StateClosed, err)
			return
		}
		heartbeat = hello.Heartbeat
	}
}

// stableAfter is how long a connection must last for the next reconnect to
// start the backoff again (the wire rule: Backoff.Max).
func (c *Client) stableAfter() time.Duration {
	if c.opts.Backoff.Max > 0 {
		return c.opts.Backoff.Max
	}
	return defaultBackoffMax
}

// reconnect dials until a connection is attached, the client is closed
// (nil, ctx error) or the server refuses for good (nil, that error). code
// ended the previous connection: wire.CloseDraining asks for a prompt
// reconnect that does not count as a failure.
func (c *Client) reconnect(attempt *int, code wire.CloseCode) (*websocket.Conn, uint64, Hello, error) {
	for {
		n := *attempt
		if code.Backoff() {
			*attempt++
		} else {
			n = 0
		}
		code = wire.CloseAbnormal // a failed dial is a failure
		if err := c.sleep(c.opts.Backoff.Delay(n, c.opts.clock.rand())); err != nil {
			return nil, 0, Hello{}, err
		}
		conn, hello, err := c.connect(c.life, c.position())
		if err == nil {
			gen, ok := c.attach(conn, hello)
			if !ok { // Close ran while we dialed
				_ = conn.CloseNow() // never used
				return nil, 0, Hello{}, net.ErrClosed
			}
			c.report(StateConnected, nil)
			c.resubscribe(gen)
			return conn, gen, hello, nil
		}
		if terminalError(err) && !c.tokenMayHelp(err) || c.life.Err() != nil {
			return nil, 0, Hello{}, err
		}
		c.opts.Logger.Info("wsgate client: reconnect failed", "url", c.url, "attempt", *attempt, "err", err)
	}
}

// sleep waits d, or returns early with an error when the client is closed.
func (c *Client) sleep(d time.Duration) error {
	timer, stop := c.opts.clock.after(d)
	defer stop()
	select {
	case <-timer:
		return nil
	case <-c.life.Done():
		return c.life.Err()
	}
}

func (c *Client) position() position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return position{epoch: c.epoch, seq: c.lastSeq, known: c.synced}
}

// attach makes conn the current connection under a new generation. It
// refuses (false) once Close has been called.
func (c *Client) attach(conn *websocket.Conn, hello Hello) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, false
	}
	c.gen++
	c.conn, c.hello = conn, hello
	switch {
	case !c.synced:
		// A fresh client starts from the server's last sequence: older
		// pushes were never meant for it.
		c.epoch, c.lastSeq, c.synced = hello.epoch, hello.lastSeq, true
	case hello.epoch != c.epoch:
		// The user's numbering restarted: the server sends this epoch from
		// its start (and says what was lost).
		c.epoch, c.lastSeq = hello.epoch, 0
	}
	return c.gen, true
}

// detach forgets the connection of generation gen and fails its requests
// in flight. It reports whether the client is still open (worth
// reconnecting).
func (c *Client) detach(gen uint64, cause error) bool {
	c.mu.Lock()
	var failed []*call
	for id, cl := range c.pending {
		if cl.gen == gen {
			delete(c.pending, id)
			failed = append(failed, cl)
		}
	}
	c.conn = nil
	open := !c.closed
	c.mu.Unlock()
	err := fmt.Errorf("%w: connection lost: %v", ErrNotConnected, cause)
	for _, cl := range failed {
		cl.done <- result{err: err} // buffered; each call is finished once
	}
	return open
}

// errSilent is read's report that nothing arrived for a heartbeat.
var errSilent = errors.New("wsgate: connection silent")

// readLoop reads conn until it ends and returns why. With a heartbeat it
// applies the protocol's liveness rule: after a heartbeat of silence it
// sends an ActionPing request, and after a second one it declares the
// connection dead (close 4001). The server's WebSocket pings are answered by
// the engine but not seen here, hence the application-level probe.
func (c *Client) readLoop(conn *websocket.Conn, gen uint64, heartbeat time.Duration) error {
	var f wire.Frame
	probing := false
	for {
		typ, data, err := read(conn, heartbeat)
		switch {
		case errors.Is(err, errSilent) && probing:
			_ = conn.Close(websocket.StatusCode(wire.CloseIdleTimeout), "wsgate: no answer to heartbeat") // the read returns the close
			heartbeat = 0                                                                                 // wait for the close; CloseTimeout bounds it
			continue
		case errors.Is(err, errSilent):
			probing = true
			c.probe(conn)
			continue
		case err != nil:
			return err
		}
		probing = false
		if decode(typ, data, &f) != nil {
			_ = conn.Close(websocket.StatusProtocolError, "wsgate: malformed frame") // the read returns the close
			continue
		}
		c.handleFrame(gen, &f)
	}
}

// read returns the next message, or errSilent when none came for heartbeat
// (0 = wait as long as it takes).
func read(conn *websocket.Conn, heartbeat time.Duration) (websocket.MessageType, []byte, error) {
	if heartbeat <= 0 {
		return conn.Read(context.Background()) // ended by the connection closing
	}
	ctx, cancel := context.WithTimeout(context.Background(), heartbeat)
	defer cancel()
	typ, data, err := conn.Read(ctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return 0, nil, errSilent
	}
	return typ, data, err
}

// probe sends an ActionPing request whose reply only proves the connection
// alive; its id is reserved but not registered, so resolve drops the reply.
func (c *Client) probe(conn *websocket.Conn) {
	c.mu.Lock()
	id := c.nextIDLocked()
	c.mu.Unlock()
	buf, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypeRequest, Action: wire.ActionPing, ID: id}) // a request always encodes
	_ = conn.WriteMessage(websocket.BinaryMessage, buf)                                                   // a failed probe ends in the close it would detect
}

// handleFrame routes one frame from the connection of generation gen.
func (c *Client) handleFrame(gen uint64, f *wire.Frame) {
	switch f.Type {
	case wire.TypeReply:
		c.resolve(gen, f.ID, result{payload: clone(f.Payload)})
	case wire.TypeError:
		if f.ID == 0 && f.Code == wire.CodePushesLost {
			c.opts.Logger.Warn("wsgate client: pushes lost", "message", string(f.Payload))
			c.enqueue(event{lost: true, reason: string(f.Payload)})
			return
		}
		if f.ID == 0 {
			if c.notice(f) {
				return
			}
			c.opts.Logger.Warn("wsgate client: server notice", "code", f.Code, "message", string(f.Payload))
			return
		}
		c.resolve(gen, f.ID, result{err: &Error{Code: f.Code, Message: string(f.Payload)}})
	case wire.TypePush:
		if epoch, ok := c.freshPush(f.Seq); ok {
			c.enqueue(event{push: Push{Action: f.Action, Seq: f.Seq, Payload: clone(f.Payload)}, epoch: epoch})
		}
	}
	// Other types (a second hello, frames meant for servers) carry nothing
	// for this client; ignoring them keeps it working with newer servers.
}

// freshPush applies the sequence rules to a push: unsequenced pushes always
// pass; a sequence not above the last one is a duplicate of a replayed
// push; a jump means the server no longer had the pushes in between.
// It returns the epoch the push belongs to.
func (c *Client) freshPush(seq uint64) (uint64, bool) {
	if seq == 0 {
		return 0, true
	}
	c.mu.Lock()
	last, epoch := c.lastSeq, c.epoch
	if seq > last {
		c.lastSeq = seq
	}
	c.mu.Unlock()
	if seq <= last {
		return epoch, false
	}
	if seq > last+1 {
		c.opts.Logger.Warn("wsgate client: sequence jumped", "after", last, "next", seq)
	}
	return epoch, true
}

// enqueue hands a push to the dispatch goroutine. It waits for room (the
// back-pressure OnPush documents) unless the client is closing.
func (c *Client) enqueue(ev event) {
	select {
	case c.events <- ev:
	case <-c.life.Done():
	}
}

// report records a state change and queues its callback. Only the loop
// (and Dial, before the loop starts) calls it, so events stay in order; the
// send waits for room, because a state change must not be lost.
func (c *Client) report(s State, err error) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
	c.events <- event{isState: true, state: s, err: err}
}

// ackEvery bounds how many handled sequenced pushes go unacknowledged while
// more are queued; when the queue runs empty the last one is acked at once.
const ackEvery = 32

// dispatch runs the callbacks, one at a time and in order, and acks
// sequenced pushes once their callback has returned.
func (c *Client) dispatch() {
	defer c.wg.Done()
	var epoch, handled, acked uint64
	for ev := range c.events {
		switch {
		case ev.isState && c.opts.OnStateChange != nil:
			c.opts.OnStateChange(ev.state, ev.err)
		case ev.lost && c.opts.OnPushesLost != nil:
			c.opts.OnPushesLost(ev.reason)
		case !ev.isState && !ev.lost && c.opts.OnPush != nil:
			c.opts.OnPush(ev.push)
		}
		if ev.isState || ev.lost || ev.push.Seq == 0 {
			continue
		}
		if ev.epoch != epoch {
			epoch, handled, acked = ev.epoch, 0, 0 // the numbering restarted
		}
		if ev.push.Seq > handled {
			handled = ev.push.Seq
		}
		if handled > acked && (len(c.events) == 0 || handled-acked >= ackEvery) && c.ack(handled) {
			acked = handled
		}
	}
}

// ack tells the current connection that every push up to seq is handled.
// Without a connection it reports false; the resume of the next one acks.
func (c *Client) ack(seq uint64) bool {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return false
	}
	buf, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypeAck, Seq: seq}) // an ack always encodes
	return conn.WriteMessage(websocket.BinaryMessage, buf) == nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
