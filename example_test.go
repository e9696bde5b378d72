package wsgate_test

import (
	"context"
	"fmt"
	"net"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// A gateway with one handler, and a simple-form client sending the classic
// 16-byte message: action 110 and "我们都好".
func Example() {
	srv, err := wsgate.New(wsgate.Config{InsecureNoAuth: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = srv.Handle(110, func(ctx context.Context, req *wsgate.Request) ([]byte, error) {
		return append([]byte("got "), req.Payload...), nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() { stop(); <-served }()

	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/ws", nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = c.CloseNow() }() // the example is over
	_ = c.WriteMessage(websocket.BinaryMessage, wire.AppendSimple(nil, 110, []byte("我们都好")))
	_, reply, err := c.Read(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	action, payload, _ := wire.DecodeSimple(reply)
	fmt.Println(action, string(payload))
	// Output: 110 got 我们都好
}

// Pushing to every device of a user; the message is framed once.
func ExampleServer_Push() {
	srv, err := wsgate.New(wsgate.Config{InsecureNoAuth: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := srv.Push(context.Background(), wsgate.Target{User: "alice"}, 120, []byte("you have mail"))
	fmt.Println(n, err)
	// Output: 0 <nil>
}
