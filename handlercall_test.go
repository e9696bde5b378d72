package wsgate

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadlineSlots checks that calls starting within one slot share a
// context, that a later call gets a new one, that no call gets less than
// the timeout, and that cancelling the parent reaches every slot.
func TestDeadlineSlots(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	const timeout = time.Hour
	d := newDeadlines(parent, timeout)
	width := int64(timeout / slotsPerTimeout)

	start := time.Now()
	a := d.ctx(1000)
	b := d.ctx(1000 + width - 1)
	if a != b {
		t.Error("calls in one slot: got two contexts, want one")
	}
	c := d.ctx(1000 + width)
	if c == a {
		t.Error("call after the slot: got the old context, want a new one")
	}
	for i, ctx := range []context.Context{a, c} {
		dl, ok := ctx.Deadline()
		if got := dl.Sub(start); !ok || got < timeout || got > timeout+timeout/slotsPerTimeout+time.Minute {
			t.Errorf("slot %d: deadline %v after the call, ok=%v; want between %v and %v", i, got, ok, timeout, timeout+timeout/slotsPerTimeout)
		}
	}
	cancel()
	for i, ctx := range []context.Context{a, c} {
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.Canceled) {
				t.Errorf("slot %d after the parent's cancel: got %v, want context.Canceled", i, ctx.Err())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("slot %d: not cancelled with its parent", i)
		}
	}
}

// TestDeadlineSlotExpires checks that a slot's context ends with
// DeadlineExceeded once its timer fires.
func TestDeadlineSlotExpires(t *testing.T) {
	d := newDeadlines(context.Background(), 20*time.Millisecond)
	ctx := d.ctx(1)
	select {
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("got %v, want context.DeadlineExceeded", ctx.Err())
		}
	case <-time.After(10 * time.Second):
		t.Error("slot context did not expire")
	}
}

// TestCallContext checks what a handler's ctx carries: its ConnInfo, the
// values of the parent, and the slot's deadline.
func TestCallContext(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	d := newDeadlines(parent, time.Minute)
	c := &call{Context: d.ctx(1), req: Request{Conn: ConnInfo{ID: "c1", UserID: "u"}}}
	if info, ok := ConnFrom(c); !ok || info.ID != "c1" || info.UserID != "u" {
		t.Errorf("ConnFrom: got %+v %v, want c1/u", info, ok)
	}
	if got := c.Value(key{}); got != "v" {
		t.Errorf("parent value: got %v, want v", got)
	}
	if _, ok := c.Deadline(); !ok {
		t.Error("Deadline: got none, want the slot's")
	}
	child, cancel := context.WithCancel(c)
	defer cancel()
	if info, ok := ConnFrom(child); !ok || info.ID != "c1" {
		t.Errorf("ConnFrom of a derived ctx: got %+v %v, want c1", info, ok)
	}
}
