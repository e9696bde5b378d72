package wsgate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/broker"
	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// recvPush waits for the next push an SDK client handed to OnPush.
func recvPush(t *testing.T, pushes <-chan client.Push) client.Push {
	t.Helper()
	select {
	case p := <-pushes:
		return p
	case <-time.After(testTimeout):
		t.Fatal("no push received")
		return client.Push{}
	}
}

// pushSeq pushes payload to user and returns the sequence it got.
func pushSeq(t *testing.T, ts *testServer, user, payload string) uint64 {
	t.Helper()
	r, err := ts.Publish(context.Background(), wsgate.Target{User: user}, 120, []byte(payload))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return r.Seq
}

func TestSDKResumeAfterOffline(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, userAuth())
	pushes := make(chan client.Push, 64)
	c := sdkDial(t, ts, client.Options{
		Header:  http.Header{"X-User": {"alice"}},
		OnPush:  func(p client.Push) { pushes <- p },
		Backoff: wire.Backoff{Base: 400 * time.Millisecond},
	})
	if got := pushSeq(t, ts, "alice", "p1"); got != 1 {
		t.Fatalf("first push: got seq %d, want 1", got)
	}
	if p := recvPush(t, pushes); p.Seq != 1 || string(p.Payload) != "p1" {
		t.Fatalf("live push: got seq %d %q, want 1 \"p1\"", p.Seq, p.Payload)
	}
	replayedBefore := ts.Stats().Replayed
	first := c.Hello().ConnID
	if err := ts.Disconnect(first, wire.CloseGoingAway, "test"); err != nil {
		t.Fatal(err)
	}
	gatewaytest.WaitFor(t, "alice offline", func() bool { return ts.Presence("alice") == 0 })
	for i := 2; i <= 11; i++ {
		if got := pushSeq(t, ts, "alice", "p"+strconv.Itoa(i)); got != uint64(i) {
			t.Fatalf("offline push %d: got seq %d", i, got)
		}
	}
	for i := 2; i <= 11; i++ {
		if p := recvPush(t, pushes); p.Seq != uint64(i) || string(p.Payload) != "p"+strconv.Itoa(i) {
			t.Fatalf("replayed push: got seq %d %q, want %d \"p%d\"", p.Seq, p.Payload, i, i)
		}
	}
	if c.Hello().ConnID == first {
		t.Error("the pushes arrived without a reconnect")
	}
	// Live pushes continue right after the replay: the next one is 12, so
	// nothing was sent twice in between.
	pushSeq(t, ts, "alice", "p12")
	if p := recvPush(t, pushes); p.Seq != 12 || string(p.Payload) != "p12" {
		t.Fatalf("live push after resume: got seq %d %q, want 12 \"p12\"", p.Seq, p.Payload)
	}
	if st := ts.Stats(); st.Replayed-replayedBefore != 10 || st.Resumed != 1 || st.Lost != 0 {
		t.Errorf("Stats: got replayed %d after the reconnect, resumed %d, lost %d; want 10, 2, 0",
			st.Replayed-replayedBefore, st.Resumed, st.Lost)
	}
	// The SDK acks what OnPush handled.
	gatewaytest.WaitFor(t, "ack of 12", func() bool {
		st, err := ts.UserStatus(context.Background(), "alice")
		return err == nil && st.Acked == 12 && st.Seq == 12 && st.Conns == 1
	})
}

// follower is a raw full-form client that reconnects again and again,
// resuming each time, and checks that the pushes it reads continue its
// sequence exactly: no gap, no duplicate, no reordering, no loss notice.
// Push number i carries the payload strconv.Itoa(i).
type follower struct {
	url, user   string
	epoch, last uint64 // epoch 0: none yet, so the first resume asks for everything
	conns       int
}

// follow reads until it has push total or the deadline passes.
func (f *follower) follow(total uint64, deadline time.Time) error {
	for f.last < total {
		if time.Now().After(deadline) {
			return fmt.Errorf("follower stuck at %d of %d after %d connections", f.last, total, f.conns)
		}
		if err := f.session(total, deadline, 1+rand.IntN(40)); err != nil {
			return err
		}
	}
	return nil
}

