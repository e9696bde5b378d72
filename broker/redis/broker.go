package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/wire"
)

// Options configures a Broker. Only URL is required.
type Options struct {
	// URL locates Redis: redis://[[user]:password@]host:port/db, or
	// rediss:// for TLS; query parameters such as dial_timeout are
	// understood (see go-redis ParseURL). A push is never run twice, even
	// with max_retries: one whose reply was lost may have been numbered
	// and sent, and running it again would number it twice. Its failed
	// dial is not retried either: while Redis is down a push gets
	// ErrUnavailable at once and the caller decides. Reads (cursor,
	// history, presence) and acks are retried as go-redis does, so that a
	// connection Redis closed is replaced without the client noticing.
	URL string
	// Prefix starts every key and the channel, so that several gateways
	// can share one Redis. Default "wsgate".
	Prefix string
	// HistorySize bounds the pushes kept per user for resuming clients.
	// Default 256; negative keeps none.
	HistorySize int
	// HistoryBytes bounds the payload bytes kept per user; a larger push
	// is not kept. Default 512 KiB.
	HistoryBytes int64
	// HistoryTTL is how long a push is kept. Default 24 hours.
	HistoryTTL time.Duration
	// StateTTL is how long a user's epoch, sequence and ack outlive the
	// user's last push, ack or connection. Default 30 days.
	StateTTL time.Duration
	// FlushInterval is how often acknowledgements and this node's presence
	// are written and the store is checked. Default 1 s. A node's presence
	// expires after three.
	FlushInterval time.Duration
	// Logger receives connection losses and recoveries. nil discards.
	Logger *slog.Logger
	// Now is the clock that ages history; nil means time.Now. Nodes
	// sharing a Redis should agree on it within seconds.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "wsgate"
	}
	if o.HistorySize == 0 {
		o.HistorySize = 256
	}
	o.HistorySize = max(o.HistorySize, 0)
	if o.HistoryBytes <= 0 {
		o.HistoryBytes = 512 << 10
	}
	if o.HistoryTTL <= 0 {
		o.HistoryTTL = 24 * time.Hour
	}
	if o.StateTTL <= 0 {
		o.StateTTL = 30 * 24 * time.Hour
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Broker is a broker.Broker backed by Redis. Create it with New, hand it to
// wsgate.Config.Broker, and Close it after the Server has shut down.
type Broker struct {
	opts    Options
	rdb     *goredis.Client // everything but pushes: retried as go-redis does
	pub     *goredis.Client // pushes: one attempt (see Options.URL)
	node    string          // this node's id in the presence keys
	channel string
	deliver broker.DeliverFunc
	bound   sync.Once
	running atomic.Bool

	known atomic.Uint64 // the highest write mark this node has seen
	gen   atomic.Value  // string: the store generation last seen

	info atomic.Pointer[func() []byte] // this node's description for the other nodes (SetNodeInfo)

	mu      sync.Mutex     // guards the maps below
	present map[string]int // this node's users and their connection counts
	// seen holds, for each user connected here, the newest position this
	// node delivered (from the channel or a resync): after its
	// subscription was down, the node fetches what came after it, and
	// channel messages at or below it are duplicates. floor is the newest
	// position a connection of the user was greeted at here, where a
	// resync starts for a user nothing was delivered to yet.
	seen  map[string]broker.Position
	floor map[string]broker.Position
	dirty map[string]bool   // users whose count changed since the last flush
	acks  map[ackKey]uint64 // highest ack per user and epoch not yet written
}

var _ broker.Broker = (*Broker)(nil)

// New returns a Broker for opts. It checks the URL but connects to nothing
// and starts nothing: Redis may be down when the gateway starts.
func New(opts Options) (*Broker, error) {
	opts = opts.withDefaults()
	ro, err := goredis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("wsgate: redis broker: %w", err)
	}
	po := *ro
	po.MaxRetries = -1   // see Options.URL
	po.DialerRetries = 1 // one attempt (go-redis's default is 5, 100 ms apart)
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("wsgate: redis broker: node id: %w", err)
	}
	b := &Broker{
		opts:    opts,
		rdb:     goredis.NewClient(ro),
		pub:     goredis.NewClient(&po),
		node:    hex.EncodeToString(id[:]),
		channel: opts.Prefix + ":push",
		present: make(map[string]int),
		seen:    make(map[string]broker.Position),
		floor:   make(map[string]broker.Position),
		dirty:   make(map[string]bool),
		acks:    make(map[ackKey]uint64),
	}
	b.gen.Store("")
	return b, nil
}

