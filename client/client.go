package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// ErrNotConnected is returned by Request, Send, Subscribe and Unsubscribe
// while the client has no open connection (it is reconnecting), and by
// requests that were in flight when the connection dropped: whether the
// server acted on those is unknown.
var ErrNotConnected = errors.New("wsgate: not connected")

// Error is a failed request as the server reported it in an error frame:
// a wire.ErrorCode and a message. Match it with errors.As.
type Error = wire.Error

// State is where the client is in its lifecycle. It only moves forward
// through Connecting → Connected, then between Connected and Reconnecting,
// and ends in Closed.
type State int32

const (
	StateConnecting   State = iota // Dial has not returned yet
	StateConnected                 // a connection is open and said hello
	StateReconnecting              // the connection dropped; waiting or dialing again
	StateClosed                    // Close was called or the server closed for good
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Push is a message the server sent without being asked.
type Push struct {
	Action  wire.Action
	Seq     uint64 // server's sequence number; 0 = unsequenced
	Payload []byte // owned by the callee
}

// Options configures a Client. The zero value works: no token, reconnect
// on, the protocol's default backoff.
type Options struct {
	// Token is sent as "Authorization: Bearer <Token>" on every connect.
	Token string
	// GetToken, when set, replaces Token: it is called before every
	// connection attempt and when the server warns that the token expires
	// soon (the new token then goes in a refresh frame; see token.go). After
	// a refused token the client stops unless GetToken returns another.
	GetToken func(ctx context.Context) (string, error)
	// Header holds extra handshake headers (Origin, Cookie, ...).
	Header http.Header
	// TLSConfig is used for wss:// URLs; nil = the system defaults.
	TLSConfig *tls.Config

	// OnPush receives pushes in the order the server sent them, on one
	// goroutine owned by the client that also delivers OnStateChange. It must
	// not block long: while it runs, further pushes wait in a bounded queue,
	// and when that is full the client stops reading, so replies wait too
	// and the server eventually drops a slow consumer. Calling Request from
	// OnPush is fine; calling Close from it deadlocks (start a goroutine).
	OnPush func(p Push)
	// OnStateChange is told about every state change, in order, on the same
	// goroutine as OnPush. err is why the connection ended (for Reconnecting
	// and Closed), else nil. The same rules as for OnPush apply.
	OnStateChange func(s State, err error)
	// OnPushesLost is told, on the same goroutine and in order with the
	// pushes, when the server reports that sequenced pushes this client
	// should have had are gone: they expired or were evicted before it
	// came back, or the server's store lost them. reason is the server's
	// message. The client then holds a gap in its user's pushes and should
	// resynchronise its state by other means (a request to the backend).
	OnPushesLost func(reason string)

	// Resume, when set, is the position an earlier client of the same
	// user reached (Client.Position): the first connection resumes from
	// it, so that pushes made meanwhile arrive (or OnPushesLost says they
	// are gone). nil starts from the server's current position.
	Resume *Position

	// DisableReconnect makes the first lost connection final (state Closed).
	DisableReconnect bool
	// Backoff spaces reconnect attempts; the zero value is the protocol's
	// schedule (wire.Backoff: 500 ms doubling to 30 s, equal jitter), the
	// one every wsgate client SDK follows.
	Backoff wire.Backoff

	// MaxInflight bounds requests awaiting a reply; further Requests wait
	// for a slot (or their ctx). Default 256.
	MaxInflight int
	// PushQueue bounds pushes and state changes waiting for their callback.
	// Default 256.
	PushQueue int
	// CloseTimeout is how long Close waits for the server's close frame.
	// Default 2 s.
	CloseTimeout time.Duration
	// DialTimeout bounds one connection attempt: the handshake and the
	// server's hello. Default 10 s.
	DialTimeout time.Duration
	// Compression offers permessage-deflate.
	Compression bool
	// Logger receives reconnect attempts and resubscription failures.
	// nil = discard.
	Logger *slog.Logger

	clock clock // tests replace time and randomness
}

// clock is the time source of the reconnect loop, replaced in tests.
type clock struct {
	now   func() time.Time
	after func(d time.Duration) (<-chan time.Time, func() bool)
	rand  func() float64
}

func (o Options) withDefaults() Options {
	if o.MaxInflight <= 0 {
		o.MaxInflight = 256
	}
	if o.PushQueue <= 0 {
		o.PushQueue = 256
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 2 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.clock.now == nil {
		o.clock.now = time.Now
	}
	if o.clock.after == nil {
		o.clock.after = func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		}
	}
	if o.clock.rand == nil {
		o.clock.rand = rand.Float64
	}
	return o
}

// Hello is what the server said about the current connection.
type Hello struct {
	ConnID     string
	UserID     string
	MaxMessage int           // largest message the server accepts; 0 = unstated
	Heartbeat  time.Duration // server ping interval; 0 = none

	lastSeq uint64 // the user's last push sequence when the server said hello
	epoch   uint64 // the epoch that sequence belongs to
}

// Client is a connection to a wsgate server that reconnects by itself. All
// methods are safe for concurrent use.
type Client struct {
	url      string
	opts     Options
	wsCfg    websocket.Config
	inflight chan struct{} // semaphore of MaxInflight slots
	events   chan event    // to the callback goroutine; closed by the loop

	// life ends when Close is called: it cancels dials and backoff waits.
	life     context.Context
	stopLife context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex
	state   State
	conn    *websocket.Conn // nil while not connected
	gen     uint64          // bumped for every new connection
	hello   Hello
	nextID  uint32
	pending map[uint32]*call
	topics  map[string]struct{} // resubscribed after a reconnect
	epoch   uint64              // the epoch of the user's sequence lastSeq belongs to
	lastSeq uint64              // highest push sequence received (or the first hello's); sent on reconnect
	synced  bool                // epoch and lastSeq are known: a hello has set them
	closed  bool

	tok tokenState // GetToken bookkeeping (token.go)
}

// Dial connects to the wsgate endpoint at url (ws:// or wss://, usually
// ending in /ws), waits for the server's hello and returns a client whose
// connection is open. The first connection is not retried: a refused
// handshake, a bad token or an unreachable server is returned as the error
// (an HTTP refusal carries the server's message). After that the client
// reconnects by itself until Close or a terminal close code.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	c := &Client{
		url:      url,
		opts:     opts,
		inflight: make(chan struct{}, opts.MaxInflight),
		events:   make(chan event, opts.PushQueue),
		pending:  make(map[uint32]*call),
		topics:   make(map[string]struct{}),
		wsCfg: websocket.Config{
			Mode:         websocket.ModeBlocking,
			CloseTimeout: opts.CloseTimeout,
			Compression:  opts.Compression,
		},
	}
	from := position{}
	if p := opts.Resume; p != nil {
		from = position{epoch: p.Epoch, seq: p.Seq, known: true}
		c.epoch, c.lastSeq, c.synced = p.Epoch, p.Seq, true
	}
	conn, hello, err := c.connect(ctx, from)
	if err != nil {
		return nil, err
	}
	c.life, c.stopLife = context.WithCancel(context.Background())
	gen, _ := c.attach(conn, hello) // cannot refuse: nobody can have called Close yet
	c.report(StateConnected, nil)
	c.wg.Add(2)
	go c.dispatch()
	go c.loop(conn, gen, hello.Heartbeat)
	return c, nil
}

