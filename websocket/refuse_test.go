package websocket

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// refuseTestLimit bounds every wait in these tests.
const refuseTestLimit = 10 * time.Second

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (local, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	peer, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = peer.Close() }) // test teardown
	local = <-accepted
	if local == nil {
		t.Fatal("accept failed")
	}
	return local, peer
}

// closeSink records the close frame a parser decodes.
type closeSink struct {
	code   StatusCode
	reason string
	seen   bool
}

func (s *closeSink) onMessage(MessageType, []byte) error { return errors.New("unexpected message") }
func (s *closeSink) onChunk(MessageType, []byte, bool) error {
	return errors.New("unexpected chunk")
}
func (s *closeSink) onPing([]byte) error { return errors.New("unexpected ping") }
func (s *closeSink) onPong([]byte) error { return errors.New("unexpected pong") }
func (s *closeSink) onClose(code StatusCode, reason string) error {
	s.code, s.reason, s.seen = code, reason, true
	return nil
}

// TestRefuseUnstarted: a connection whose handshake finished after
// Shutdown began (the engine is closing, or already stopped) is not
// dropped silently: its peer gets Shutdown's close frame, masked when we
// are the client, then the end of TCP.
func TestRefuseUnstarted(t *testing.T) {
	for _, mode := range []Mode{ModeReactor, ModeBlocking} {
		for _, client := range []bool{false, true} {
			for _, stopped := range []bool{false, true} {
				name := map[Mode]string{ModeReactor: "reactor", ModeBlocking: "blocking"}[mode]
				name += map[bool]string{false: "/server", true: "/client"}[client]
				name += map[bool]string{false: "/closing", true: "/stopped"}[stopped]
				t.Run(name, func(t *testing.T) { testRefuse(t, mode, client, stopped) })
			}
		}
	}
}

func testRefuse(t *testing.T, mode Mode, client, stopped bool) {
	e := newEngine(Config{Mode: mode}, Handler{}, client, false)
	const code, reason = StatusCode(4000), "bye"
	if stopped {
		ctx, cancel := context.WithTimeout(context.Background(), refuseTestLimit)
		defer cancel()
		if err := e.shutdown(ctx, code, reason); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	} else {
		// Shutdown has begun but not finished: the reactor still runs.
		e.mu.Lock()
		e.closing, e.closeCode, e.closeReason = true, code, reason
		e.mu.Unlock()
		defer e.stop()
	}
	local, peer := tcpPair(t)
	if c, err := e.open(handshakeResult{conn: local}, nil); !errors.Is(err, net.ErrClosed) || c != nil {
		t.Fatalf("open after Shutdown: got %v, %v, want nil and an error wrapping net.ErrClosed", c, err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(refuseTestLimit)) // a missing close shows as a timeout below
	got, err := io.ReadAll(peer)
	if err != nil {
		t.Fatalf("peer read: got %v after %d bytes, want the close frame and EOF", err, len(got))
	}
	var p parser
	p.init(parserConfig{server: client, readLimit: 1 << 10})
	var s closeSink
	if err := p.feed(got, &s); err != nil {
		t.Fatalf("peer parse %x: %v", got, err)
	}
	if !s.seen || s.code != code || s.reason != reason {
		t.Errorf("peer got %x (close seen %v, code %d %q), want a close frame %d %q", got, s.seen, s.code, s.reason, code, reason)
	}
}

// TestRefuseUnavailable: a server connection that could not start while
// the engine is not shutting down (the reactor could not take its socket,
// out of file descriptors) gets HTTP 503 instead of its 101, never a 101
// followed by 1011.
func TestRefuseUnavailable(t *testing.T) {
	for _, mode := range []Mode{ModeReactor, ModeBlocking} {
		t.Run(map[Mode]string{ModeReactor: "reactor", ModeBlocking: "blocking"}[mode], func(t *testing.T) {
			e := newEngine(Config{Mode: mode}, Handler{}, false, false)
			defer e.stop()
			local, peer := tcpPair(t)
			res := handshakeResult{conn: local, response: []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n")}
			c := newConn(e, res, nil)
			if mode == ModeReactor && reactorSupported {
				fd, ok, err := takeFD(local)
				if err != nil || !ok {
					t.Fatalf("takeFD: %v, %v", ok, err)
				}
				c.fd = int32(fd)
			}
			c.refuse(local, res.response)
			_ = peer.SetReadDeadline(time.Now().Add(refuseTestLimit)) // a missing answer shows as a timeout below
			got, err := io.ReadAll(peer)
			if err != nil {
				t.Fatalf("peer read: got %v after %q, want a 503 and EOF", err, got)
			}
			if want := unavailableResponse; string(got) != want {
				t.Errorf("peer got %q, want %q", got, want)
			}
		})
	}
}