// Close releases the Redis connections. Call it after the Server's
// Shutdown, which ends Run.
func (b *Broker) Close() error {
	if err := errors.Join(b.rdb.Close(), b.pub.Close()); err != nil {
		return fmt.Errorf("wsgate: redis broker: close: %w", err)
	}
	return nil
}

// Bind sets the function that delivers to this node's connections.
func (b *Broker) Bind(deliver broker.DeliverFunc) error {
	err := broker.ErrBound
	b.bound.Do(func() { b.deliver, err = deliver, nil })
	return err
}

// Ping asks Redis for a PONG.
func (b *Broker) Ping(ctx context.Context) error {
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("wsgate: redis broker: %w", err)
	}
	return nil
}

func (b *Broker) metaKey() string             { return b.opts.Prefix + ":meta" }
func (b *Broker) stateKey(user string) string { return b.opts.Prefix + ":u:{" + user + "}" }
func (b *Broker) logKey(user string) string   { return b.opts.Prefix + ":u:{" + user + "}:log" }
func (b *Broker) nodeKey(node string) string  { return b.opts.Prefix + ":node:" + node }
func (b *Broker) nodesKey() string            { return b.opts.Prefix + ":nodes" }
func (b *Broker) infoKey(node string) string  { return b.opts.Prefix + ":nodeinfo:" + node }

func seconds(d time.Duration) int64 { return max(int64(d/time.Second), 1) }

func (b *Broker) nowMS() int64 { return b.opts.Now().UnixMilli() }

// userKeys are the keys every user script takes.
func (b *Broker) userKeys(user string) []string {
	return []string{b.metaKey(), b.stateKey(user), b.logKey(user)}
}

// preludeArgs are the arguments every user script starts with (see
// prelude): the write mark this node has seen, and a fresh generation and
// epoch for the script to use if it must start one.
func (b *Broker) preludeArgs(extra ...any) []any {
	args := []any{b.known.Load(), mrand.Uint64N(broker.MaxSeq) + 1, mrand.Uint64N(broker.MaxSeq) + 1, seconds(b.opts.StateTTL)}
	return append(args, extra...)
}

// learn takes in the write mark and generation a script or a channel
// message reported.
func (b *Broker) learn(wm uint64, gen string) {
	for {
		k := b.known.Load()
		if wm <= k || b.known.CompareAndSwap(k, wm) {
			break
		}
	}
	if gen != "" && b.gen.Swap(gen) != gen {
		b.opts.Logger.Info("wsgate: redis broker: store generation", "gen", gen, "wm", wm)
	}
}

// Publish puts m on the channel; every node delivers it after Publish
// returns, so the count is -1. A push to a user is numbered and kept first.
func (b *Broker) Publish(ctx context.Context, m *broker.Message) (int, error) {
	if m.Target.User == "" {
		if err := b.pub.Publish(ctx, b.channel, encode(m)).Err(); err != nil {
			return 0, fmt.Errorf("wsgate: redis broker: publish: %w", err)
		}
		return -1, nil
	}
	u := m.Target.User
	res, err := publishUser.Run(ctx, b.pub, b.userKeys(u), b.preludeArgs(
		b.channel, u, uint32(m.Action), m.Payload, b.opts.HistorySize, b.opts.HistoryBytes,
		b.opts.HistoryTTL.Milliseconds(), b.nowMS())...).StringSlice()
	if err != nil {
		return 0, fmt.Errorf("wsgate: redis broker: publish to %q: %w", u, err)
	}
	p, err := b.position(res)
	if err != nil {
		return 0, fmt.Errorf("wsgate: redis broker: publish to %q: %w", u, err)
	}
	m.Epoch, m.Seq = p.Epoch, p.Seq
	return -1, nil
}

