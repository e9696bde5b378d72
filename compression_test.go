package wsgate_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

// Config.Compression negotiates permessage-deflate on /ws and /echo; off,
// neither does.
func TestCompressionNegotiated(t *testing.T) {
	leakcheck.Check(t)
	for _, on := range []bool{false, true} {
		for _, takeover := range []bool{false, true} {
			if takeover && !on {
				continue
			}
			cfg := anon()
			cfg.Compression, cfg.CompressionContextTakeover = on, takeover
			ts := startServer(t, cfg, handle(t, 110, echoHandler))
			for _, path := range []string{"/ws", "/echo"} {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				c, resp, err := websocket.Dial(ctx, ts.wsURL(path), &websocket.Config{Compression: true, CompressionContextTakeover: true}, nil)
				cancel()
				if err != nil {
					t.Fatalf("dial %s: %v", path, err)
				}
				ext := resp.Header.Get("Sec-WebSocket-Extensions")
				if got := strings.HasPrefix(ext, "permessage-deflate"); got != on {
					t.Errorf("Compression=%v, %s: got Sec-WebSocket-Extensions %q", on, path, ext)
				}
				if on && strings.Contains(ext, "server_no_context_takeover") == takeover {
					t.Errorf("CompressionContextTakeover=%v, %s: got %q", takeover, path, ext)
				}
				msg := classic
				if path == "/echo" {
					msg = bytes.Repeat([]byte(`{"topic":"prices","price":1.25},`), 64)
				}
				write(t, c, websocket.BinaryMessage, msg)
				if _, got := read(t, c); path == "/echo" && !bytes.Equal(got, msg) {
					t.Errorf("%s: got echo of %d bytes, want the %d sent", path, len(got), len(msg))
				}
				_ = c.CloseNow() // done with it
				<-c.Done()
			}
		}
	}
}
