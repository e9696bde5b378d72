package redis

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/wire"
)

// Timing of the subscription: how long to wait for Redis to confirm it,
// and how long a silent subscription goes before it is pinged (a second
// silent period without the pong means the connection is dead).
const (
	confirmTimeout = 5 * time.Second
	pingAfter      = 5 * time.Second
	cleanupTimeout = 2 * time.Second
)

// reconnect spaces the subscriber's attempts: 50–100 ms at first, doubling
// up to 2.5–5 s, with the protocol's equal jitter so that the nodes do not
// all come back at once.
var reconnect = wire.Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second}

// Run delivers the channel's messages to the bound DeliverFunc and writes
// acks and this node's presence every FlushInterval until ctx ends. It owns
// the flusher goroutine and waits for it; on the way out it writes what is
// pending and removes this node's presence. A Broker runs once.
func (b *Broker) Run(ctx context.Context) error {
	if b.deliver == nil {
		return errors.New("wsgate: redis broker: Run before Bind")
	}
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("wsgate: redis broker: Run called twice")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.flushLoop(ctx)
	}()
	sub := &subscriber{b: b}
	sub.loop(ctx)
	wg.Wait()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := b.flush(cctx); err != nil {
		b.opts.Logger.Warn("wsgate: redis broker: acks and presence not written at exit", "err", err)
	}
	b.leave(cctx)
	return nil
}

// subscriber is the state of Run's subscription loop.
type subscriber struct {
	b *Broker
}

// loop subscribes again after every failure, with backoff, until ctx ends.
func (s *subscriber) loop(ctx context.Context) {
	attempt := 0
	for {
		subscribed, err := s.run(ctx)
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			attempt = 0
		}
		s.b.opts.Logger.Warn("wsgate: redis broker: subscription lost; reconnecting", "err", err, "attempt", attempt)
		t := time.NewTimer(reconnect.Delay(attempt, rand.Float64()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		attempt++
	}
}

// run subscribes once and delivers until the subscription fails. It
// reports whether it got as far as a confirmed subscription.
func (s *subscriber) run(ctx context.Context) (bool, error) {
	ps := s.b.rdb.Subscribe(ctx, s.b.channel)
	defer func() { _ = ps.Close() }() // the connection is broken or we are leaving
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	msg, err := ps.ReceiveTimeout(ctx, confirmTimeout)
	if err != nil {
		return false, err
	}
	if _, ok := msg.(*goredis.Subscription); !ok {
		return false, errors.New("wsgate: redis broker: no subscription confirmation")
	}
	if err := s.b.check(ctx); err != nil {
		return false, err
	}
	if err := s.resync(ctx); err != nil {
		return false, err
	}
	s.b.opts.Logger.Info("wsgate: redis broker: subscribed", "channel", s.b.channel)
	silent := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingAfter)
		switch {
		case err != nil && (!isTimeout(err) || silent):
			return true, err
		case err != nil:
			silent = true
			if err := ps.Ping(ctx); err != nil {
				return true, err
			}
		default:
			silent = false
			if m, ok := msg.(*goredis.Message); ok {
				s.handle(ctx, m.Payload)
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// check compares the store's write mark with this node's, starting a new
// generation when the store came back older or empty (see prelude), and
// learns the mark and generation.
func (b *Broker) check(ctx context.Context) error {
	res, err := check.Run(ctx, b.rdb, []string{b.metaKey()}, b.known.Load(), rand.Uint64N(broker.MaxSeq)+1).StringSlice()
	if err != nil {
		return err
	}
	if len(res) != 2 {
		return errors.New("wsgate: redis broker: unexpected check reply")
	}
	wm, err := strconv.ParseUint(res[0], 10, 64)
	if err != nil {
		return err
	}
	b.learn(wm, res[1])
	return nil
}

// handle delivers one channel message. A push to a connection on another
// node is not an error here.
func (s *subscriber) handle(ctx context.Context, payload string) {
	m, wm, err := decode(payload)
	if err != nil {
		s.b.opts.Logger.Warn("wsgate: redis broker: dropping a malformed message", "err", err)
		return
	}
	s.b.learn(wm, "")
	if m.Target.User != "" && !s.b.fresh(m) {
		return // resync delivered it already
	}
	s.deliver(ctx, m)
}

func (s *subscriber) deliver(ctx context.Context, m *broker.Message) {
	if _, err := s.b.deliver(ctx, m); err != nil && !errors.Is(err, broker.ErrNotConnected) {
		s.b.opts.Logger.Warn("wsgate: redis broker: delivering a push", "err", err)
	}
}

// fresh records a user message about to be delivered and reports whether
// it is new to this node: not at or below what resync delivered.
func (b *Broker) fresh(m *broker.Message) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.present[m.Target.User] == 0 {
		return true // nobody here to have seen it: the Server drops it
	}
	cur, ok := b.seen[m.Target.User]
	if ok && cur.Epoch == m.Epoch && m.Seq <= cur.Seq {
		return false
	}
	b.seen[m.Target.User] = broker.Position{Epoch: m.Epoch, Seq: m.Seq}
	return true
}

// resyncBatch is how many users' histories resync fetches per round
// trip.
const resyncBatch = 256

// resync runs once the subscription is confirmed, before any channel
// message is handled: pushes published while this node was not
// subscribed (Redis down, the subscriber backing off) are fetched from
// the history, for every user connected here, and delivered in order, so
// that no connection waits for its user's next push to notice them. The
// histories are fetched resyncBatch users per pipeline: the channel's
// messages wait in Redis's output buffer meanwhile, and a resync of one
// round trip per user could outlast its limit on a node with many users.
func (s *subscriber) resync(ctx context.Context) error {
	s.b.mu.Lock()
	users := make([]userPosition, 0, len(s.b.present))
	for u := range s.b.present {
		if p, ok := s.b.seen[u]; ok {
			users = append(users, userPosition{u, p})
		} else if p, ok := s.b.floor[u]; ok {
			users = append(users, userPosition{u, p})
		}
	}
	s.b.mu.Unlock()
	if len(users) == 0 {
		return nil
	}
	if err := history.Load(ctx, s.b.rdb).Err(); err != nil {
		return err
	}
	for batch := range slices.Chunk(users, resyncBatch) {
		hs, err := s.b.histories(ctx, batch)
		if err != nil {
			return err
		}
		for _, h := range hs {
			for i := range h.Messages {
				if m := &h.Messages[i]; s.b.fresh(m) {
					s.deliver(ctx, m)
				}
			}
		}
	}
	return nil
}

// flushLoop writes acks and presence every FlushInterval until ctx ends.
func (b *Broker) flushLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.FlushInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fctx, cancel := context.WithTimeout(ctx, max(b.opts.FlushInterval, cleanupTimeout))
		err := b.flush(fctx)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			b.opts.Logger.Warn("wsgate: redis broker: writing acks and presence failed; retrying", "err", err)
		case err == nil && failing:
			b.opts.Logger.Info("wsgate: redis broker: acks and presence written again")
		}
		failing = err != nil
	}
}