// position reads {epoch, seq, wm, gen} and learns the last two.
func (b *Broker) position(res []string) (broker.Position, error) {
	if len(res) < 4 {
		return broker.Position{}, errors.New("unexpected reply")
	}
	var p broker.Position
	var err1, err2, err3 error
	p.Epoch, err1 = strconv.ParseUint(res[0], 10, 64)
	p.Seq, err2 = strconv.ParseUint(res[1], 10, 64)
	wm, err3 := strconv.ParseUint(res[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return p, err
	}
	b.learn(wm, res[3])
	return p, nil
}

// Cursor returns the user's position, starting an epoch when it has none.
func (b *Broker) Cursor(ctx context.Context, user string) (broker.Position, error) {
	res, err := cursor.Run(ctx, b.rdb, b.userKeys(user), b.preludeArgs()...).StringSlice()
	if err != nil {
		return broker.Position{}, fmt.Errorf("wsgate: redis broker: cursor of %q: %w", user, err)
	}
	p, err := b.position(res)
	if err != nil {
		return p, fmt.Errorf("wsgate: redis broker: cursor of %q: %w", user, err)
	}
	b.greeted(user, p)
	return p, nil
}

// greeted records that a connection of user here starts at p, for a
// resync of a user nothing was delivered to yet. It never filters channel
// messages (only deliveries do, in fresh): two connections greeted at
// once may hold different positions. A connection greeted lower than the
// floor sees a gap at the resync and fills it from the history.
func (b *Broker) greeted(user string, p broker.Position) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.present[user] == 0 {
		return
	}
	if cur, ok := b.floor[user]; !ok || cur.Epoch != p.Epoch || p.Seq > cur.Seq {
		b.floor[user] = p
	}
}

// History reads what a client at from must be sent.
func (b *Broker) History(ctx context.Context, user string, from broker.Position) (broker.History, error) {
	h, err := b.history(ctx, user, from)
	if err == nil {
		b.greeted(user, broker.Position{Epoch: h.Epoch, Seq: h.Last})
	}
	return h, err
}

func (b *Broker) history(ctx context.Context, user string, from broker.Position) (broker.History, error) {
	res, err := history.Run(ctx, b.rdb, b.userKeys(user), b.historyArgs(from)...).Slice()
	return b.historyReply(user, from, res, err)
}

// historyArgs are the history script's arguments for a client at from.
func (b *Broker) historyArgs(from broker.Position) []any {
	return b.preludeArgs(from.Epoch, from.Seq, uint64(broker.MaxSeq), b.opts.HistoryTTL.Milliseconds(), b.nowMS())
}

// historyReply reads one reply of the history script.
func (b *Broker) historyReply(user string, from broker.Position, res []any, err error) (broker.History, error) {
	if err != nil {
		return broker.History{}, fmt.Errorf("wsgate: redis broker: history of %q: %w", user, err)
	}
	h, err := b.parseHistory(user, from, res)
	if err != nil {
		return broker.History{}, fmt.Errorf("wsgate: redis broker: history of %q: %w", user, err)
	}
	return h, nil
}

// userPosition is a user and the position a history starts after.
type userPosition struct {
	user string
	from broker.Position
}

// histories reads the histories of every user in batch in one round trip
// (a pipeline), in batch's order. The caller loads the script first.
func (b *Broker) histories(ctx context.Context, batch []userPosition) ([]broker.History, error) {
	cmds := make([]*goredis.Cmd, len(batch))
	_, _ = b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error { // each command's error is read below
		for i, u := range batch {
			cmds[i] = history.EvalSha(ctx, p, b.userKeys(u.user), b.historyArgs(u.from)...)
		}
		return nil
	})
	out := make([]broker.History, len(batch))
	for i, u := range batch {
		res, err := cmds[i].Slice()
		h, err := b.historyReply(u.user, u.from, res, err)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// parseHistory reads the history script's {epoch, last, wm, gen, entries};
// each entry is {id, {s, seq, a, action, p, payload}}.
func (b *Broker) parseHistory(user string, from broker.Position, res []any) (broker.History, error) {
	if len(res) != 5 {
		return broker.History{}, errors.New("unexpected reply")
	}
	head := make([]string, 4)
	for i := range head {
		head[i], _ = res[i].(string)
	}
	p, err := b.position(head)
	if err != nil {
		return broker.History{}, err
	}
	h := broker.History{Epoch: p.Epoch, Last: p.Seq}
	after := uint64(0)
	if from.Epoch == h.Epoch {
		after = from.Seq
	}
	entries, _ := res[4].([]any)
	for _, e := range entries {
		m, err := parseEntry(user, h.Epoch, e)
		if err != nil {
			return h, err
		}
		if m.Seq > after {
			h.Messages = append(h.Messages, m)
		}
	}
	h.Lost = broker.Lost(from, h.Epoch, h.Last, len(h.Messages))
	return h, nil
}

func parseEntry(user string, epoch uint64, e any) (broker.Message, error) {
	pair, _ := e.([]any)
	if len(pair) != 2 {
		return broker.Message{}, errors.New("malformed history entry")
	}
	fields, _ := pair[1].([]any)
	m := broker.Message{Target: broker.Target{User: user}, Epoch: epoch}
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		switch k {
		case "s":
			m.Seq, _ = strconv.ParseUint(v, 10, 64)
		case "a":
			a, _ := strconv.ParseUint(v, 10, 32)
			m.Action = wire.Action(a)
		case "p":
			m.Payload = []byte(v)
		}
	}
	if m.Seq == 0 || m.Action == 0 {
		return broker.Message{}, errors.New("malformed history entry")
	}
	return m, nil
}