// session opens one connection, resumes from f.last, reads up to n pushes
// and drops the connection without a close handshake.
func (f *follower) session(total uint64, deadline time.Time, n int) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	url := f.url + "?" + wire.ResumeParam + "=" + string(wire.FormatResume(nil, f.epoch, f.last))
	c, _, err := websocket.Dial(ctx, url, nil, &websocket.DialOptions{
		Header: http.Header{"X-User": {f.user}}, Subprotocols: []string{wire.Subprotocol},
	})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	f.conns++
	defer func() {
		_ = c.CloseNow() // an abrupt end, like a lost network
		<-c.Done()
	}()
	for read := 0; read <= n && f.last < total; {
		_, data, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("read after %d: %w", f.last, err)
		}
		var fr wire.Frame
		if err := wire.DecodeFrame(data, &fr); err != nil {
			return err
		}
		switch {
		case fr.Type == wire.TypeHello:
			if f.epoch != 0 && fr.Epoch != f.epoch {
				return fmt.Errorf("hello: epoch %d, want %d", fr.Epoch, f.epoch)
			}
			f.epoch = fr.Epoch
			read++ // the hello is the first frame; count it so n = 1 drops right after it
		case fr.Type != wire.TypePush:
			return fmt.Errorf("unexpected %s frame (code %d %q) after %d", fr.Type, fr.Code, fr.Payload, f.last)
		case fr.Seq != f.last+1 || string(fr.Payload) != strconv.FormatUint(fr.Seq, 10):
			return fmt.Errorf("after %d: got push %d %q, want %d", f.last, fr.Seq, fr.Payload, f.last+1)
		default:
			f.last = fr.Seq
			read++
		}
	}
	return nil
}

func TestResumeUnderConcurrentPushes(t *testing.T) {
	leakcheck.Check(t)
	cfg := userAuth()
	cfg.HistorySize = 1 << 20 // nothing may be evicted: every gap would be a bug
	cfg.HistoryBytes = 1 << 30
	cfg.HandshakeRate = -1
	ts := startServer(t, cfg)
	const total = 3000
	const followers = 4
	deadline := time.Now().Add(3 * testTimeout)

	var wg sync.WaitGroup
	errs := make(chan error, followers+1)
	for range followers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &follower{url: ts.wsURL("/ws"), user: "bob"}
			if err := f.follow(total, deadline); err != nil {
				errs <- err
			} else if f.conns < 5 {
				errs <- fmt.Errorf("follower used %d connections, want several reconnects", f.conns)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= total; i++ {
			r, err := ts.Publish(context.Background(), wsgate.Target{User: "bob"}, 120, []byte(strconv.Itoa(i)))
			if err != nil || r.Seq != uint64(i) {
				errs <- fmt.Errorf("push %d: got seq %d, %v", i, r.Seq, err)
				return
			}
			if i%8 == 0 {
				time.Sleep(200 * time.Microsecond) // let reconnects interleave with pushes
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := ts.Stats(); st.Lost != 0 || st.Replayed == 0 {
		t.Errorf("Stats: got lost %d, replayed %d; want 0 and some", st.Lost, st.Replayed)
	}
}

func TestSDKResumeUnderConcurrentPushes(t *testing.T) {
	leakcheck.Check(t)
	cfg := userAuth()
	cfg.HistorySize = 1 << 20
	cfg.HandshakeRate = -1
	ts := startServer(t, cfg)
	const total = 1500
	var mu sync.Mutex
	var seqs []uint64
	c := sdkDial(t, ts, client.Options{
		Header:  http.Header{"X-User": {"carol"}},
		OnPush:  func(p client.Push) { mu.Lock(); seqs = append(seqs, p.Seq); mu.Unlock() },
		Backoff: wire.Backoff{Base: 2 * time.Millisecond, Max: 4 * time.Millisecond},
	})
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= total; i++ {
			if _, err := ts.Publish(context.Background(), wsgate.Target{User: "carol"}, 120, nil); err != nil {
				done <- err
				return
			}
			if i%4 == 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		done <- nil
	}()
	kicks := 0
	for pushing := true; pushing; kicks++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			pushing = false
		case <-time.After(5 * time.Millisecond):
		}
		_ = ts.Disconnect(c.Hello().ConnID, wire.CloseGoingAway, "kick") // may be reconnecting
	}
	gatewaytest.WaitFor(t, "every push", func() bool { mu.Lock(); defer mu.Unlock(); return len(seqs) >= total })
	mu.Lock()
	defer mu.Unlock()
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("push #%d: got seq %d, want %d (after %d kicks)", i, s, i+1, kicks)
		}
	}
	if len(seqs) != total {
		t.Errorf("got %d pushes, want %d", len(seqs), total)
	}
}

