package wsgate

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/wire"
)

// This file holds the breakdowns behind Stats that a metrics exporter
// needs: connections by protocol form, closes by code, requests and handler
// latency by action, pushes and push latency by target kind. They are
// fixed-size atomic counters, updated without allocating or locking on the
// hot paths, and labelled only by small closed sets (no user or connection
// ids), so that an exporter cannot grow without bound.

// latencyBounds are the upper bounds of the latency histograms' buckets:
// 50 µs to 10 s, roughly ×2.5 apart.
var latencyBounds = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// LatencyBounds returns the upper bounds of the buckets of every
// Histogram in Stats, in ascending order; a Histogram has one more bucket,
// for everything above the last bound.
func LatencyBounds() []time.Duration { return slices.Clone(latencyBounds[:]) }

// Histogram is a latency distribution over the buckets of LatencyBounds.
type Histogram struct {
	// Counts holds the observations per bucket (not cumulative): Counts[i]
	// those ≤ LatencyBounds()[i] and above the bound before it; the last
	// element those above every bound.
	Counts [len(latencyBounds) + 1]uint64 `json:"counts"`
	Sum    time.Duration                  `json:"sum"` // of every observation
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// histogram is the live, atomic form of a Histogram.
type histogram struct {
	counts [len(latencyBounds) + 1]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

func (h *histogram) snapshot() Histogram {
	var out Histogram
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
	}
	out.Sum = time.Duration(h.sum.Load())
	return out
}

// ProtocolConns counts open /ws connections by the protocol form they
// negotiated.
type ProtocolConns struct {
	Simple int `json:"simple"`         // no subprotocol
	Binary int `json:"wsgate.v1"`      // wsgate.v1
	JSON   int `json:"wsgate.v1.json"` // wsgate.v1.json
}

// CloseCount is how many /ws connections ended with one close code.
type CloseCount struct {
	// Code is the close code of the closing handshake, whichever side
	// started it; 1006 when the connection dropped without one; 0 for
	// every code without its own entry (see Stats.Closes).
	Code  int    `json:"code"`
	Count uint64 `json:"count"`
}

// closeCodes are the codes counted on their own: those the gateway sends
// and those a client or the engine commonly does. Others count under 0.
var closeCodes = [...]wire.CloseCode{
	wire.CloseNormal, wire.CloseGoingAway, wire.CloseProtocolError, wire.CloseUnsupportedData,
	wire.CloseNoStatus, wire.CloseAbnormal, wire.CloseInvalidPayload, wire.ClosePolicyViolation,
	wire.CloseMessageTooBig, wire.CloseInternalError, wire.CloseServiceRestart, wire.CloseTryAgainLater,
	wire.CloseSlowConsumer, wire.CloseIdleTimeout, wire.CloseRateLimited, wire.CloseDraining,
	wire.CloseUnauthorized, wire.CloseForbidden, wire.CloseUnsupportedVersion, wire.CloseReplaced,
}

// closeCounters counts /ws closes by code.
type closeCounters [len(closeCodes) + 1]atomic.Uint64

func (c *closeCounters) add(code int) {
	for i, k := range closeCodes {
		if int(k) == code {
			c[i].Add(1)
			return
		}
	}
	c[len(closeCodes)].Add(1)
}

func (c *closeCounters) snapshot() []CloseCount {
	out := make([]CloseCount, 0, len(c))
	for i := range c {
		code := 0
		if i < len(closeCodes) {
			code = int(closeCodes[i])
		}
		out = append(out, CloseCount{Code: code, Count: c[i].Load()})
	}
	return out
}

// ActionStats describes the requests of one action.
type ActionStats struct {
	// Action is the action code; 0 stands for every action without an
	// entry of its own (unknown actions and those only Config.Fallback
	// answers).
	Action   wire.Action `json:"action"`
	Requests uint64      `json:"requests"` // requests dispatched
	// Latency is the time handler calls took, including a Fallback's and
	// the presence look-up of a shared Broker. Other system actions and
	// unknown actions are answered inline and not timed.
	Latency Histogram `json:"latency"`
}

// actionCounter is the live form of ActionStats.
type actionCounter struct {
	action   wire.Action
	requests atomic.Uint64
	latency  histogram
}

// actionTable holds one actionCounter per registered or system action,
// copy-on-write like the handler map, plus one for everything else.
type actionTable struct {
	mu    sync.Mutex // serialises add
	m     atomic.Pointer[map[wire.Action]*actionCounter]
	other actionCounter
}

// maxCountActions bounds Config.CountActions: each listed action is a
// metrics series per label set, and the list comes from an operator.
const maxCountActions = 256

// systemActions are counted on their own from the start.
var systemActions = [...]wire.Action{wire.ActionSubscribe, wire.ActionUnsubscribe, wire.ActionPresence, wire.ActionPing}

func (t *actionTable) init() {
	m := make(map[wire.Action]*actionCounter, len(systemActions))
	for _, a := range systemActions {
		m[a] = &actionCounter{action: a}
	}
	t.m.Store(&m)
}

// add gives action its own counter (Handle calls it); the set only grows,
// and only with registered actions, so it stays as small as the handler
// map.
func (t *actionTable) add(action wire.Action) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.m.Load()
	if old[action] != nil {
		return
	}
	m := make(map[wire.Action]*actionCounter, len(old)+1)
	for a, c := range old {
		m[a] = c
	}
	m[action] = &actionCounter{action: action}
	t.m.Store(&m)
}

// get returns action's counter, or the shared one of other actions.
func (t *actionTable) get(action wire.Action) *actionCounter {
	if c := (*t.m.Load())[action]; c != nil {
		return c
	}
	return &t.other
}