// flush checks the store and writes the pending acks and presence
// changes; what fails stays pending for the next flush.
func (b *Broker) flush(ctx context.Context) error {
	errCheck := b.check(ctx)
	acks, dirty := b.take()
	errAcks := b.writeAcks(ctx, acks)
	if errAcks != nil {
		b.mu.Lock()
		for k, seq := range acks {
			b.acks[k] = max(b.acks[k], seq)
		}
		b.mu.Unlock()
	}
	errPresence := b.writePresence(ctx, dirty)
	if errPresence != nil {
		b.mu.Lock()
		for u := range dirty {
			b.dirty[u] = true
		}
		b.mu.Unlock()
	}
	return errors.Join(errCheck, errAcks, errPresence)
}

// take empties the pending acks and changed users, with their counts now.
// The maps it returns are the caller's alone: Ack keeps writing to a new
// one meanwhile.
func (b *Broker) take() (map[ackKey]uint64, map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	acks := b.acks
	b.acks = make(map[ackKey]uint64, len(acks))
	dirty := make(map[string]int, len(b.dirty))
	for u := range b.dirty {
		dirty[u] = b.present[u]
	}
	clear(b.dirty)
	return acks, dirty
}

// writeAcks runs the ack script for every user, in one pipeline.
func (b *Broker) writeAcks(ctx context.Context, acks map[ackKey]uint64) error {
	if len(acks) == 0 {
		return nil
	}
	ttl := seconds(b.opts.StateTTL)
	for try := 0; ; try++ {
		_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for k, seq := range acks {
				ack.EvalSha(ctx, p, []string{b.stateKey(k.user)}, k.epoch, seq, ttl)
			}
			return nil
		})
		if err == nil || try > 0 || !goredis.HasErrorPrefix(err, "NOSCRIPT") {
			return err
		}
		if err := ack.Load(ctx, b.rdb).Err(); err != nil {
			return err
		}
	}
}

// writePresence writes the changed counts into this node's hash and
// renews the hash and the node's entry in the node set. When the hash was
// gone (Redis restarted, or this node was cut off for longer than the
// expiry) every count is written again.
func (b *Broker) writePresence(ctx context.Context, dirty map[string]int) error {
	key := b.nodeKey(b.node)
	ttl := 3 * b.opts.FlushInterval
	now := time.Now()
	var exists *goredis.IntCmd
	_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		exists = p.Exists(ctx, key)
		writeCounts(ctx, p, key, dirty)
		p.PExpire(ctx, key, ttl)
		if f := b.info.Load(); f != nil {
			if info := (*f)(); info != nil {
				p.Set(ctx, b.infoKey(b.node), info, ttl)
			}
		}
		p.ZAdd(ctx, b.nodesKey(), goredis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: b.node})
		p.ZRemRangeByScore(ctx, b.nodesKey(), "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
		return nil
	})
	if err != nil || exists.Val() == 1 {
		return err
	}
	b.mu.Lock()
	all := make(map[string]int, len(b.present))
	for u, n := range b.present {
		all[u] = n
	}
	b.mu.Unlock()
	if len(all) == 0 {
		return nil
	}
	_, err = b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		writeCounts(ctx, p, key, all)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	return err
}

// writeCounts queues HSET for positive counts and HDEL for zeros.
func writeCounts(ctx context.Context, p goredis.Pipeliner, key string, counts map[string]int) {
	for u, n := range counts {
		if n > 0 {
			p.HSet(ctx, key, u, n)
		} else {
			p.HDel(ctx, key, u)
		}
	}
}

// leave removes this node's presence, so that its connections stop
// counting at once instead of after the expiry.
func (b *Broker) leave(ctx context.Context) {
	_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, b.nodeKey(b.node), b.infoKey(b.node))
		p.ZRem(ctx, b.nodesKey(), b.node)
		return nil
	})
	if err != nil {
		b.opts.Logger.Warn("wsgate: redis broker: removing this node's presence", "err", err)
	}
}
