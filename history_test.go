package wsgate

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// fakeClock is the history's clock in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testBroker is a memory broker that records what it delivers. Users in
// online count as connected.
func testBroker(lim historyLimits, online ...string) (*memBroker, *fakeClock) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	deliver := func(context.Context, *Message) (int, error) { return 0, nil }
	connected := func(u string) bool {
		for _, o := range online {
			if o == u {
				return true
			}
		}
		return false
	}
	return newMemBroker(lim, deliver, connected, clk.now), clk
}

func publish(t *testing.T, b *memBroker, user, payload string) uint64 {
	t.Helper()
	m := Message{Target: Target{User: user}, Action: 120, Payload: []byte(payload)}
	if _, err := b.Publish(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	return m.Seq
}

// retained lists the sequences user's history holds after after.
func retained(t *testing.T, b *memBroker, user string, after uint64) []uint64 {
	t.Helper()
	h, err := b.History(context.Background(), user, after)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, m := range h.Messages {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var roomy = historyLimits{size: 100, bytes: 1 << 20, ttl: time.Hour, total: 1 << 30}

func TestHistoryMessageLimit(t *testing.T) {
	lim := roomy
	lim.size = 3
	b, _ := testBroker(lim)
	for i := 1; i <= 5; i++ {
		if got := publish(t, b, "u", "x"); got != uint64(i) {
			t.Fatalf("push %d: got seq %d", i, got)
		}
	}
	if got := retained(t, b, "u", 0); !equalSeqs(got, []uint64{3, 4, 5}) {
		t.Errorf("retained: got %v, want [3 4 5]", got)
	}
	if c, _ := b.Cursor(context.Background(), "u"); c != (Cursor{Last: 5, Oldest: 3}) {
		t.Errorf("Cursor: got %+v, want last 5, oldest 3", c)
	}
	if got := retained(t, b, "u", 4); !equalSeqs(got, []uint64{5}) {
		t.Errorf("retained after 4: got %v, want [5]", got)
	}
}

func TestHistoryByteLimit(t *testing.T) {
	lim := roomy
	lim.bytes = 10
	b, _ := testBroker(lim)
	for _, p := range []string{"aaaa", "bbbb", "cccc"} {
		publish(t, b, "u", p)
	}
	if got := retained(t, b, "u", 0); !equalSeqs(got, []uint64{2, 3}) {
		t.Errorf("retained: got %v, want [2 3] (8 of at most 10 bytes)", got)
	}
	if got := publish(t, b, "u", "eleven byte"); got != 4 {
		t.Errorf("oversized push: got seq %d, want 4", got)
	}
	if got := retained(t, b, "u", 0); !equalSeqs(got, []uint64{2, 3}) {
		t.Errorf("after an oversized push: got %v, want [2 3] (it is numbered, not kept)", got)
	}
}

func TestHistoryTTL(t *testing.T) {
	lim := roomy
	lim.ttl = time.Minute
	b, clk := testBroker(lim, "online")
	for _, u := range []string{"online", "offline"} {
		publish(t, b, u, "1")
		publish(t, b, u, "2")
	}
	clk.advance(30 * time.Second)
	publish(t, b, "online", "3")
	clk.advance(40 * time.Second)
	if got := retained(t, b, "online", 0); !equalSeqs(got, []uint64{3}) {
		t.Errorf("after 70 s: got %v, want [3] (the first two expired)", got)
	}
	clk.advance(30 * time.Second)
	b.sweep()
	if total, users := b.usage(); total != 0 || users != 0 {
		t.Errorf("after every message expired: got %d bytes, %d users; want none", total, users)
	}
	// The connected user keeps its sequence (a live connection must not
	// see numbering restart); the other is forgotten.
	if st, _ := b.Status(context.Background(), "online"); st.Seq != 3 {
		t.Errorf("connected user: got seq %d, want 3", st.Seq)
	}
	if st, _ := b.Status(context.Background(), "offline"); st != (UserStatus{}) {
		t.Errorf("offline user: got %+v, want forgotten", st)
	}
	b.Present("online", 0)
	if st, _ := b.Status(context.Background(), "online"); st != (UserStatus{}) {
		t.Errorf("after its last connection closed: got %+v, want forgotten", st)
	}
}

func TestHistoryMemoryBound(t *testing.T) {
	const payload = 100
	cost := int64(payload + histMsgOverhead + userLogOverhead)
	lim := roomy
	lim.total = 3 * cost
	b, _ := testBroker(lim, "a")
	p := strings.Repeat("x", payload)
	for _, u := range []string{"a", "b", "c"} {
		publish(t, b, u, p)
	}
	if total, users := b.usage(); total != 3*cost || users != 3 {
		t.Fatalf("usage: got %d bytes, %d users; want %d, 3", total, users, 3*cost)
	}
	publish(t, b, "d", p) // over the bound: a, pushed least recently, goes
	if total, users := b.usage(); total != 3*cost || users != 3 {
		t.Errorf("usage: got %d bytes, %d users; want %d, 3", total, users, 3*cost)
	}
	if got := retained(t, b, "a", 0); len(got) != 0 {
		t.Errorf("a: got %v retained, want none", got)
	}
	if st, _ := b.Status(context.Background(), "a"); st.Seq != 1 {
		t.Errorf("a, connected: got seq %d, want 1 (kept without its history)", st.Seq)
	}
	publish(t, b, "b", p) // b moves to the recent end; c is now the oldest
	for u, want := range map[string]int{"b": 2, "c": 0, "d": 1} {
		if got := retained(t, b, u, 0); len(got) != want {
			t.Errorf("%s: got %v retained, want %d pushes", u, got, want)
		}
	}
	if total, _ := b.usage(); total > lim.total {
		t.Errorf("usage: got %d bytes, want at most %d", total, lim.total)
	}
}

func TestHistoryRaiseAndAck(t *testing.T) {
	b, _ := testBroker(roomy, "u")
	h, _ := b.History(context.Background(), "u", 10)
	if h.Last != 0 || len(h.Messages) != 0 {
		t.Errorf("History of an unknown user: got %+v, want empty", h)
	}
	if got := publish(t, b, "u", "x"); got != 11 {
		t.Errorf("after a resume from 10: got seq %d, want 11", got)
	}
	if h, _ := b.History(context.Background(), "u", maxRaise+1); h.Last != 11 {
		t.Errorf("absurd resume: got last %d, want 11", h.Last)
	}
	if got := publish(t, b, "u", "x"); got != 12 {
		t.Errorf("after an absurd resume: got seq %d, want 12 (not raised)", got)
	}
	for _, seq := range []uint64{11, 5, 13} {
		b.Ack("u", seq)
	}
	if st, _ := b.Status(context.Background(), "u"); st != (UserStatus{Seq: 12, Acked: 11}) {
		t.Errorf("Status: got %+v, want seq 12, acked 11", st)
	}
}

// TestHoldForResume: a silent client of a user with history is held for
// its resume, then gets its pushes anyway; a user without history is not
// held at all.
func TestHoldForResume(t *testing.T) {
	leakcheck.Check(t)
	srv, err := New(Config{
		Authenticate: func(_ context.Context, r *http.Request) (Identity, error) {
			return Identity{UserID: r.Header.Get("X-User")}, nil
		},
		PingInterval: 640 * time.Millisecond, // a heartbeat tick every 10 ms
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.resumeWait = 300 * time.Millisecond
	addr := serveTest(t, srv)
	ctx := context.Background()
	if _, err := srv.Push(ctx, Target{User: "held"}, 120, []byte("old")); err != nil {
		t.Fatal(err)
	}
	start := time.Now() // the hold begins after this, when the hello is sent
	held := dialSilent(t, addr, "held")
	free := dialSilent(t, addr, "free")
	for _, u := range []string{"held", "free"} {
		if _, err := srv.Push(ctx, Target{User: u}, 120, []byte("new")); err != nil {
			t.Fatal(err)
		}
	}
	if f := readPush(t, free); f.Seq != 1 {
		t.Errorf("user without history: got %+v, want push 1", f)
	}
	if f := readPush(t, held); f.Seq != 2 || string(f.Payload) != "new" {
		t.Errorf("held user: got %+v, want push 2", f)
	}
	if waited := time.Since(start); waited < srv.resumeWait {
		t.Errorf("held connection got its push after %v, want it held %v", waited, srv.resumeWait)
	}
}

// serveTest serves srv on 127.0.0.1:0 until the test ends.
func serveTest(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// dialSilent opens a full-form connection as user, reads its hello and
// never sends a frame.
func dialSilent(t *testing.T, addr, user string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil, &websocket.DialOptions{
		Header: http.Header{"X-User": {user}}, Subprotocols: []string{wire.Subprotocol},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.CloseNow() // the server may have closed it
		<-c.Done()
	})
	if f := readPush(t, c); f.Type != wire.TypeHello {
		t.Fatalf("first frame: got %+v, want hello", f)
	}
	return c
}

// readPush reads and decodes the next frame.
func readPush(t *testing.T, c *websocket.Conn) wire.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f wire.Frame
	if err := wire.DecodeFrame(append([]byte(nil), data...), &f); err != nil {
		t.Fatal(err)
	}
	return f
}
