// Package broker is the contract between a wsgate Server and the store that
// numbers, keeps and carries its pushes: the in-memory broker of a single
// node (package memory) or Redis shared by many nodes (package redis). The
// Server never asks which one it has; a new store (NATS JetStream, Redis
// Cluster) is added by implementing Broker and passing brokertest.Run.
//
// # What a broker guarantees
//
// Sequencing. Every push to a user gets the next sequence number of the
// user's current epoch. An epoch (a number in 1..MaxSeq) names one
// numbering of one user's sequence: within an epoch no number is ever
// handed out twice and numbers have no gaps. A broker starts a new epoch
// for a user, with numbering from 1 again, whenever it cannot prove that
// the numbering continues: the user's state expired or was evicted, the
// store lost its data, or the store came back older than what was already
// handed out (a stale snapshot, a lagging replica). Epochs of one user never
// repeat.
//
// History. A push to a user is recorded before any node delivers it, and
// kept for resuming clients within the broker's bounds (per user by count
// and bytes, by age, and in total). History answers a client's position
// with the retained pushes after it, in order, and says when pushes are
// missing (History.Lost, computed by Lost for every broker): expired,
// evicted, of an epoch that is gone, or beyond a store that is behind the
// client. Silence is never an answer to loss.
//
// Delivery. Every message reaches the DeliverFunc of every node once. A
// user's messages reach each node in sequence order, or with gaps that the
// receiver fills from History; a message delivered is in History already.
//
// Acks and presence. Ack keeps the highest acknowledged sequence of the
// current epoch. Present publishes this node's connection count of a user;
// Status sums the other live nodes' counts, and a node that stops (killed,
// cut off) stops counting within the broker's expiry.
//
// # Locks
//
// A broker never calls deliver while holding a lock that Publish, History
// or another delivery may need, and DeliverFunc never writes to a socket
// under a lock shared by other users (see the wsgate package's lock order).
package broker
