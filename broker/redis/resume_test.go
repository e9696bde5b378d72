package redis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/internal/redistest"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// hopper is a raw full-form client that reconnects again and again, each
// time to a node picked at random, resumes, and checks that every push it
// reads continues its sequence exactly. Push i carries strconv.Itoa(i).
type hopper struct {
	nodes       []*gatewaytest.Gateway
	user        string
	epoch, last uint64 // epoch 0 until the first hello: the first resume asks for everything
	conns       int
}

func (h *hopper) follow(total uint64, deadline time.Time) error {
	for h.last < total {
		if time.Now().After(deadline) {
			return fmt.Errorf("stuck at %d of %d after %d connections", h.last, total, h.conns)
		}
		node := h.nodes[rand.IntN(len(h.nodes))]
		if err := h.session(node, total, deadline, 1+rand.IntN(30)); err != nil {
			return err
		}
	}
	return nil
}

func (h *hopper) session(node *gatewaytest.Gateway, total uint64, deadline time.Time, n int) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	url := node.WS + "/ws?user=" + h.user + "&" + wire.ResumeParam + "=" + string(wire.FormatResume(nil, h.epoch, h.last))
	c, _, err := websocket.Dial(ctx, url, nil, &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}})
	if err != nil {
		return err
	}
	h.conns++
	defer func() {
		_ = c.CloseNow() // like a lost network
		<-c.Done()
	}()
	for read := 0; read <= n && h.last < total; read++ {
		_, data, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("read after %d: %w", h.last, err)
		}
		var f wire.Frame
		if err := wire.DecodeFrame(data, &f); err != nil {
			return err
		}
		switch {
		case f.Type == wire.TypeHello:
			if h.epoch != 0 && f.Epoch != h.epoch {
				return fmt.Errorf("hello: epoch %d, want %d", f.Epoch, h.epoch)
			}
			h.epoch = f.Epoch
		case f.Type != wire.TypePush:
			return fmt.Errorf("unexpected %s frame (code %d %q) after %d", f.Type, f.Code, f.Payload, h.last)
		case f.Seq != h.last+1 || string(f.Payload) != strconv.FormatUint(f.Seq, 10):
			return fmt.Errorf("after %d: got push %d %q", h.last, f.Seq, f.Payload)
		default:
			h.last = f.Seq
		}
	}
	return nil
}

// TestResumeAcrossNodesUnderPushes: clients hop between two nodes while
// both nodes push to their user; no push is lost, repeated or reordered.
func TestResumeAcrossNodesUnderPushes(t *testing.T) {
	leakcheck.Check(t)
	r := redistest.Start(t)
	var nodes []*gatewaytest.Gateway
	for range 2 {
		nodes = append(nodes, r.StartNode(t, redisbroker.Options{HistorySize: 100000}, wsgate.Config{HandshakeRate: -1}))
	}
	waitSubscribed(t, nodes[0], nodes[1])
	waitSubscribed(t, nodes[1], nodes[0])
	const total = 1000
	deadline := time.Now().Add(6 * timeout)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &hopper{nodes: nodes, user: "gina"}
			if err := h.follow(total, deadline); err != nil {
				errs <- err
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= total; i++ {
			// The pushes alternate between the nodes; Redis orders them.
			res, err := nodes[i%2].Publish(context.Background(), wsgate.Target{User: "gina"}, 120, []byte(strconv.Itoa(i)))
			if err != nil || res.Seq != uint64(i) {
				errs <- fmt.Errorf("push %d: got seq %d, %v", i, res.Seq, err)
				return
			}
			if i%8 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, n := range nodes {
		if st := n.Stats(); st.Lost != 0 {
			t.Errorf("node %d: %d pushes-lost notices, want none", i, st.Lost)
		}
	}
}