// State returns the current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Position is where a client stands in its user's sequenced pushes: the
// last sequence it received in the user's epoch. A program that restarts
// keeps it (Client.Position before Close) and passes it back in
// Options.Resume, so that the new client gets every push it missed.
type Position struct {
	Epoch uint64
	Seq   uint64
}

// Position returns the client's current position; the zero Position
// until the first hello.
func (c *Client) Position() Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.synced {
		return Position{}
	}
	return Position{Epoch: c.epoch, Seq: c.lastSeq}
}

// Hello returns what the server said in the hello of the current (or the
// last) connection.
func (c *Client) Hello() Hello {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello
}

// Close ends the client: it sends close 1000 to the server, waits up to
// Options.CloseTimeout for the server's close frame, stops reconnecting,
// fails the requests in flight with ErrNotConnected and waits for its
// goroutines, including a running OnPush or OnStateChange callback. It must
// not be called from those callbacks. Calling it again does nothing.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conn := c.conn
	c.mu.Unlock()

	c.stopLife()
	if conn != nil {
		// The engine drops the connection if the server has not answered
		// within CloseTimeout, which ends the loop's read.
		_ = conn.Close(websocket.StatusNormalClosure, "") // fails only if the connection already ended
	}
	c.wg.Wait()
	return nil
}
