package wsgate

import (
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// Hooks for the external tests.

// ParallelFanoutMin is the open-connection count from which a broadcast
// is split over goroutines.
const ParallelFanoutMin = parallelFanoutMin

// SetTopicSplitMin sets the subscriber count from which a topic push is
// split over goroutines, so a test can split a push to a few.
func SetTopicSplitMin(s *Server, n int) { s.splitMin = n }

// AddOpenConns adds n to the gauge of open connections (MaxConns and the
// fanout split read it), so a test can make a few connections look many.
func AddOpenConns(s *Server, n int64) { s.ctr.open.Add(n) }

// PushPastLockedStripe runs what a topic push does when its write batch
// holds the write lock of user's (ready) connection, while another push
// to user holds the user's sync stripe and waits to write to that same
// connection, and the topic push then meets a connection of user that is
// not ready yet (reachable waits for the stripe). It reports whether the
// push got past that within limit; false is a deadlock.
func PushPastLockedStripe(s *Server, user string, limit time.Duration) bool {
	conns := s.reg.appendUser(nil, user)
	ready := conns[0]
	notReady := &session{identity: connIdentity{UserID: user}, form: ready.form}
	p := pusher{s: s, action: 150, payload: []byte("topic"), batched: true}
	p.send(ready) // the batch now holds ready's write lock
	st := s.helloStripe(notReady)
	frame, err := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypePush, Action: 151, Payload: []byte("user push")})
	if err != nil {
		panic(err)
	}
	pm, err := websocket.NewPreparedMessage(websocket.BinaryMessage, frame)
	if err != nil {
		panic(err)
	}
	locked := make(chan struct{})
	other := make(chan struct{})
	go func() { // the push to user: under its stripe, queue on its connection
		defer close(other)
		st.mu.Lock()
		close(locked)
		_ = ready.conn.Enqueue(pm)
		st.mu.Unlock()
		ready.conn.Flush()
	}()
	<-locked
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.deliver(notReady)
		p.batch.Send()
	}()
	select {
	case <-done:
		<-other
		return true
	case <-time.After(limit):
		return false // both goroutines stay stuck: the test binary is failing anyway
	}
}