// rawResume dials the binary full form as user, resuming from seq of
// epoch, and returns the connection after its hello.
func rawResume(t *testing.T, ts *testServer, user string, epoch, seq uint64) (*websocket.Conn, wire.Frame) {
	t.Helper()
	url := ts.wsURL("/ws") + "?" + wire.ResumeParam + "=" + string(wire.FormatResume(nil, epoch, seq))
	c := dial(t, url, &websocket.DialOptions{Header: http.Header{"X-User": {user}}, Subprotocols: []string{wire.Subprotocol}})
	hello := readFrame(t, c)
	if hello.Type != wire.TypeHello {
		t.Fatalf("first frame: got %+v, want hello", hello)
	}
	return c, hello
}

func TestResumeAfterEviction(t *testing.T) {
	leakcheck.Check(t)
	cfg := userAuth()
	cfg.HistorySize = 3
	ts := startServer(t, cfg)
	for i := 1; i <= 5; i++ {
		pushSeq(t, ts, "dave", strconv.Itoa(i))
	}
	st, err := ts.UserStatus(context.Background(), "dave")
	if err != nil {
		t.Fatal(err)
	}
	c, hello := rawResume(t, ts, "dave", st.Epoch, 1)
	if hello.Seq != 5 || hello.Epoch != st.Epoch {
		t.Errorf("hello: got seq %d epoch %d, want 5, %d", hello.Seq, hello.Epoch, st.Epoch)
	}
	if f := readFrame(t, c); f.Type != wire.TypeError || f.ID != 0 || f.Code != wire.CodePushesLost ||
		!bytes.Contains(f.Payload, []byte("pushes 2 to 2 are no longer retained")) {
		t.Errorf("got %+v %q, want a pushes-lost notice for 2", f, f.Payload)
	}
	for want := uint64(3); want <= 5; want++ {
		if f := readFrame(t, c); f.Type != wire.TypePush || f.Seq != want {
			t.Fatalf("replay: got %+v, want push %d", f, want)
		}
	}
	if st := ts.Stats(); st.Lost != 1 || st.Replayed != 3 {
		t.Errorf("Stats: got lost %d, replayed %d; want 1, 3", st.Lost, st.Replayed)
	}
}

// TestResumeAheadOfServer is a client that holds sequences of its epoch
// that the store never assigned (it came back older, or the client is
// wrong): it is told, the user gets a new epoch, numbering starts again
// from 1, and the user's other connection, still on the old epoch, is
// closed with 1012 when the next push comes, so that it resumes and is
// told too.
func TestResumeAheadOfServer(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, userAuth())
	old, first := rawResume(t, ts, "erin", 0, 0) // stays open: the epoch lives while erin is connected
	c, hello := rawResume(t, ts, "erin", first.Epoch, 50)
	if hello.Epoch == first.Epoch || hello.Seq != 0 {
		t.Errorf("hello: got %d.%d, want a new epoch at 0 (the old one was %d)", hello.Epoch, hello.Seq, first.Epoch)
	}
	if f := readFrame(t, c); f.Type != wire.TypeError || f.Code != wire.CodePushesLost ||
		!bytes.Contains(f.Payload, []byte("restarted")) {
		t.Errorf("got %+v %q, want a pushes-lost notice", f, f.Payload)
	}
	if got := pushSeq(t, ts, "erin", "x"); got != 1 {
		t.Errorf("next push: got seq %d, want 1 of the new epoch", got)
	}
	if f := readFrame(t, c); f.Type != wire.TypePush || f.Seq != 1 {
		t.Errorf("got %+v, want push 1", f)
	}
	if code := readClose(t, old); code != websocket.StatusCode(wire.CloseServiceRestart) {
		t.Errorf("the connection of the old epoch: got close %d, want 1012", code)
	}
}

