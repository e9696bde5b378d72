package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// cliClient is "wsgate client" running through run() with piped stdin.
type cliClient struct {
	stdin          *io.PipeWriter
	stdout, stderr *syncBuffer
	interrupt      context.CancelFunc // Ctrl-C
	done           chan error
}

func startClient(t *testing.T, args ...string) *cliClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	c := &cliClient{stdin: pw, stdout: &syncBuffer{}, stderr: &syncBuffer{}, interrupt: cancel, done: make(chan error, 1)}
	go func() { c.done <- run(ctx, append([]string{"client"}, args...), pr, c.stdout, c.stderr) }()
	t.Cleanup(func() {
		cancel()
		_ = pw.Close() // ends the stdin reader
		select {
		case <-c.done:
		case <-time.After(testTimeout):
			t.Error("client did not stop")
		}
	})
	c.stderr.waitFor(t, "connected to")
	return c
}

func (c *cliClient) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatalf("write stdin: %v", err)
	}
}

// wait returns run's result.
func (c *cliClient) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err // for the cleanup
		return err
	case <-time.After(testTimeout):
		t.Fatal("client did not return")
		return nil
	}
}

func TestClientActionFrames(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	c := startClient(t, "--token", g.token, "--action", "110", g.ws+"/ws")
	c.send(t, "bob")
	out := c.stdout.waitFor(t, "bob")
	want := `< binary 51 B: action 110 payload "{\"user\":\"demo\",\"added\":\"bob\",\"friends\":[\"bob\"]}"`
	if !strings.Contains(out, want) {
		t.Errorf("stdout: got %q, want %q", out, want)
	}
	c.interrupt() // Ctrl-C
	if err := c.wait(t); err != nil {
		t.Errorf("run after Ctrl-C: got %v, want nil", err)
	}
	if got := c.stderr.String(); !strings.Contains(got, "closed: code 1000 (normal)") {
		t.Errorf("stderr: got %q, want the close code 1000", got)
	}
}

func TestClientErrorReplyAndText(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	c := startClient(t, "--token", g.token, "--action", "999", g.ws+"/ws")
	c.send(t, "x")
	c.stdout.waitFor(t, `< binary 22 B: error reply to action 999: "unknown action 999"`)

	e := startClient(t, g.ws+"/echo")
	e.send(t, "hello there")
	e.stdout.waitFor(t, "< text 11 B: hello there")
	_ = e.stdin.Close() // EOF: linger, then close normally
	if err := e.wait(t); err != nil {
		t.Errorf("run after EOF: got %v, want nil", err)
	}
	e.stderr.waitFor(t, "closed: code 1000")
}

func TestClientFullForm(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	c := startClient(t, "--token", g.token, "--subprotocol", wire.Subprotocol, g.ws+"/ws")
	c.stdout.waitFor(t, `hello conn=`)
	c.send(t, `{"type":"request","id":7,"action":100,"text":"hi"}`)
	c.stdout.waitFor(t, `< text 35 B: {"type":"reply","id":7,"text":"hi"}`)
	if got := c.stderr.String(); !strings.Contains(got, "(subprotocol wsgate.v1)") {
		t.Errorf("stderr: got %q, want the negotiated subprotocol", got)
	}
}

func TestClientEveryAndServerClose(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	c := startClient(t, "--token", g.token, "--every", "20ms", "--action", "100", "--message", "tick", g.ws+"/ws")
	_ = c.stdin.Close() // with --every, EOF does not end the session
	out := c.stdout.waitFor(t, `action 100 payload "tick"`)
	for strings.Count(out, "tick") < 3 {
		out = c.stdout.waitFor(t, "tick")
	}
	g.stop(t) // the server closes with 1001
	if err := c.wait(t); err != nil {
		t.Errorf("run after the server closed: got %v, want nil", err)
	}
	if got := c.stderr.String(); !strings.Contains(got, "closed: code 1001 (going away)") {
		t.Errorf("stderr: got %q, want close 1001", got)
	}
}

func TestClientHeadersAndRefusal(t *testing.T) {
	leakcheck.Check(t)
	g := startServe(t)
	// The token can also travel as a plain header.
	c := startClient(t, "--header", "Authorization: Bearer "+g.token, "--binary", g.ws+"/ws")
	c.send(t, "ab") // a binary message too short to carry an action
	c.stdout.waitFor(t, "error reply to action 0")

	_, errOut, err := runCmd(t, "client", g.ws+"/ws")
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("client without a token: got %v (stderr %q), want HTTP 401", err, errOut)
	}
	for _, args := range [][]string{{"client"}, {"client", "--header", "nocolon", "ws://x"}, {"client", "a", "b"}} {
		if _, _, err := runCmd(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
}

func TestDescribe(t *testing.T) {
	push, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypePush, Action: 120, Seq: 3, Payload: []byte{0xff, 0}})
	cases := []struct {
		typ   websocket.MessageType
		data  []byte
		proto string
		want  string
	}{
		{websocket.TextMessage, []byte("hi"), "", "< text 2 B: hi"},
		{websocket.BinaryMessage, wire.AppendSimple(nil, 110, []byte("我们都好")), "", `< binary 16 B: action 110 payload "我们都好"`},
		{websocket.BinaryMessage, wire.AppendSimpleError(nil, 7, "nope"), "", `< binary 8 B: error reply to action 7: "nope"`},
		{websocket.BinaryMessage, []byte{1, 2}, "", "< binary 2 B: 0x0102"},
		{websocket.BinaryMessage, wire.AppendSimple(nil, 100, []byte("a\x01")), "", "< binary 6 B: action 100 payload 0x6101"},
		{websocket.BinaryMessage, wire.AppendSimple(nil, 100, []byte("tab\there")), "", `< binary 12 B: action 100 payload "tab\there"`},
		{websocket.BinaryMessage, wire.AppendSimple(nil, 5, nil), "", "< binary 4 B: action 5 payload (empty)"},
		{websocket.BinaryMessage, push, wire.Subprotocol, "< binary 15 B: push action=120 seq=3 payload 0xff00"},
		{websocket.BinaryMessage, []byte{99}, wire.Subprotocol, "< binary 1 B: undecodable frame (wsgate: unknown frame type) 0x63"},
	}
	for _, tc := range cases {
		if got := describe(tc.typ, tc.data, tc.proto); got != tc.want {
			t.Errorf("describe(%x): got %q, want %q", tc.data, got, tc.want)
		}
	}
}
