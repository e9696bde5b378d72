package client_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/wire"
)

const actionAddFriend wire.Action = 110

// startDemoServer runs a gateway with one handler, as a program using the
// library would; the example below is the client side.
func startDemoServer(ctx context.Context) (url string, stop func()) {
	srv, err := wsgate.New(wsgate.Config{InsecureNoAuth: true})
	if err != nil {
		log.Fatal(err)
	}
	_ = srv.Handle(actionAddFriend, func(_ context.Context, req *wsgate.Request) ([]byte, error) {
		return []byte("added " + string(req.Payload)), nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	return "ws://" + ln.Addr().String() + "/ws", func() { cancel(); <-done }
}

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url, stop := startDemoServer(ctx)
	defer stop()

	c, err := client.Dial(ctx, url, client.Options{
		Token:  "", // a JWT from your login service; this demo server needs none
		OnPush: func(p client.Push) { fmt.Printf("push %d: %s\n", p.Action, p.Payload) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	reply, err := c.Request(ctx, actionAddFriend, []byte("bob"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))

	_, err = c.Request(ctx, 999, nil)
	fmt.Println(err)
	// Output:
	// added bob
	// wsgate: unknown action 999 (unknown action)
}
