package wsgate_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/wire"
)

// The same gateway, driven by the Go SDK instead of raw engine connections.

// sdkDial connects a client.Client, closed when the test ends.
func sdkDial(t *testing.T, ts *testServer, opts client.Options) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := client.Dial(ctx, ts.wsURL("/ws"), opts)
	if err != nil {
		t.Fatalf("client.Dial: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("client.Close: %v", err)
		}
	})
	return c
}

func TestSDKConcurrentRequests(t *testing.T) {
	leakcheck.Check(t)
	const n = 1000
	cfg := anon()
	cfg.MessageRate = -1
	ts := startServer(t, cfg, handle(t, 110, echoHandler))
	c := sdkDial(t, ts, client.Options{MaxInflight: n})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := "q" + strconv.Itoa(i)
			got, err := c.Request(ctx, 110, []byte(q))
			if err == nil && string(got) != "got "+q {
				err = errors.New("request " + q + ": got reply " + string(got))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSDKErrorsAndSubscriptions(t *testing.T) {
	leakcheck.Check(t)
	cfg := wsgate.Config{Authenticate: func(context.Context, *http.Request) (wsgate.Identity, error) {
		return wsgate.Identity{UserID: "alice", Topics: []string{"news.*"}}, nil
	}}
	ts := startServer(t, cfg, handle(t, 120, func(context.Context, *wsgate.Request) ([]byte, error) {
		return nil, &wsgate.ReplyError{Code: wire.MinAppCode + 1, Message: "out of stock"}
	}))
	pushes := make(chan client.Push, 1)
	c := sdkDial(t, ts, client.Options{OnPush: func(p client.Push) { pushes <- p }})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	var werr *client.Error
	if _, err := c.Request(ctx, 120, nil); !errors.As(err, &werr) || werr.Code != wire.MinAppCode+1 || werr.Message != "out of stock" {
		t.Errorf("ReplyError: got %v, want client.Error code %d", err, wire.MinAppCode+1)
	}
	if _, err := c.Request(ctx, 999, nil); !errors.As(err, &werr) || werr.Code != wire.CodeUnknownAction {
		t.Errorf("unknown action: got %v, want code %d", err, wire.CodeUnknownAction)
	}
	if err := c.Subscribe(ctx, "admin"); !errors.As(err, &werr) || werr.Code != wire.CodeForbidden {
		t.Errorf("subscribe outside Identity.Topics: got %v, want code %d", err, wire.CodeForbidden)
	}
	if err := c.Subscribe(ctx, "news.sport"); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if n, err := ts.Push(ctx, wsgate.Target{Topic: "news.sport"}, 130, []byte("goal")); n != 1 || err != nil {
		t.Fatalf("Push: got %d, %v; want 1, nil", n, err)
	}
	select {
	case p := <-pushes:
		if p.Action != 130 || string(p.Payload) != "goal" {
			t.Errorf("push: got %d %q, want 130 \"goal\"", p.Action, p.Payload)
		}
	case <-ctx.Done():
		t.Fatal("push not received")
	}
	if c.Hello().UserID != "alice" || ts.Presence("alice") != 1 {
		t.Errorf("hello user %q, presence %d; want alice, 1", c.Hello().UserID, ts.Presence("alice"))
	}
}

// TestSDKResumeAcrossRestart: a program that keeps its client's position
// across a restart (Close, then a new Dial with Options.Resume) gets every
// push made while it was gone, in order, and nothing twice.
func TestSDKResumeAcrossRestart(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, userAuth())
	got := make(chan client.Push, 16)
	opts := client.Options{Header: http.Header{"X-User": {"lea"}}, OnPush: func(p client.Push) { got <- p }}
	first := sdkDial(t, ts, opts)
	pushSeq(t, ts, "lea", "1")
	if p := recvPush(t, got); string(p.Payload) != "1" {
		t.Fatalf("got %q, want 1", p.Payload)
	}
	pos := first.Position()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"2", "3"} {
		pushSeq(t, ts, "lea", p)
	}
	opts.Resume = &pos
	second := sdkDial(t, ts, opts)
	for _, want := range []string{"2", "3"} {
		if p := recvPush(t, got); string(p.Payload) != want {
			t.Fatalf("after the restart: got %q, want %q", p.Payload, want)
		}
	}
	if p := second.Position(); p.Epoch != pos.Epoch || p.Seq != pos.Seq+2 {
		t.Errorf("Position: got %+v, want %d.%d", p, pos.Epoch, pos.Seq+2)
	}
}