// Ack records at for the next flush; only the highest of an epoch counts.
func (b *Broker) Ack(user string, at broker.Position) {
	b.mu.Lock()
	k := ackKey{user, at.Epoch}
	b.acks[k] = max(b.acks[k], at.Seq)
	b.mu.Unlock()
}

// ackKey keeps the acks of each epoch apart, so that one of an epoch the
// store no longer has cannot hide a valid one.
type ackKey struct {
	user  string
	epoch uint64
}

// Present records this node's connection count of user for the next flush.
func (b *Broker) Present(user string, conns int) {
	b.mu.Lock()
	if conns > 0 {
		b.present[user] = conns
	} else {
		delete(b.present, user)
		delete(b.seen, user)
		delete(b.floor, user)
	}
	b.dirty[user] = true
	b.mu.Unlock()
}

// Status reads the user's position and ack and counts its connections on
// the other live nodes.
func (b *Broker) Status(ctx context.Context, user string) (broker.UserStatus, error) {
	var state *goredis.SliceCmd
	var nodes *goredis.StringSliceCmd
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		state = p.HMGet(ctx, b.stateKey(user), "ep", "seq", "ack")
		nodes = p.ZRangeByScore(ctx, b.nodesKey(), &goredis.ZRangeBy{Min: now, Max: "+inf"})
		return nil
	})
	if err != nil {
		return broker.UserStatus{}, fmt.Errorf("wsgate: redis broker: status of %q: %w", user, err)
	}
	var st broker.UserStatus
	if v := state.Val(); len(v) == 3 {
		st.Epoch, st.Seq, st.Acked = parseUint(v[0]), parseUint(v[1]), parseUint(v[2])
	}
	if st.Conns, err = b.remoteConns(ctx, user, nodes.Val()); err != nil {
		return broker.UserStatus{}, fmt.Errorf("wsgate: redis broker: status of %q: %w", user, err)
	}
	return st, nil
}

// remoteConns sums user's connections on the given nodes other than this one.
func (b *Broker) remoteConns(ctx context.Context, user string, nodes []string) (int, error) {
	cmds := make([]*goredis.StringCmd, 0, len(nodes))
	_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, n := range nodes {
			if n != b.node {
				cmds = append(cmds, p.HGet(ctx, b.nodeKey(n), user))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return 0, err
	}
	total := 0
	for _, c := range cmds {
		if n, err := c.Int(); err == nil {
			total += n
		}
	}
	return total, nil
}

func parseUint(v any) uint64 {
	s, _ := v.(string)
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// SetNodeInfo sets how this node describes itself to the other nodes (the
// admin view's numbers, as JSON): info is called every FlushInterval, on
// the flusher's goroutine, and what it returns is written with the
// presence and expires with it.
func (b *Broker) SetNodeInfo(info func() []byte) {
	b.info.Store(&info)
}

// NodeInfos returns what the other live nodes last set with SetNodeInfo,
// by node id.
func (b *Broker) NodeInfos(ctx context.Context) (map[string][]byte, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	nodes, err := b.rdb.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: b.nodesKey(), Start: now, Stop: "+inf", ByScore: true}).Result()
	if err != nil {
		return nil, fmt.Errorf("wsgate: redis broker: nodes: %w", err)
	}
	var keys, ids []string
	for _, n := range nodes {
		if n != b.node {
			keys, ids = append(keys, b.infoKey(n)), append(ids, n)
		}
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	vals, err := b.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("wsgate: redis broker: node info: %w", err)
	}
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[ids[i]] = []byte(s)
		}
	}
	return out, nil
}
