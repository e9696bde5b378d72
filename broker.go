package wsgate

import (
	"context"

	"github.com/wsgate/wsgate/wire"
)

// Broker carries pushes between the gateway nodes that share it and keeps,
// for every user, what a reconnecting client needs: the user's push
// sequence, a bounded history of recent sequenced pushes and the highest
// sequence a client has acknowledged. It also counts each user's
// connections on the other nodes.
//
// Config.Broker nil gives a Server its own in-memory broker: a single node,
// nothing shared, and delivery before Push returns. Package redisbroker
// shares everything through Redis, so that any node can push to any user or
// topic and a client may resume on any node, without sticky sessions.
//
// The Server calls Run once, on a goroutine it owns, when its first
// connection opens, and cancels Run's ctx during Shutdown. The other methods
// are called concurrently from many goroutines. Methods with a ctx may wait
// for the network; Ack and Present are called where nothing may block (the
// engine's executor), so they only record and return.
type Broker interface {
	// Run delivers the messages that any node, this one included,
	// publishes, by calling deliver, until ctx is done; it then returns
	// nil. Messages to one user must be delivered one at a time and in
	// sequence order; other messages may be delivered concurrently. While
	// the shared store is unreachable Run keeps retrying; messages lost
	// meanwhile are recovered for resuming clients from the history, and a
	// connection that sees a gap in a user's sequence fetches the rest.
	//
	// Run calls reset when it finds that the shared state was lost (Redis
	// restarted without persistence): sequences start again from 1, so
	// the Server closes its sequenced connections with 1012, and their
	// clients resume, which raises each user's sequence above what they
	// hold.
	Run(ctx context.Context, deliver DeliverFunc, reset func()) error

	// Publish sends m to every node. A message to a user (Target.User) is
	// given the user's next sequence number in m.Seq and is in the user's
	// history before any node delivers it. Publish returns how many
	// connections had the message queued when delivery happens before it
	// returns (the in-memory broker), or -1 when every node delivers it
	// later. An error means that no node will deliver it.
	Publish(ctx context.Context, m *Message) (int, error)

	// Cursor returns the user's last sequence and the oldest one still
	// retained (0 when nothing is).
	Cursor(ctx context.Context, user string) (Cursor, error)

	// History returns the user's retained messages with a sequence above
	// after, oldest first, and the user's last sequence as it was before
	// the call. When after is above the last sequence — the broker lost
	// its state while the client kept its own — the sequence is raised to
	// after, so that the client's next pushes are numbered above what it
	// holds.
	History(ctx context.Context, user string, after uint64) (History, error)

	// Ack records that a client of user has handled every push up to seq.
	// It must not block.
	Ack(user string, seq uint64)

	// Present tells the broker that this node now holds conns connections
	// of user (0 after the last one closed). It must not block.
	Present(user string, conns int)

	// Status returns the user's last sequence, highest acknowledged
	// sequence and connections on the other nodes (this node's own are the
	// Server's to count).
	Status(ctx context.Context, user string) (UserStatus, error)
}

// DeliverFunc hands a message to this node's connections and returns how
// many had it queued. It may keep m, and the memory its Payload refers to,
// when m is a sequenced message (Seq > 0); a broker must not change either
// afterwards.
type DeliverFunc func(ctx context.Context, m *Message) (int, error)

// Message is one push as it travels through a Broker.
type Message struct {
	// Target names exactly one of Conn, User, Topic or All: a push to
	// several users travels as one message per user.
	Target  Target
	Action  wire.Action
	Payload []byte
	// Seq is the user's sequence number of a message to a user, set by
	// Publish; 0 for every other target.
	Seq uint64
}

// Cursor is where a user's sequence stands.
type Cursor struct {
	Last   uint64 // the last sequence assigned; 0 = none
	Oldest uint64 // the oldest sequence still retained; 0 = none
}

// History is what a Broker retains of one user's pushes.
type History struct {
	Messages []Message // retained messages with a sequence above the one asked for, oldest first
	Last     uint64    // the user's last sequence before the call (see Broker.History)
}

// UserStatus describes one user's connections and sequenced delivery.
type UserStatus struct {
	Conns int    `json:"conns"` // open connections (Broker.Status: on the other nodes only)
	Seq   uint64 `json:"seq"`   // last sequence assigned to a push to the user; 0 = none
	Acked uint64 `json:"acked"` // highest sequence a client of the user acknowledged; 0 = none
}
