package redis_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/broker"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/api"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/internal/redistest"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

const timeout = gatewaytest.Timeout

// startNode runs a gateway node on r, without rate limits (the tests open
// many connections from one IP).
func startNode(t *testing.T, r *redistest.Server) *gatewaytest.Gateway {
	t.Helper()
	return r.StartNode(t, redisbroker.Options{FlushInterval: 50 * time.Millisecond}, wsgate.Config{HandshakeRate: -1, MessageRate: -1})
}

// waitSubscribed proves that node's subscription is live and that from
// publishes: it pushes to a probe topic on from until a subscriber on node
// receives it. A node subscribes with its first connection, in the
// background.
func waitSubscribed(t *testing.T, node, from *gatewaytest.Gateway) {
	t.Helper()
	probe := node.DialSimple(t, "probe")
	write(t, probe, wire.AppendSimple(nil, wire.ActionSubscribe, []byte("probe")))
	readMsg(t, probe) // subscribed
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := from.Publish(context.Background(), wsgate.Target{Topic: "probe"}, 199, nil); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_, _, err = probe.Read(ctx)
			cancel()
			if err == nil {
				_ = probe.CloseNow() // done probing
				return
			}
		}
	}
	t.Fatal("node did not receive pushes through Redis")
}

func write(t *testing.T, c *websocket.Conn, b []byte) {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func readMsg(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return append([]byte(nil), b...)
}

// dialAt opens a full-form connection to node as user, resuming from at
// (nil: a fresh client).
func dialAt(t *testing.T, node *gatewaytest.Gateway, user string, at *broker.Position) *gatewaytest.FullConn {
	t.Helper()
	if at == nil {
		return node.DialFull(t, user)
	}
	return node.DialFullAt(t, user, at.Epoch, at.Seq)
}

func publish(t *testing.T, node *gatewaytest.Gateway, to wsgate.Target, payload string) wsgate.PushResult {
	t.Helper()
	r, err := node.Publish(context.Background(), to, 120, []byte(payload))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return r
}

func expectPush(t *testing.T, c *gatewaytest.FullConn, seq uint64, payload string) {
	t.Helper()
	f := c.ReadFrame(t)
	if f.Type != wire.TypePush || f.Seq != seq || string(f.Payload) != payload {
		t.Fatalf("got %s seq %d %q (code %d), want push %d %q", f.Type, f.Seq, f.Payload, f.Code, seq, payload)
	}
}

func TestPushAcrossNodes(t *testing.T) {
	leakcheck.Check(t)
	r := redistest.Start(t)
	a, b := startNode(t, r), startNode(t, r)
	waitSubscribed(t, a, b)
	full := dialAt(t, a, "alice", nil)
	simple := a.DialSimple(t, "alice")
	news := a.DialSimple(t, "reader")
	write(t, news, wire.AppendSimple(nil, wire.ActionSubscribe, []byte("news")))
	readMsg(t, news)

	res := publish(t, b, wsgate.Target{User: "alice"}, "hi")
	if res.Seq != 1 || res.Delivered != -1 || res.Epoch != full.Hello.Epoch {
		t.Errorf("Publish to alice: got %+v, want seq 1, delivered -1 (asynchronous)", res)
	}
	expectPush(t, full, 1, "hi")
	if got := readMsg(t, simple); !bytes.Equal(got, wire.AppendSimple(nil, 120, []byte("hi"))) {
		t.Errorf("simple form on A: got %x", got)
	}
	publish(t, b, wsgate.Target{Topic: "news"}, "headline")
	if got := readMsg(t, news); !bytes.Equal(got, wire.AppendSimple(nil, 120, []byte("headline"))) {
		t.Errorf("topic push from B: got %x", got)
	}
	publish(t, b, wsgate.Target{Conn: string(full.Hello.ConnID)}, "just you")
	if f := full.ReadFrame(t); f.Type != wire.TypePush || f.Seq != 0 || string(f.Payload) != "just you" {
		t.Errorf("connection push from B: got %+v", f)
	}
	publish(t, b, wsgate.Target{All: true}, "everyone")
	if got := readMsg(t, news); !bytes.Equal(got, wire.AppendSimple(nil, 120, []byte("everyone"))) {
		t.Errorf("broadcast from B: got %x", got)
	}
}

// TestResumeOnAnotherNode: a client that leaves node A and comes back on
// node B gets what it missed, from B, then live pushes from either node.
func TestResumeOnAnotherNode(t *testing.T) {
	leakcheck.Check(t)
	r := redistest.Start(t)
	a, b := startNode(t, r), startNode(t, r)
	waitSubscribed(t, a, b)
	waitSubscribed(t, b, a)
	onA := dialAt(t, a, "bob", nil)
	for i := 1; i <= 3; i++ {
		publish(t, b, wsgate.Target{User: "bob"}, "m"+strconv.Itoa(i))
		expectPush(t, onA, uint64(i), "m"+strconv.Itoa(i))
	}
	_ = onA.CloseNow() // the network drops
	for i := 4; i <= 8; i++ {
		publish(t, a, wsgate.Target{User: "bob"}, "m"+strconv.Itoa(i))
	}
	onB := dialAt(t, b, "bob", &broker.Position{Epoch: onA.Hello.Epoch, Seq: 3})
	if onB.Hello.Seq != 8 || onB.Hello.Epoch != onA.Hello.Epoch {
		t.Errorf("hello on B: got %d.%d, want %d.8", onB.Hello.Epoch, onB.Hello.Seq, onA.Hello.Epoch)
	}
	for i := 4; i <= 8; i++ {
		expectPush(t, onB, uint64(i), "m"+strconv.Itoa(i))
	}
	publish(t, a, wsgate.Target{User: "bob"}, "m9")
	expectPush(t, onB, 9, "m9")
}

// TestSDKAcrossNodes: the Go SDK on node B receives pushes made on node A,
// and its acks are visible from A.
func TestSDKAcrossNodes(t *testing.T) {
	leakcheck.Check(t)
	r := redistest.Start(t)
	a, b := startNode(t, r), startNode(t, r)
	waitSubscribed(t, b, a)
	pushes := make(chan client.Push, 16)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := client.Dial(ctx, b.WS+"/ws?user=carol", client.Options{OnPush: func(p client.Push) { pushes <- p }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }() // before the nodes stop
	for i := 1; i <= 3; i++ {
		publish(t, a, wsgate.Target{User: "carol"}, "x")
		select {
		case p := <-pushes:
			if p.Seq != uint64(i) {
				t.Fatalf("push %d: got seq %d", i, p.Seq)
			}
		case <-ctx.Done():
			t.Fatal("no push")
		}
	}
	gatewaytest.WaitFor(t, "carol's ack on A", func() bool {
		st, err := a.UserStatus(ctx, "carol")
		return err == nil && st.Acked == 3 && st.Seq == 3 && st.Conns == 1
	})
}

func TestPresenceAcrossNodes(t *testing.T) {
	leakcheck.Check(t)
	r := redistest.Start(t)
	a, b := startNode(t, r), startNode(t, r)
	a1, a2 := a.DialSimple(t, "dave"), a.DialSimple(t, "dave")
	b.DialSimple(t, "dave")
	ctx := context.Background()
	conns := func(node *gatewaytest.Gateway) int {
		st, err := node.UserStatus(ctx, "dave")
		if err != nil {
			t.Fatal(err)
		}
		return st.Conns
	}
	gatewaytest.WaitFor(t, "3 connections seen from both nodes", func() bool { return conns(a) == 3 && conns(b) == 3 })
	_ = a1.CloseNow()
	_ = a2.CloseNow()
	gatewaytest.WaitFor(t, "1 connection after A's closed", func() bool { return conns(a) == 1 && conns(b) == 1 })

	// A node that crashed leaves its counts behind; they stop counting
	// when its entry in the node set expires.
	rdb := r.Client()
	rdb.HSet(ctx, "wsgate:node:crashed", "dave", 5)
	rdb.ZAdd(ctx, "wsgate:nodes", redis.Z{Score: float64(time.Now().Add(300 * time.Millisecond).UnixMilli()), Member: "crashed"})
	if got := conns(b); got != 6 {
		t.Errorf("with the crashed node still fresh: got %d, want 6", got)
	}
	gatewaytest.WaitFor(t, "the crashed node to expire", func() bool { return conns(b) == 1 })

	// ActionPresence from a client asks every node too.
	c := b.DialFull(t, "erin")
	if f := c.Request(t, wire.ActionPresence, []byte("dave")); f.Type != wire.TypeReply || !bytes.Equal(f.Payload, []byte{0, 0, 0, 1}) {
		t.Errorf("ActionPresence: got %+v, want 1", f)
	}
}

// TestRedisDownAndBack: pushes fail cleanly while Redis is down, open
// connections stay up, and everything recovers when it returns. Redis comes
// back empty, so the user's next push starts a new epoch: the sequenced
// connection that held the old one is closed with 1012, and its client,
// resuming with the old epoch, is told and gets the new epoch from its
// start.
func TestRedisDownAndBack(t *testing.T) {
	leakcheck.Check(t)
	r := redistest.Start(t)
	a, b := startNode(t, r), startNode(t, r)
	waitSubscribed(t, a, b)
	full := dialAt(t, a, "fred", nil)
	simple := a.DialSimple(t, "fred")
	before := publish(t, b, wsgate.Target{User: "fred"}, "before")
	expectPush(t, full, 1, "before")
	readMsg(t, simple)

	r.Stop()
	start := time.Now()
	_, err := b.Publish(context.Background(), wsgate.Target{User: "fred"}, 120, nil)
	if !errors.Is(err, wsgate.ErrUnavailable) {
		t.Errorf("Publish with Redis down: got %v, want ErrUnavailable", err)
	}
	t.Logf("Publish with Redis down failed after %v", time.Since(start))
	if status := apiPush(t, b.Server, `{"to":{"user":"fred"},"action":120}`); status != http.StatusServiceUnavailable {
		t.Errorf("API push with Redis down: got %d, want 503", status)
	}
	if f := full.Request(t, wire.ActionPing, []byte("still here")); f.Type != wire.TypeReply {
		t.Errorf("request with Redis down: got %+v, want a reply", f)
	}

	r.Restart()
	waitSubscribed(t, a, b)
	next := publish(t, b, wsgate.Target{User: "fred"}, "next")
	if next.Epoch == before.Epoch || next.Seq != 1 {
		t.Errorf("first push after Redis came back empty: got %d.%d, want a new epoch at 1", next.Epoch, next.Seq)
	}
	if code := closeCode(t, full.Conn); code != websocket.StatusCode(wire.CloseServiceRestart) {
		t.Errorf("sequenced connection of the old epoch: got close %d, want 1012", code)
	}
	if got := readMsg(t, simple); !bytes.Equal(got, wire.AppendSimple(nil, 120, []byte("next"))) {
		t.Errorf("simple form, still open after recovery: got %x", got)
	}
	again := dialAt(t, a, "fred", &broker.Position{Epoch: before.Epoch, Seq: before.Seq})
	if again.Hello.Epoch != next.Epoch {
		t.Errorf("hello after the restart: epoch %d, want %d", again.Hello.Epoch, next.Epoch)
	}
	if f := again.ReadFrame(t); f.Type != wire.TypeError || f.Code != wire.CodePushesLost {
		t.Errorf("resume of the old epoch: got %+v, want a pushes-lost notice", f)
	}
	expectPush(t, again, 1, "next")
}

// apiPush posts body to the HTTP push API of srv and returns the status.
func apiPush(t *testing.T, srv *wsgate.Server, body string) int {
	t.Helper()
	h, err := api.New(srv, api.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/api/v1/push", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer k")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// closeCode reads until c ends and returns the close code.
func closeCode(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("connection did not close")
			}
			return websocket.CloseStatus(err)
		}
	}
}

