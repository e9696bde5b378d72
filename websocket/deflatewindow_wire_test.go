package websocket_test

// permessage-deflate window-size parameters on the wire, per parameter and
// window size: raw TCP against our server (server_max_window_bits,
// client_max_window_bits in offers) and against our client
// (client_max_window_bits in the response). What our side compresses is
// decoded with a DEFLATE decoder that reports the farthest
// back-reference, which must lie within the negotiated window.

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/websocket"
)

// windowMessage is 20 KiB of JSON-like text: repeats both within 256 bytes
// and far beyond, so a compressor ignoring the window would show it.
func windowMessage(seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	var b []byte
	for i := 0; len(b) < 20<<10; i++ {
		b = fmt.Appendf(b, `{"id":%d,"topic":"prices.%d","price":%d.%02d},`, i, rng.IntN(9), rng.IntN(2000), rng.IntN(100))
	}
	return b
}

// inflateChecked decodes a compressed message payload, which may refer to
// the messages before it (history), and checks it against want and the
// window.
func inflateChecked(t *testing.T, history, payload, want []byte, window int) {
	t.Helper()
	out, maxDist, err := websocket.InflateWindowed(history, append(bytes.Clone(payload), 0, 0, 0xff, 0xff))
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("inflated %d bytes, want the %d sent", len(out), len(want))
	}
	if maxDist > window {
		t.Fatalf("got a back-reference %d bytes back, want at most the negotiated window, %d", maxDist, window)
	}
}

// deflateRaw compresses msg as a permessage-deflate payload (full window).
func deflateRaw(t *testing.T, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed) // the level is valid
	_, _ = w.Write(msg)                          // a bytes.Buffer does not fail
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

func TestServerMaxWindowBitsOnTheWire(t *testing.T) {
	for bits := 8; bits <= 15; bits++ {
		for _, takeover := range []bool{false, true} {
			for _, extra := range []string{"", "; server_no_context_takeover; client_max_window_bits", "; client_max_window_bits=" + fmt.Sprint(bits)} {
				offer := fmt.Sprintf("permessage-deflate; server_max_window_bits=%d%s", bits, extra)
				t.Run(fmt.Sprintf("%s takeover=%v", offer, takeover), func(t *testing.T) {
					forEachMode(t, func(t *testing.T, mode websocket.Mode) {
						cfg := websocket.Config{Mode: mode, Compression: true, CompressionContextTakeover: takeover}
						hs := startEchoServer(t, cfg)
						c, resp := dialRawHeaders(t, hs, "Sec-WebSocket-Extensions: "+offer+"\r\n")
						ext := resp.Header.Get("Sec-WebSocket-Extensions")
						if !strings.Contains(ext, fmt.Sprintf("server_max_window_bits=%d", bits)) {
							t.Fatalf("got Sec-WebSocket-Extensions %q, want server_max_window_bits=%d granted", ext, bits)
						}
						if strings.Contains(ext, "client_max_window_bits") {
							t.Errorf("got %q, want client_max_window_bits left unanswered (we inflate any window)", ext)
						}
						// Two messages: the second could refer to the first if the
						// compressor kept its context.
						var history []byte
						for seed := range uint64(2) {
							msg := windowMessage(seed)
							// Sent compressed, as a peer with that window would.
							c.send(frame{op: opText, fin: true, rsv: 0x40, payload: deflateRaw(t, msg)})
							f := c.readFrame()
							if f.op != opText || !f.fin || f.rsv != 0x40 {
								t.Fatalf("got frame op=%#x fin=%v rsv=%#x, want a compressed text frame", f.op, f.fin, f.rsv)
							}
							inflateChecked(t, history, f.payload, msg, 1<<bits)
							if takeover { // without, a reference into the last message fails
								if takeover { // without, a reference into the last message fails
									history = append(history, msg...)
								}
							}
						}
					})
				})
			}
		}
	}
}

// A PreparedMessage is compressed once with the full window: a connection
// that was granted less frames it itself.
func TestServerMaxWindowBitsPrepared(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode websocket.Mode) {
		msg := windowMessage(3)
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, msg)
		if err != nil {
			t.Fatal(err)
		}
		srv := websocket.NewServer(websocket.Config{Mode: mode, Compression: true}, websocket.Handler{
			OnMessage: func(c *websocket.Conn, _ websocket.MessageType, _ []byte) {
				_ = c.WritePrepared(pm) // checked on the wire
			},
		})
		c, _ := dialRawHeaders(t, rtServe(t, srv), "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n")
		c.send(text("go"))
		f := c.readFrame()
		if f.rsv != 0x40 {
			t.Fatalf("got rsv %#x, want a compressed frame", f.rsv)
		}
		inflateChecked(t, nil, f.payload, msg, 1<<9)
	})
}

func TestClientMaxWindowBitsOnTheWire(t *testing.T) {
	for bits := 8; bits <= 15; bits++ {
		for _, takeover := range []bool{false, true} {
			t.Run(fmt.Sprintf("bits=%d takeover=%v", bits, takeover), func(t *testing.T) {
				leakcheck.Check(t)
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatalf("listen: %v", err)
				}
				defer ln.Close()
				answer := fmt.Sprintf("permessage-deflate; client_max_window_bits=%d", bits)
				if !takeover {
					answer += "; server_no_context_takeover; client_no_context_takeover"
				}
				cfg := &websocket.Config{Compression: true, CompressionContextTakeover: takeover}
				ctx, cancel := context.WithTimeout(context.Background(), rtLimit)
				defer cancel()
				type dialed struct {
					c   *websocket.Conn
					err error
				}
				ch := make(chan dialed, 1)
				go func() {
					c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/", cfg, nil)
					ch <- dialed{c, err}
				}()
				conn, br, req := rawServerConnExt(t, ln, answer)
				d := <-ch
				if d.err != nil {
					t.Fatalf("dial: %v", d.err)
				}
				defer func() { _ = d.c.CloseNow(); <-d.c.Done() }()
				defer conn.Close() // before CloseNow's wait: the reader sees the end either way
				if offer := req.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(offer, "client_max_window_bits") {
					t.Fatalf("got offer %q, want client_max_window_bits in it", offer)
				}
				var history []byte
				for seed := range uint64(2) {
					msg := windowMessage(seed)
					if err := d.c.WriteMessage(websocket.TextMessage, msg); err != nil {
						t.Fatalf("write: %v", err)
					}
					f, err := readClientFrame(br)
					if err != nil {
						t.Fatalf("read: %v", err)
					}
					if f.op != opText || f.rsv != 0x40 {
						t.Fatalf("got frame op=%#x rsv=%#x, want a compressed text frame", f.op, f.rsv)
					}
					inflateChecked(t, history, f.payload, msg, 1<<bits)
					if takeover { // without, a reference into the last message fails
						history = append(history, msg...)
					}
				}
			})
		}
	}
}
