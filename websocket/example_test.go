package websocket_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

// An echo server, and a pull-mode client talking to it.
func ExampleServer() {
	srv := websocket.NewServer(websocket.Config{IdleTimeout: time.Minute}, websocket.Handler{
		OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
			if err := c.WriteMessage(typ, data); err != nil {
				// The queue is full (the peer does not read) or the
				// connection is closing: give up on this peer.
				_ = c.CloseNow()
			}
		},
		OnClose: func(c *websocket.Conn, err error) {
			fmt.Printf("server: closed with %d\n", websocket.CloseStatus(err))
		},
	})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = srv.Accept(w, r, nil) // on error the HTTP answer is already written
	}))
	defer hs.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil, nil)
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		fmt.Println("write:", err)
		return
	}
	_, data, err := c.Read(ctx)
	if err != nil {
		fmt.Println("read:", err)
		return
	}
	fmt.Println("client: got", string(data))

	// Shutdown closes every connection (the client reads the close) and
	// waits for them.
	if err := srv.Shutdown(ctx, websocket.StatusGoingAway, "bye"); err != nil {
		fmt.Println("shutdown:", err)
	}
	_, _, err = c.Read(ctx)
	fmt.Println("client:", err)
	<-c.Done()
	// Output:
	// client: got hello
	// server: closed with 1001
	// client: websocket: close 1001 (going away): bye
}