// TestOfflineForHours: a client that stays away six hours (on the brokers'
// clock) while its user is pushed to resumes on another node with every
// push, in order, and nothing reported lost; one that stays away longer
// than the history's age is told what it lost. The nodes share a clock the
// test moves; Redis keeps what they wrote.
func TestOfflineForHours(t *testing.T) {
	leakcheck.Check(t)
	r := redistest.Start(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	bo := redisbroker.Options{FlushInterval: 50 * time.Millisecond, Now: clock, HistorySize: 1000}
	a := r.StartNode(t, bo, wsgate.Config{HandshakeRate: -1, MessageRate: -1})
	b := r.StartNode(t, bo, wsgate.Config{HandshakeRate: -1, MessageRate: -1})
	c := dialAt(t, a, "hana", nil)
	first := publish(t, b, wsgate.Target{User: "hana"}, "p1")
	expectPush(t, c, 1, "p1")
	_ = c.CloseNow()
	for i := 2; i <= 61; i++ { // one push every six minutes for six hours
		now.Add(int64(6 * time.Minute))
		publish(t, b, wsgate.Target{User: "hana"}, "p"+strconv.Itoa(i))
	}
	back := dialAt(t, b, "hana", &broker.Position{Epoch: first.Epoch, Seq: 1})
	for i := 2; i <= 61; i++ {
		expectPush(t, back, uint64(i), "p"+strconv.Itoa(i))
	}
	_ = back.CloseNow()
	if st := a.Stats(); st.Lost != 0 {
		t.Errorf("node a: %d pushes-lost notices, want none", st.Lost)
	}
	if st := b.Stats(); st.Lost != 0 {
		t.Errorf("node b: %d pushes-lost notices, want none", st.Lost)
	}

	// Twenty hours more: p2..p20 (pushed up to 114 minutes after p1) are
	// older than 24 hours, p21..p61 are not.
	now.Add(int64(20 * time.Hour))
	late := dialAt(t, a, "hana", &broker.Position{Epoch: first.Epoch, Seq: 1})
	if f := late.ReadFrame(t); f.Type != wire.TypeError || f.Code != wire.CodePushesLost || !strings.Contains(string(f.Payload), "pushes 2 to 20") {
		t.Fatalf("resume past the history's age: got %s %q, want pushes 2 to 20 lost", f.Type, f.Payload)
	}
	for i := 21; i <= 61; i++ {
		expectPush(t, late, uint64(i), "p"+strconv.Itoa(i))
	}
}

// TestOfflineReal is TestOfflineForHours on the real clock, for a manual
// run: WSGATE_OFFLINE=30m go test -run TestOfflineReal ./broker/redis/
// keeps a client away for 30 minutes while its user gets a push every
// 10 seconds, then resumes it on the other node. It is skipped unless
// WSGATE_OFFLINE is set.
func TestOfflineReal(t *testing.T) {
	away, err := time.ParseDuration(os.Getenv("WSGATE_OFFLINE"))
	if err != nil {
		t.Skip("set WSGATE_OFFLINE (e.g. 30m) to run a real offline period")
	}
	r := redistest.Start(t)
	bo := redisbroker.Options{FlushInterval: 50 * time.Millisecond, HistorySize: 100000}
	a := r.StartNode(t, bo, wsgate.Config{HandshakeRate: -1, MessageRate: -1})
	b := r.StartNode(t, bo, wsgate.Config{HandshakeRate: -1, MessageRate: -1})
	c := dialAt(t, a, "rae", nil)
	first := publish(t, b, wsgate.Target{User: "rae"}, "p1")
	expectPush(t, c, 1, "p1")
	_ = c.CloseNow()
	start := time.Now()
	n := 1
	for time.Since(start) < away {
		time.Sleep(10 * time.Second)
		n++
		publish(t, b, wsgate.Target{User: "rae"}, "p"+strconv.Itoa(n))
	}
	back := dialAt(t, b, "rae", &broker.Position{Epoch: first.Epoch, Seq: 1})
	for i := 2; i <= n; i++ {
		expectPush(t, back, uint64(i), "p"+strconv.Itoa(i))
	}
	t.Logf("away %v: %d pushes made meanwhile, all replayed in order; lost notices: a %d, b %d",
		time.Since(start).Round(time.Second), n-1, a.Stats().Lost, b.Stats().Lost)
	if a.Stats().Lost+b.Stats().Lost != 0 {
		t.Error("pushes reported lost")
	}
}

// TestReadyzFollowsRedis: a node whose Redis is down answers /readyz with
// 503, so that load balancers send new clients elsewhere, and 200 again
// once Redis is back.
func TestReadyzFollowsRedis(t *testing.T) {
	leakcheck.Check(t)
	r := redistest.Start(t)
	a := startNode(t, r)
	readyz := func() int {
		resp, err := http.Get("http" + strings.TrimPrefix(a.WS, "ws") + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := readyz(); got != http.StatusOK {
		t.Fatalf("with Redis up: got %d, want 200", got)
	}
	r.Stop()
	if got := readyz(); got != http.StatusServiceUnavailable {
		t.Errorf("with Redis down: got %d, want 503", got)
	}
	r.Restart()
	gatewaytest.WaitFor(t, "readyz 200 again", func() bool { return readyz() == http.StatusOK })
}
