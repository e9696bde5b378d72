package wsgate

import (
	"context"
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// drainTick is how often a drain closes its next share of connections.
const drainTick = 50 * time.Millisecond

// drainReason is the close reason of a drained connection.
const drainReason = "wsgate: server draining; reconnect"

// drain closes every /ws connection with CloseDraining, in equal shares
// every drainTick over Config.DrainPeriod, so that the nodes taking the
// clients over see a steady stream of handshakes rather than all of them
// at once. The period shrinks to nine tenths of what is left of ctx, so
// that the close handshakes fit. It runs on Shutdown's goroutine and
// returns when every connection has been asked to close or ctx ends.
func (s *Server) drain(ctx context.Context) {
	period := s.cfg.DrainPeriod
	if deadline, ok := ctx.Deadline(); ok {
		period = min(period, time.Until(deadline)*9/10)
	}
	if period <= 0 {
		return
	}
	var sessions []*session
	for i := range registryShards {
		sessions = s.reg.appendShard(sessions, i)
	}
	if len(sessions) == 0 {
		return
	}
	s.cfg.Logger.Info("wsgate: draining", "conns", len(sessions), "period", period)
	tick := time.NewTicker(drainTick)
	defer tick.Stop()
	for ticks := max(int(period/drainTick), 1); ; ticks-- {
		n := (len(sessions) + ticks - 1) / ticks // the rest spreads over the ticks left; the last tick takes all
		for _, sess := range sessions[:n] {
			// An error means the connection is closing already.
			_ = sess.conn.Close(websocket.StatusCode(wire.CloseDraining), drainReason)
		}
		clear(sessions[:n]) // let closed sessions go
		sessions = sessions[n:]
		if len(sessions) == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return // Shutdown closes the rest with 1001
		}
	}
}
