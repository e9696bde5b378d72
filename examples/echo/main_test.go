package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

const testLimit = 10 * time.Second

func TestEchoAndStats(t *testing.T) {
	for _, mode := range []websocket.Mode{websocket.ModeReactor, websocket.ModeBlocking} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		ctx, stop := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() {
			served <- serve(ctx, ln, websocket.Config{Mode: mode, Compression: true, ReadLimit: readLimit})
		}()

		dctx, cancel := context.WithTimeout(context.Background(), testLimit)
		c, _, err := websocket.Dial(dctx, "ws://"+ln.Addr().String()+"/echo", &websocket.Config{Compression: true}, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		for _, typ := range []websocket.MessageType{websocket.TextMessage, websocket.BinaryMessage} {
			if err := c.WriteMessage(typ, []byte("hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello")); err != nil {
				t.Fatalf("write: %v", err)
			}
			gotTyp, got, err := c.Read(dctx)
			if err != nil || gotTyp != typ || len(got) != 101 {
				t.Fatalf("echo: got type %d, %d bytes, %v; want type %d, 101 bytes", gotTyp, len(got), err, typ)
			}
		}

		resp, err := http.Get("http://" + ln.Addr().String() + "/stats")
		if err != nil {
			t.Fatalf("GET /stats: %v", err)
		}
		var s stats
		err = json.NewDecoder(resp.Body).Decode(&s)
		_ = resp.Body.Close() // read fully
		if err != nil || s.Conns != 1 || s.Goroutines <= 0 || s.HeapInuse == 0 {
			t.Errorf("GET /stats: got %+v (%v), want 1 conn and non-zero counters", s, err)
		}

		stop() // like SIGTERM: the client must get 1001
		if _, _, err := c.Read(dctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("after shutdown: got %v, want close 1001", err)
		}
		select {
		case err := <-served:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(testLimit):
			t.Fatal("serve did not return after cancel")
		}
		cancel()
		<-c.Done()
	}
}
