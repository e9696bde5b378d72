package wsgate

import (
	"context"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/websocket"
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

// heartbeatPasses is how many times per PingInterval the heartbeat visits
// every connection. One pass per interval would let a connection that was
// written to just before a visit go almost two intervals without a frame;
// with four, a skipped ping is made up at most a quarter interval later.
const heartbeatPasses = 4

// heartbeat keeps every /ws connection hearing from the server at least
// about once per PingInterval, and every live peer answering often enough
// for IdleTimeout. It visits the registry one shard at a time,
// heartbeatPasses times per interval, spreading the pings evenly instead
// of waking every connection at once, and needs no timer per connection. A visit pings a
// connection unless pingRule.skip says it does not need it. Silent
// connections are closed by the engine's IdleTimeout. The first pass of
// each interval also checks the token expiry of the shard's connections
// (the broker's Run expires history on its own).
func (s *Server) heartbeat(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every, perTick := heartbeatTick(s.cfg.PingInterval)
	tick := time.NewTicker(every)
	defer tick.Stop()
	rule := newPingRule(s.cfg.PingInterval, s.cfg.IdleTimeout)
	snap := s.reg.getSnapshot()
	defer s.reg.putSnapshot(snap)
	for visit := 0; ; {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for range perTick {
			s.heartbeatVisit(visit, rule, snap)
			visit = (visit + 1) % (registryShards * heartbeatPasses)
		}
	}
}

// heartbeatTick returns how often the heartbeat ticks and how many of the
// registryShards × heartbeatPasses visits per interval each tick makes.
// Ticks are at least a millisecond apart; an interval too short for one
// visit per tick (tests) makes several per tick rather than stretching.
func heartbeatTick(interval time.Duration) (every time.Duration, perTick int) {
	const visits = registryShards * heartbeatPasses
	interval = max(interval, time.Millisecond)
	perTick = int(min((time.Millisecond*visits+interval-1)/interval, visits))
	return interval * time.Duration(perTick) / visits, perTick
}

// heartbeatVisit is the heartbeat's visit number visit (of
// registryShards × heartbeatPasses per interval) to a registry shard.
func (s *Server) heartbeatVisit(visit int, rule pingRule, snap *[]*session) {
	first := visit < registryShards // the first pass of an interval
	now := time.Now()
	*snap = s.reg.appendShard((*snap)[:0], visit%registryShards)
	for _, sess := range *snap {
		if !rule.skip(now, sess.conn, first) {
			_ = sess.conn.Ping(nil) // fails only when closing; onClose unregisters it
		}
		if first {
			s.checkExpiry(sess, now.UnixNano()) // token expiry is wall-clock time
		}
	}
	clear(*snap)
}

// pingRule decides which pings the heartbeat may skip. A ping has two
// jobs. It gives the peer and every intermediary (proxies, load balancers,
// NAT) a frame at least about once per interval, which any frame does: so
// a connection written to within the last 7/8 of an interval needs no ping
// for that (the next visit comes a quarter interval on, within 9/8 of an
// interval of that write). And it makes a peer that sends nothing else
// answer with a pong, because the engine's IdleTimeout counts only what
// the peer sends: so once per interval (the first pass) a connection is
// also pinged, however recently written to, when it was not read from
// within half the idle timeout (or 7/8 of an interval, if that is longer),
// leaving the pong at least half the timeout to arrive. A connection that
// only receives pushes, more often than the interval, is then pinged about
// once per half idle timeout; a silent one, or a dead one, every interval,
// as without the rule.
type pingRule struct {
	write time.Duration // written to within this long: the peer heard from us
	read  time.Duration // read from within this long: no pong needed yet; 0 = no IdleTimeout
}

func newPingRule(interval, idleTimeout time.Duration) pingRule {
	r := pingRule{write: interval - interval/(2*heartbeatPasses)}
	if idleTimeout > 0 {
		r.read = max(idleTimeout/2, r.write)
	}
	return r
}

// skip reports whether c need not be pinged at now; checkRead is set on
// the pass that also pings for IdleTimeout's sake.
func (r pingRule) skip(now time.Time, c *websocket.Conn, checkRead bool) bool {
	read, write := c.Activity()
	if now.Sub(write) >= r.write {
		return false
	}
	return !checkRead || r.read == 0 || now.Sub(read) < r.read
}
