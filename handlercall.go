package wsgate

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/wsgate/wsgate/wire"
)

// call is one handler call: its Request, the ctx handed to the handler,
// the bytes of its connection's id and, for a small request, the copy of
// its payload, in one allocation. The deadline and cancellation come from
// the time slot the call started in (deadlines); Value adds the ConnInfo
// for ConnFrom.
type call struct {
	context.Context
	req Request
	id  [maxIDLen]byte          // Request.Conn.ID: written once, never changed
	buf [callPayloadInline]byte // Request.Payload when it fits
}

// callPayloadInline is the largest request payload copied into its call
// rather than into an allocation of its own: most requests are small, and
// a second allocation per request was a visible share of a small request's
// cost.
const callPayloadInline = 64

// Value answers ConnFrom from the call's Request, and everything else from
// the slot's context.
func (c *call) Value(key any) any {
	if _, ok := key.(connInfoKey); ok {
		return c.req.Conn
	}
	return c.Context.Value(key)
}

// newCall prepares a handler call on sess starting at now (Server.now),
// with a copy of payload that becomes the handler's (nil for an empty
// one, as bytes.Clone made it).
func (s *Server) newCall(sess *session, action wire.Action, payload []byte, now int64) *call {
	c := &call{Context: s.deadlines.ctx(now)}
	// Sessions keep their id as a counter; written out here, into the
	// call, it costs no allocation of its own. The string aliases c.id,
	// which nothing writes again: a call is never reused.
	id := s.ids.appendID(c.id[:0], sess.id)
	c.req = Request{Conn: sess.info(unsafe.String(unsafe.SliceData(id), len(id))), Action: action}
	switch {
	case payload == nil:
	case len(payload) <= callPayloadInline:
		c.req.Payload = c.buf[:len(payload):len(payload)]
		copy(c.req.Payload, payload)
	default:
		c.req.Payload = bytes.Clone(payload)
	}
	return c
}

// slotsPerTimeout is how many deadline slots one HandlerTimeout spans: a
// call's deadline is at most HandlerTimeout/slotsPerTimeout later than its
// own would be, and at most slotsPerTimeout+1 slots exist at once.
const slotsPerTimeout = 10

// deadlines gives handler calls their deadline without a timer per call,
// which cost about a tenth of a small request's CPU time: the calls that
// start within one slot (a tenth of the timeout) share one context, whose
// single timer ends it a full timeout after the slot's end. Each call
// therefore gets between HandlerTimeout and 1.1 × HandlerTimeout. A slot's
// context is a child of the server's handler context, so Shutdown's
// cancellation reaches every call, and it unregisters itself from that
// parent when its timer fires: nothing outlives the last call of a slot by
// more than the timeout.
type deadlines struct {
	parent  context.Context
	timeout time.Duration
	width   time.Duration // of one slot

	cur atomic.Pointer[deadlineSlot]
	mu  sync.Mutex // serialises making a new slot
}

// deadlineSlot is the context shared by the calls that start before until
// (Server.now clock).
type deadlineSlot struct {
	until int64
	ctx   context.Context
	// cancel is never called: the slot's timer ends the context, and calls
	// started in the slot may run until then. It is kept so that the
	// context's resources have an owner.
	cancel context.CancelFunc
}

func newDeadlines(parent context.Context, timeout time.Duration) *deadlines {
	return &deadlines{parent: parent, timeout: timeout, width: timeout / slotsPerTimeout}
}

// ctx returns the context of a call starting at now (Server.now clock).
func (d *deadlines) ctx(now int64) context.Context {
	if sl := d.cur.Load(); sl != nil && now < sl.until {
		return sl.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if sl := d.cur.Load(); sl != nil && now < sl.until {
		return sl.ctx // another call made it meanwhile
	}
	ctx, cancel := context.WithTimeout(d.parent, d.width+d.timeout)
	d.cur.Store(&deadlineSlot{until: now + int64(d.width), ctx: ctx, cancel: cancel})
	return ctx
}