// TestSequencedForms: the simple form gets user pushes as plain action +
// payload, without sequence and without replay; the JSON form gets the
// sequence like the binary form.
func TestSequencedForms(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, userAuth())
	pushSeq(t, ts, "fay", "old") // seq 1, before anyone connected
	simpleConn := as(t, ts, "fay")
	jsonConn := dial(t, ts.wsURL("/ws")+"?resume=0.0", &websocket.DialOptions{Header: http.Header{"X-User": {"fay"}}, Subprotocols: []string{wire.SubprotocolJSON}})
	if typ, got := read(t, jsonConn); typ != websocket.TextMessage || !bytes.Contains(got, []byte(`"type":"hello"`)) || !bytes.Contains(got, []byte(`"seq":1`)) {
		t.Fatalf("JSON hello: got %s", got)
	}
	if _, got := read(t, jsonConn); string(got) != `{"type":"push","action":120,"seq":1,"text":"old"}` {
		t.Fatalf("JSON replay: got %s", got)
	}
	gatewaytest.WaitFor(t, "two connections", func() bool { return ts.Presence("fay") == 2 })
	if r, err := ts.Publish(context.Background(), wsgate.Target{User: "fay"}, 120, []byte("new")); err != nil || r.Delivered != 2 || r.Seq != 2 {
		t.Fatalf("Publish: got %+v, %v; want 2 delivered, seq 2", r, err)
	}
	if _, got := read(t, simpleConn); !bytes.Equal(got, simple(120, "new")) {
		t.Errorf("simple form: got %x, want %x (no replay of \"old\", no sequence)", got, simple(120, "new"))
	}
	if _, got := read(t, jsonConn); string(got) != `{"type":"push","action":120,"seq":2,"text":"new"}` {
		t.Errorf("JSON form: got %s", got)
	}
}

// TestAcks: acks are recorded per user, only ever raised, and bounded by
// the last sequence.
func TestAcks(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, userAuth())
	c, _ := rawResume(t, ts, "gus", 0, 0)
	for i := 1; i <= 3; i++ {
		pushSeq(t, ts, "gus", "m")
		readFrame(t, c)
	}
	for _, seq := range []uint64{2, 1, 99} {
		ack, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypeAck, Seq: seq})
		write(t, c, websocket.BinaryMessage, ack)
	}
	// A request after the acks: once it is answered they have been handled.
	write(t, c, websocket.BinaryMessage, request(wire.ActionPing, 1, ""))
	if f := readFrame(t, c); f.Type != wire.TypeReply || f.ID != 1 {
		t.Fatalf("got %+v, want the ping reply", f)
	}
	st, err := ts.UserStatus(context.Background(), "gus")
	if err != nil || st.Epoch == 0 || st != (broker.UserStatus{Conns: 1, Epoch: st.Epoch, Seq: 3, Acked: 2}) {
		t.Errorf("UserStatus: got %+v, %v; want 1 conn, seq 3, acked 2", st, err)
	}
	if st, _ := ts.UserStatus(context.Background(), "nobody"); st != (broker.UserStatus{}) {
		t.Errorf("UserStatus of an unknown user: got %+v, want zero", st)
	}
}

func TestPublishErrors(t *testing.T) {
	srv, err := wsgate.New(anon())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := srv.Publish(ctx, wsgate.Target{User: "a"}, 120, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: got %v, want context.Canceled", err)
	}
	r, err := srv.Publish(context.Background(), wsgate.Target{Users: []string{"a", "b", "a"}}, 120, nil)
	if err != nil || r.Delivered != 0 || r.Seq != 0 {
		t.Errorf("Users push to nobody: got %+v, %v; want zero", r, err)
	}
	if st, _ := srv.UserStatus(context.Background(), "a"); st.Seq != 2 {
		t.Errorf("user listed twice: got seq %d, want 2", st.Seq)
	}
}
