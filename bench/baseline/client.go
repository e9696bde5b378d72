package main

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	readLimit = 16 << 20         // bytes per message, like wsgate's default
	writeWait = 10 * time.Second // per message, as in the gorilla chat example
	closeWait = time.Second      // for the close frame on the way out
)

// outMsg is one queued message; typ is a gorilla message type.
type outMsg struct {
	typ  int
	data []byte
}

// client is one WebSocket connection with its two pumps.
type client struct {
	conn     *websocket.Conn
	send     chan outMsg
	user     string // from /ws?user=; push targets
	pushable bool   // /ws clients get pushes, /echo clients don't

	quit      chan struct{} // closed by kick; both pumps stop
	once      sync.Once
	closeCode int // written before quit is closed, read after
	closeText string
}

func newClient(conn *websocket.Conn, queue int, user string, pushable bool) *client {
	return &client{
		conn:     conn,
		send:     make(chan outMsg, queue),
		user:     user,
		pushable: pushable,
		quit:     make(chan struct{}),
	}
}

// kick asks the write pump to send a close frame with code and close the
// connection. Only the first call counts.
func (c *client) kick(code int, text string) {
	c.once.Do(func() {
		c.closeCode, c.closeText = code, text
		close(c.quit)
	})
}

// reply queues a message for the write pump, waiting for room: a client that
// does not read its echoes is back-pressured, not dropped. False means the
// connection is going away.
func (c *client) reply(typ int, data []byte) bool {
	select {
	case c.send <- outMsg{typ: typ, data: data}:
		return true
	case <-c.quit:
		return false
	}
}

// handleFunc processes one received message; false ends the connection.
type handleFunc func(c *client, typ int, data []byte) bool

// readPump reads messages until the connection fails or is kicked, then
// leaves the hub and stops the write pump.
func (c *client) readPump(h *hub, cfg config, handle handleFunc) {
	defer func() {
		h.leave(c)
		c.kick(websocket.CloseNormalClosure, "")
	}()
	c.conn.SetReadLimit(readLimit)
	if cfg.pingPeriod > 0 {
		pongWait := cfg.pingPeriod * 10 / 9
		if err := c.conn.SetReadDeadline(time.Now().Add(pongWait)); err != nil {
			return
		}
		c.conn.SetPongHandler(func(string) error {
			return c.conn.SetReadDeadline(time.Now().Add(pongWait))
		})
	}
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			// The peer closed, the connection broke or the write pump closed
			// it; in every case the deferred kick ends the connection.
			return
		}
		if !handle(c, typ, data) {
			return
		}
	}
}

// writePump is the only writer of c.conn (gorilla allows one concurrent
// writer). It owns closing the connection, which also unblocks readPump.
func (c *client) writePump(cfg config) {
	var tick <-chan time.Time
	if cfg.pingPeriod > 0 {
		t := time.NewTicker(cfg.pingPeriod)
		defer t.Stop()
		tick = t.C
	}
	defer func() {
		_ = c.conn.Close() // nobody to report to; readPump sees the closed conn
	}()
	for {
		select {
		case m := <-c.send:
			if err := c.write(m); err != nil {
				c.kick(websocket.CloseAbnormalClosure, "")
				return
			}
		case <-tick:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.kick(websocket.CloseAbnormalClosure, "")
				return
			}
		case <-c.quit:
			c.sendClose()
			return
		}
	}
}

func (c *client) write(m outMsg) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(writeWait)); err != nil {
		return err
	}
	return c.conn.WriteMessage(m.typ, m.data)
}

// sendClose writes the close frame chosen by kick. 1006 means the connection
// already failed, so nothing is sent.
func (c *client) sendClose() {
	if c.closeCode == websocket.CloseAbnormalClosure {
		return
	}
	msg := websocket.FormatCloseMessage(c.closeCode, c.closeText)
	// Best effort: the peer may be gone, or gorilla may already have answered
	// the peer's close frame itself; either way the connection closes next.
	_ = c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
}