func (t *actionTable) snapshot() []ActionStats {
	m := *t.m.Load()
	out := make([]ActionStats, 0, len(m)+1)
	for _, c := range m {
		out = append(out, ActionStats{Action: c.action, Requests: c.requests.Load(), Latency: c.latency.snapshot()})
	}
	slices.SortFunc(out, func(a, b ActionStats) int { return int(a.Action) - int(b.Action) })
	return append(out, ActionStats{Requests: t.other.requests.Load(), Latency: t.other.latency.snapshot()})
}

// PushStats describes the pushes this node delivered to one kind of
// target.
type PushStats struct {
	// Messages counts the messages that reached at least one connection
	// here (queued, or buffered for a resuming one); a push to several
	// users counts once per user. Stats.Pushes counts nearly the same,
	// but not messages only buffered.
	Messages  uint64 `json:"messages"`
	Delivered uint64 `json:"delivered"` // connections that had one queued or buffered
	// Latency is, per message in Messages, the time from this node starting
	// its delivery (in Publish with the in-memory broker, on arrival from a
	// shared one) until it was written to, or queued on, the last of its
	// connections here.
	Latency Histogram `json:"latency"`
}

// PushKinds breaks pushes down by the kind of Target.
type PushKinds struct {
	Conn  PushStats `json:"conn"`
	User  PushStats `json:"user"` // Target.User and each of Target.Users
	Topic PushStats `json:"topic"`
	All   PushStats `json:"all"`
}

// targetKind indexes pushCounters.
type targetKind uint8

const (
	kindConn targetKind = iota
	kindUser
	kindTopic
	kindAll
	numKinds
)

// kindOf classifies a delivered message's target (one of Conn, User,
// Topic, All is set).
func kindOf(to *Target) targetKind {
	switch {
	case to.Conn != "":
		return kindConn
	case to.User != "" || len(to.Users) > 0:
		return kindUser
	case to.Topic != "":
		return kindTopic
	}
	return kindAll
}

type pushCounter struct {
	messages, delivered atomic.Uint64
	latency             histogram
}

func (c *pushCounter) snapshot() PushStats {
	return PushStats{Messages: c.messages.Load(), Delivered: c.delivered.Load(), Latency: c.latency.snapshot()}
}

// BrokerOps breaks the Server's calls to its Broker down by operation:
// how long each took and how many failed.
type BrokerOps struct {
	Publish BrokerOp `json:"publish"` // numbering, recording and sending a push
	History BrokerOp `json:"history"` // a resuming or gap-filling connection's replay
	Cursor  BrokerOp `json:"cursor"`  // a new connection's position
	Status  BrokerOp `json:"status"`  // presence and user status look-ups
}

// BrokerOp is one kind of Broker call.
type BrokerOp struct {
	Errors  uint64    `json:"errors"`
	Latency Histogram `json:"latency"`
}

// brokerOp names the Broker calls that are timed.
type brokerOp uint8

const (
	opPublish brokerOp = iota
	opHistory
	opCursor
	opStatus
	numBrokerOps
)

type brokerCounter struct {
	errors  atomic.Uint64
	latency histogram
}

func (c *brokerCounter) snapshot() BrokerOp {
	return BrokerOp{Errors: c.errors.Load(), Latency: c.latency.snapshot()}
}

// observer holds the breakdowns; Server.obs.
type observer struct {
	forms   [numForms]atomic.Int64 // open /ws connections by form
	closes  closeCounters
	actions actionTable
	pushes  [numKinds]pushCounter
	broker  [numBrokerOps]brokerCounter
}

// brokerCall records one Broker call of kind op that began at start.
func (o *observer) brokerCall(op brokerOp, start time.Time, err error) {
	c := &o.broker[op]
	c.latency.observe(time.Since(start))
	if err != nil && !errors.Is(err, ErrNotConnected) {
		c.errors.Add(1)
	}
}

func newObserver(count []wire.Action) *observer {
	o := &observer{}
	o.actions.init()
	for _, a := range count {
		o.actions.add(a)
	}
	return o
}

// pushed records one message this node delivered, beginning at start, to
// n of its connections.
func (o *observer) pushed(kind targetKind, n int, start time.Time) {
	c := &o.pushes[kind]
	if n > 0 {
		c.messages.Add(1)
		c.latency.observe(time.Since(start))
	}
	c.delivered.Add(uint64(n))
}

// requested counts one request for action and returns its counter, in
// which a handler call records its latency.
func (o *observer) requested(action wire.Action) *actionCounter {
	c := o.actions.get(action)
	c.requests.Add(1)
	return c
}

// snapshotInto fills st's breakdowns.
func (o *observer) snapshotInto(st *Stats) {
	st.Protocols = ProtocolConns{
		Simple: int(o.forms[formSimple].Load()),
		Binary: int(o.forms[formBinary].Load()),
		JSON:   int(o.forms[formJSON].Load()),
	}
	st.Closes = o.closes.snapshot()
	st.Actions = o.actions.snapshot()
	st.PushKinds = PushKinds{
		Conn:  o.pushes[kindConn].snapshot(),
		User:  o.pushes[kindUser].snapshot(),
		Topic: o.pushes[kindTopic].snapshot(),
		All:   o.pushes[kindAll].snapshot(),
	}
	st.Broker = BrokerOps{
		Publish: o.broker[opPublish].snapshot(),
		History: o.broker[opHistory].snapshot(),
		Cursor:  o.broker[opCursor].snapshot(),
		Status:  o.broker[opStatus].snapshot(),
	}
}
