package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/wire"
)

// maxRaise bounds how far a resume may raise a user's sequence, as in the
// in-memory broker: sequences stay exact in Lua and JavaScript numbers.
const maxRaise = 1 << 53

// Options configures a Broker. Only URL is required.
type Options struct {
	// URL locates Redis: redis://[[user]:password@]host:port/db, or
	// rediss:// for TLS; query parameters such as dial_timeout and
	// max_retries are understood (see go-redis ParseURL).
	URL string
	// Prefix starts every key and the channel, so that several gateways
	// can share one Redis. Default "wsgate".
	Prefix string
	// HistorySize bounds the pushes kept per user for resuming clients.
	// Default 256; negative keeps none.
	HistorySize int
	// HistoryTTL is how long a push is kept. Default 10 minutes.
	HistoryTTL time.Duration
	// StateTTL is how long a user's sequence and ack outlive the user's
	// last push, ack or resume. Default 30 days.
	StateTTL time.Duration
	// FlushInterval is how often acknowledgements and this node's presence
	// are written. Default 1 s. A node's presence expires after three.
	FlushInterval time.Duration
	// Logger receives connection losses and recoveries. nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "wsgate"
	}
	if o.HistorySize == 0 {
		o.HistorySize = 256
	}
	if o.HistorySize < 0 {
		o.HistorySize = 0
	}
	if o.HistoryTTL <= 0 {
		o.HistoryTTL = 10 * time.Minute
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
	return o
}

// Broker is a wsgate.Broker backed by Redis. Create it with New, hand it to
// wsgate.Config.Broker, and Close it after the Server has shut down.
type Broker struct {
	opts    Options
	rdb     *redis.Client
	node    string // this node's id in the presence keys
	channel string
	running atomic.Bool

	mu      sync.Mutex        // guards the three maps
	present map[string]int    // this node's users and their connection counts
	dirty   map[string]bool   // users whose count changed since the last flush
	acks    map[string]uint64 // highest ack per user not yet written
}

var _ wsgate.Broker = (*Broker)(nil)

// New returns a Broker for opts. It checks the URL but connects to nothing
// and starts nothing: Redis may be down when the gateway starts.
func New(opts Options) (*Broker, error) {
	opts = opts.withDefaults()
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redisbroker: %w", err)
	}
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("redisbroker: node id: %w", err)
	}
	return &Broker{
		opts:    opts,
		rdb:     redis.NewClient(ro),
		node:    hex.EncodeToString(id[:]),
		channel: opts.Prefix + ":push",
		present: make(map[string]int),
		dirty:   make(map[string]bool),
		acks:    make(map[string]uint64),
	}, nil
}

// Close releases the Redis connections. Call it after the Server's
// Shutdown, which ends Run.
func (b *Broker) Close() error {
	if err := b.rdb.Close(); err != nil {
		return fmt.Errorf("redisbroker: close: %w", err)
	}
	return nil
}

func (b *Broker) stateKey(user string) string { return b.opts.Prefix + ":u:{" + user + "}" }
func (b *Broker) logKey(user string) string   { return b.opts.Prefix + ":u:{" + user + "}:log" }
func (b *Broker) nodeKey(node string) string  { return b.opts.Prefix + ":node:" + node }
func (b *Broker) nodesKey() string            { return b.opts.Prefix + ":nodes" }
func (b *Broker) epochKey() string            { return b.opts.Prefix + ":epoch" }

func seconds(d time.Duration) int64 { return max(int64(d/time.Second), 1) }

// Publish puts m on the channel; every node delivers it after Publish
// returns, so the count is -1. A push to a user is numbered and kept first.
func (b *Broker) Publish(ctx context.Context, m *wsgate.Message) (int, error) {
	if m.Target.User == "" {
		if err := b.rdb.Publish(ctx, b.channel, encode(m)).Err(); err != nil {
			return 0, fmt.Errorf("redisbroker: publish: %w", err)
		}
		return -1, nil
	}
	u := m.Target.User
	seq, err := publishUser.Run(ctx, b.rdb, []string{b.stateKey(u), b.logKey(u)},
		b.channel, u, uint32(m.Action), m.Payload, b.opts.HistorySize,
		b.opts.HistoryTTL.Milliseconds(), seconds(b.opts.StateTTL)).Text()
	if err != nil {
		return 0, fmt.Errorf("redisbroker: publish to %q: %w", u, err)
	}
	if m.Seq, err = strconv.ParseUint(seq, 10, 64); err != nil {
		return 0, fmt.Errorf("redisbroker: publish to %q: sequence %q: %w", u, seq, err)
	}
	return -1, nil
}

