//go:build unix

package interop

// permessage-deflate window sizes against Node's ws and Python's
// websockets, both ways, for every window size 8-15:
//   - our client (websocket.Dial) against their echo server, which answers
//     client_max_window_bits=N (and compresses with server_max_window_bits=N):
//     our compressor must keep within N, theirs is inflated;
//   - their client offering server_max_window_bits=N against our server
//     (websocket.Server in this process), which grants it.
// The peers are window_peer.mjs and window_peer.py.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

type windowPeer struct {
	name    string
	require func(t *testing.T)
	argv    []string
}

func windowPeers() []windowPeer {
	return []windowPeer{
		{"node-ws", func(t *testing.T) { requireNode(t, "ws") }, []string{"node", "window_peer.mjs"}},
		{"python-websockets", requirePythonWebsockets, []string{pythonPath, "window_peer.py"}},
	}
}

// windowMessages mirrors windowMessages() in the peer scripts.
func windowMessages() []struct {
	typ  websocket.MessageType
	data []byte
} {
	var out []struct {
		typ  websocket.MessageType
		data []byte
	}
	for _, n := range []int{1 << 10, 20 << 10, 100 << 10} {
		var s []byte
		for i := 0; len(s) < n; i++ {
			s = fmt.Appendf(s, `{"id":%d,"topic":"prices.%d","price":%d.%d},`, i, i%9, (i*7919)%2000, i%100)
		}
		out = append(out, struct {
			typ  websocket.MessageType
			data []byte
		}{websocket.TextMessage, s[:n]})
	}
	b := make([]byte, 64<<10)
	x := uint32(0x9E3779B9)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return append(out, struct {
		typ  websocket.MessageType
		data []byte
	}{websocket.BinaryMessage, b})
}

// startWindowServer runs the peer's echo server with bits and returns its port.
func startWindowServer(t *testing.T, p windowPeer, bits int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	cmd := exec.CommandContext(ctx, p.argv[0], append(p.argv[1:], "server", fmt.Sprint(bits))...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", p.argv, err)
	}
	t.Cleanup(func() {
		_ = stdin.Close() // the peer exits when its stdin ends
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s server: %v\n%s", p.name, err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			cancel() // kills it
			<-done
			t.Errorf("%s server did not exit when its stdin ended", p.name)
		}
		cancel()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("%s server: no port line: %v\n%s", p.name, err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }() // nothing more is expected; keep the pipe drained
	var hello struct{ Port int }
	if err := json.Unmarshal([]byte(line), &hello); err != nil || hello.Port == 0 {
		t.Fatalf("%s server: got %q, want {\"port\":N}", p.name, line)
	}
	return fmt.Sprintf("127.0.0.1:%d", hello.Port)
}

func TestDeflateWindowOurClient(t *testing.T) {
	for _, p := range windowPeers() {
		t.Run(p.name, func(t *testing.T) {
			p.require(t)
			for bits := 8; bits <= 15; bits++ {
				t.Run(fmt.Sprintf("bits=%d", bits), func(t *testing.T) {
					addr := startWindowServer(t, p, bits) // one server for both variants: each starts an interpreter
					for _, takeover := range []bool{false, true} {
						t.Run(fmt.Sprintf("takeover=%v", takeover), func(t *testing.T) {
							echoThrough(t, "ws://"+addr+"/", bits, takeover)
						})
					}
				})
			}
		})
	}
}

// echoThrough dials url with compression, checks that the server set our
// window to bits, and echoes windowMessages.
func echoThrough(t *testing.T, url string, bits int, takeover bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := &websocket.Config{Compression: true, CompressionContextTakeover: takeover, CompressionThreshold: 1}
	c, resp, err := websocket.Dial(ctx, url, cfg, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer func() { _ = c.CloseNow(); <-c.Done() }()
	ext := resp.Header.Get("Sec-WebSocket-Extensions")
	if !strings.Contains(ext, fmt.Sprintf("client_max_window_bits=%d", bits)) {
		t.Fatalf("got Sec-WebSocket-Extensions %q, want client_max_window_bits=%d", ext, bits)
	}
	msgs := windowMessages()
	for _, m := range msgs {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	for i, m := range msgs {
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if typ != m.typ || !bytes.Equal(data, m.data) {
			t.Fatalf("echo %d: got type %v, %d bytes, want type %v, %d bytes", i, typ, len(data), m.typ, len(m.data))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Errorf("got end %v, want the 1000 close handshake", err)
			}
			return
		}
	}
}

func TestDeflateWindowTheirClient(t *testing.T) {
	for _, p := range windowPeers() {
		t.Run(p.name, func(t *testing.T) {
			p.require(t)
			// One mode: compression does not depend on it, and each case
			// starts an interpreter.
			for _, mode := range []websocket.Mode{websocket.ModeAuto} {
				srv := websocket.NewServer(websocket.Config{Mode: mode, Compression: true, CompressionThreshold: 1},
					websocket.Handler{OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
						_ = c.WriteMessage(typ, data) // the peer checks every echo
					}})
				hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = srv.Accept(w, r, nil) // a failed handshake was answered
				}))
				for bits := 8; bits <= 15; bits++ {
					t.Run(fmt.Sprintf("mode=%d/bits=%d", mode, bits), func(t *testing.T) {
						url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
						argv := append(append([]string(nil), p.argv...), "client", url, fmt.Sprint(bits))
						ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
						defer cancel()
						out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
						if err != nil {
							t.Errorf("%s client, server_max_window_bits=%d: %v\n%s", p.name, bits, err, tail(out, 4<<10))
						}
					})
				}
				hs.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := srv.Shutdown(ctx, websocket.StatusGoingAway, ""); err != nil {
					t.Errorf("shutdown: %v", err)
				}
				cancel()
			}
		})
	}
}
