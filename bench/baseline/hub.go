package main

import (
	"context"
	"sync/atomic"

	"github.com/gorilla/websocket"
)

// hub owns the set of connected clients. As in the gorilla chat example only
// its run goroutine touches the set; everyone else talks to it over channels.
type hub struct {
	register   chan *client
	unregister chan *client
	broadcast  chan *push
	done       chan struct{} // closed when run returns

	conns atomic.Int64 // size of the client set, for /stats
}

// push is one broadcast request. delivered has room for the answer so the hub
// never blocks on a publisher.
type push struct {
	msg       []byte
	all       bool
	user      string
	delivered chan int
}

func newHub() *hub {
	return &hub{
		register:   make(chan *client),
		unregister: make(chan *client),
		broadcast:  make(chan *push),
		done:       make(chan struct{}),
	}
}

// run serves the channels until ctx is done, then kicks every client with
// 1001 (going away).
func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	clients := make(map[*client]struct{})
	for {
		select {
		case c := <-h.register:
			clients[c] = struct{}{}
		case c := <-h.unregister:
			delete(clients, c)
		case p := <-h.broadcast:
			p.delivered <- h.deliver(clients, p)
		case <-ctx.Done():
			for c := range clients {
				c.kick(websocket.CloseGoingAway, "server shutting down")
			}
			h.conns.Store(0)
			return
		}
		h.conns.Store(int64(len(clients)))
	}
}

// deliver queues p on every matching /ws client without blocking; a client
// whose send channel is full is disconnected, as in the gorilla chat example,
// so one frozen reader cannot stall everybody else.
func (h *hub) deliver(clients map[*client]struct{}, p *push) int {
	n := 0
	for c := range clients {
		if !c.pushable || (!p.all && c.user != p.user) {
			continue
		}
		select {
		case c.send <- outMsg{typ: websocket.BinaryMessage, data: p.msg}:
			n++
		default:
			c.kick(websocket.ClosePolicyViolation, "slow consumer")
			delete(clients, c)
		}
	}
	return n
}

// join adds c to the hub; false means the hub has stopped.
func (h *hub) join(c *client) bool {
	select {
	case h.register <- c:
		return true
	case <-h.done:
		return false
	}
}

// leave removes c; after shutdown there is nothing to remove it from.
func (h *hub) leave(c *client) {
	select {
	case h.unregister <- c:
	case <-h.done:
	}
}

// publish hands p to the hub and waits for the number of clients it reached.
func (h *hub) publish(ctx context.Context, p *push) (int, error) {
	p.delivered = make(chan int, 1)
	select {
	case h.broadcast <- p:
	case <-h.done:
		return 0, errHubClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// Once the hub has taken p it always answers, without blocking.
	return <-p.delivered, nil
}
