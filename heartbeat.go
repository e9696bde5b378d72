package wsgate

import (
	"context"
	"fmt"
	"time"
)

// startBackground starts the heartbeat goroutine and the Broker's Run when
// the Server starts serving (Serve) or with the first connection (a Server
// only mounted through Handler()), so that New starts nothing.
// It does nothing once running or after Shutdown.
func (s *Server) startBackground() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.heartbeatStop != nil || s.shutdownDone != nil {
		return
	}
	s.heartbeatStop = make(chan struct{})
	s.heartbeatDone = make(chan struct{})
	go s.heartbeat(s.heartbeatStop, s.heartbeatDone)
	var ctx context.Context
	ctx, s.brokerStop = context.WithCancel(context.Background())
	s.brokerDone = make(chan struct{})
	go s.runBroker(ctx, s.brokerDone)
}

// runBroker runs the Broker until ctx ends.
func (s *Server) runBroker(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	if err := s.broker.Run(ctx); err != nil {
		s.cfg.Logger.Error("wsgate: broker stopped", "err", err)
	}
}

// stopBroker ends the Broker's Run and waits for it, bounded by ctx.
func (s *Server) stopBroker(ctx context.Context) error {
	s.mu.Lock()
	stop, done := s.brokerStop, s.brokerDone
	s.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the broker: %w", ctx.Err())
	}
}

// stopHeartbeat stops the heartbeat goroutine and waits for it, bounded by
// ctx.
func (s *Server) stopHeartbeat(ctx context.Context) error {
	s.mu.Lock()
	stop, done := s.heartbeatStop, s.heartbeatDone
	s.mu.Unlock()
	if stop == nil {
		return nil
	}
	close(stop)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for heartbeat: %w", ctx.Err())
	}
}

// heartbeat pings every /ws connection once per PingInterval. It visits one
// registry shard per tick, spreading the pings evenly over the interval
// instead of waking every connection at once, and needs no timer per
// connection. Silent connections are closed by the engine's IdleTimeout.
// Each tick also checks the token expiry of the shard's connections (the
// broker's Run expires history on its own).
func (s *Server) heartbeat(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(max(s.cfg.PingInterval/registryShards, time.Millisecond))
	defer tick.Stop()
	snap := s.reg.getSnapshot()
	defer s.reg.putSnapshot(snap)
	for shard := 0; ; shard = (shard + 1) % registryShards {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		now := time.Now().UnixNano() // token expiry is wall-clock time
		*snap = s.reg.appendShard((*snap)[:0], shard)
		for _, sess := range *snap {
			_ = sess.conn.Ping(nil) // fails only when closing; onClose unregisters it
			s.checkExpiry(sess, now)
		}
		clear(*snap)
	}
}