// Cursor reads the user's last sequence and oldest retained push.
func (b *Broker) Cursor(ctx context.Context, user string) (wsgate.Cursor, error) {
	var last *redis.StringCmd
	var first *redis.XMessageSliceCmd
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		last = p.HGet(ctx, b.stateKey(user), "seq")
		first = p.XRangeN(ctx, b.logKey(user), "-", "+", 1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return wsgate.Cursor{}, fmt.Errorf("redisbroker: cursor of %q: %w", user, err)
	}
	var c wsgate.Cursor
	if v, err := last.Uint64(); err == nil {
		c.Last = v
	}
	if msgs := first.Val(); len(msgs) > 0 {
		c.Oldest, _ = strconv.ParseUint(fmt.Sprint(msgs[0].Values["s"]), 10, 64)
	}
	return c, nil
}

// History reads the user's retained pushes after after.
func (b *Broker) History(ctx context.Context, user string, after uint64) (wsgate.History, error) {
	res, err := history.Run(ctx, b.rdb, []string{b.stateKey(user), b.logKey(user)},
		after, uint64(maxRaise), seconds(b.opts.StateTTL), b.opts.HistoryTTL.Milliseconds()).Slice()
	if err != nil {
		return wsgate.History{}, fmt.Errorf("redisbroker: history of %q: %w", user, err)
	}
	h, err := parseHistory(user, after, res)
	if err != nil {
		return wsgate.History{}, fmt.Errorf("redisbroker: history of %q: %w", user, err)
	}
	return h, nil
}

// parseHistory reads the history script's {last, entries}; each entry is
// {id, {field, value, ...}} with fields s (sequence), a (action), p (payload).
func parseHistory(user string, after uint64, res []any) (wsgate.History, error) {
	var h wsgate.History
	if len(res) != 2 {
		return h, errors.New("unexpected reply")
	}
	last, _ := res[0].(string)
	var err error
	if h.Last, err = strconv.ParseUint(last, 10, 64); err != nil {
		return h, fmt.Errorf("last sequence %q: %w", last, err)
	}
	entries, _ := res[1].([]any)
	for _, e := range entries {
		m, err := parseEntry(user, e)
		if err != nil {
			return h, err
		}
		if m.Seq > after {
			h.Messages = append(h.Messages, m)
		}
	}
	return h, nil
}

func parseEntry(user string, e any) (wsgate.Message, error) {
	pair, _ := e.([]any)
	if len(pair) != 2 {
		return wsgate.Message{}, errors.New("malformed history entry")
	}
	fields, _ := pair[1].([]any)
	m := wsgate.Message{Target: wsgate.Target{User: user}}
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
		return wsgate.Message{}, errors.New("malformed history entry")
	}
	return m, nil
}

// Ack records seq for the next flush; only the highest counts.
func (b *Broker) Ack(user string, seq uint64) {
	b.mu.Lock()
	if seq > b.acks[user] {
		b.acks[user] = seq
	}
	b.mu.Unlock()
}

// Present records this node's connection count of user for the next flush.
func (b *Broker) Present(user string, conns int) {
	b.mu.Lock()
	if conns > 0 {
		b.present[user] = conns
	} else {
		delete(b.present, user)
	}
	b.dirty[user] = true
	b.mu.Unlock()
}

// Status reads the user's sequence and ack and counts its connections on
// the other live nodes.
func (b *Broker) Status(ctx context.Context, user string) (wsgate.UserStatus, error) {
	var state *redis.SliceCmd
	var nodes *redis.StringSliceCmd
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		state = p.HMGet(ctx, b.stateKey(user), "seq", "ack")
		nodes = p.ZRangeByScore(ctx, b.nodesKey(), &redis.ZRangeBy{Min: now, Max: "+inf"})
		return nil
	})
	if err != nil {
		return wsgate.UserStatus{}, fmt.Errorf("redisbroker: status of %q: %w", user, err)
	}
	var st wsgate.UserStatus
	if v := state.Val(); len(v) == 2 {
		st.Seq = parseUint(v[0])
		st.Acked = parseUint(v[1])
	}
	if st.Conns, err = b.remoteConns(ctx, user, nodes.Val()); err != nil {
		return wsgate.UserStatus{}, fmt.Errorf("redisbroker: status of %q: %w", user, err)
	}
	return st, nil
}

// remoteConns sums user's connections on the given nodes other than this one.
func (b *Broker) remoteConns(ctx context.Context, user string, nodes []string) (int, error) {
	cmds := make([]*redis.StringCmd, 0, len(nodes))
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, n := range nodes {
			if n != b.node {
				cmds = append(cmds, p.HGet(ctx, b.nodeKey(n), user))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
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
