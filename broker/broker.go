package broker

import (
	"context"
	"errors"

	"github.com/wsgate/wsgate/wire"
)

// Broker carries pushes between the gateway nodes that share it and keeps,
// for every user, what a reconnecting client needs. See the package
// documentation for the guarantees every implementation must give; the
// suite in package brokertest checks them.
//
// Ack and Present are called where nothing may block (the engine's
// executor): they only record and return. The other methods may wait for
// the network and honour ctx.
type Broker interface {
	// Bind gives the broker the function that hands messages to this
	// node's connections. The Server calls it once, in wsgate.New, before
	// any other method; a second Bind returns an error (a Broker serves
	// one Server). It must not block or start goroutines.
	Bind(deliver DeliverFunc) error

	// Run does the broker's background work (receiving other nodes'
	// messages, writing acks and presence, expiring history) until ctx is
	// done, then returns nil. The Server calls it once, on a goroutine it
	// owns, and cancels ctx during Shutdown. Deliveries may happen before
	// Run is called (Publish of an in-process broker delivers itself).
	Run(ctx context.Context) error

	// Publish numbers and records a message to a user (Target.User): it
	// sets m.Epoch and m.Seq, and the message is in the user's history
	// before any node delivers it. Every message then reaches deliver on
	// every node, once. Messages to one user are delivered in sequence
	// order on each node, or with gaps the receiver fills from History.
	// Publish returns how many connections had the message queued when
	// delivery happened before it returned, or -1 when it happens later.
	// An error means that no node will deliver the message.
	Publish(ctx context.Context, m *Message) (int, error)

	// Cursor returns the user's current position: its epoch (started now
	// when the user has none, so that a client greeted with it can resume
	// later) and the last sequence numbered in it.
	Cursor(ctx context.Context, user string) (Position, error)

	// History returns what a client that holds from must be sent: the
	// retained messages of the user's current epoch after from.Seq (all of
	// them when from.Epoch is not the current epoch), oldest first, and
	// whether pushes are missing before them (History.Lost). When from is
	// in the current epoch but above its last sequence, the store came
	// back older than the client (or the client is wrong), and it may
	// already have numbered again what the client holds, for pushes this
	// client or another of the user never got: the broker starts a new
	// epoch for the user (History.Epoch differs from from.Epoch) and sets
	// Lost, so that every client of the user is told.
	History(ctx context.Context, user string, from Position) (History, error)

	// Ack records that a client of user handled every push up to at.Seq
	// of at.Epoch. An ack of another epoch or above the last sequence
	// acknowledges nothing and is ignored. It must not block.
	Ack(user string, at Position)

	// Present tells the broker that this node now holds conns connections
	// of user (0 after the last one closed). It must not block.
	Present(user string, conns int)

	// Status returns the user's position, highest acknowledged sequence
	// and connections on the other nodes (this node's own are the
	// Server's to count). It does not start an epoch.
	Status(ctx context.Context, user string) (UserStatus, error)

	// Ping reports whether the shared store answers; /readyz uses it.
	Ping(ctx context.Context) error
}

// DeliverFunc hands a message to this node's connections and returns how
// many had it queued. It never blocks on a connection. It may keep m, and
// the memory its Payload refers to, when m is sequenced (Seq > 0); a
// broker must not change either afterwards.
type DeliverFunc func(ctx context.Context, m *Message) (int, error)

// ErrBound is what Bind returns when the broker already serves a Server.
var ErrBound = errors.New("wsgate: broker already bound to a server")

// Target names the recipients of one Message: exactly one of its fields
// is set. A push to several users travels as one message per user.
type Target struct {
	Conn  string // one connection, by id
	User  string // every connection of a user: sequenced
	Topic string // every subscriber of a topic
	All   bool   // every connection
}

// Message is one push as it travels through a Broker.
type Message struct {
	Target  Target
	Action  wire.Action
	Payload []byte
	// Epoch and Seq place a message to a user in the user's sequence; both
	// are set by Publish and are 0 for every other target.
	Epoch uint64
	Seq   uint64
}

// Position is a place in a user's sequence: the last sequence held in an
// epoch. The zero Position holds nothing.
type Position struct {
	Epoch uint64
	Seq   uint64
}

// History is what a client resuming from a Position must be sent.
type History struct {
	Epoch    uint64    // the user's current epoch
	Last     uint64    // the last sequence numbered in Epoch
	Messages []Message // retained messages of Epoch after the position asked for, oldest first
	// Lost reports that pushes after the position asked for were numbered
	// but are not in Messages: they expired, were evicted, or belong to an
	// epoch the broker no longer has. The client must be told.
	Lost bool
}

// UserStatus describes one user's connections and sequenced delivery.
type UserStatus struct {
	Conns int    `json:"conns"` // open connections (Broker.Status: on the other nodes only)
	Epoch uint64 `json:"epoch"` // the user's current epoch; 0 = none yet
	Seq   uint64 `json:"seq"`   // last sequence numbered in Epoch; 0 = none
	Acked uint64 `json:"acked"` // highest sequence of Epoch a client acknowledged; 0 = none
}

// MaxSeq bounds sequences and epochs: 2⁵³−1 keeps them exact as
// JavaScript numbers and in Redis' Lua, and far from overflowing. A resume
// above it is not honoured.
const MaxSeq = 1<<53 - 1

// Lost computes History.Lost for a broker that has read the user's epoch
// and last sequence and found returned retained messages after from (of
// that epoch; all of them when from is of another one). It is the one
// definition of "pushes lost" that every broker shares: anything numbered
// after the client's position and not returned is lost, wherever the hole
// is (the oldest expired, one too large to keep, the newest evicted).
func Lost(from Position, epoch, last uint64, returned int) bool {
	after := uint64(0) // a client that holds nothing of any epoch wants it all
	switch {
	case from.Epoch == epoch:
		after = from.Seq
	case from.Epoch != 0 || from.Seq != 0:
		return true // the client's numbering is gone
	}
	if after > last {
		return true // the store is behind the client
	}
	return uint64(returned) != last-after
}

// ErrNotConnected is what a DeliverFunc returns for a push to a connection
// that is not on its node; a broker that delivers on every node ignores it.
var ErrNotConnected = errors.New("wsgate: not connected")
