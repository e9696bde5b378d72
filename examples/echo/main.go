// Command echo is an RFC 6455 echo server built on wsgate's websocket
// engine: every text or binary message comes back with the same opcode.
// It is the endpoint for conformance suites (Autobahn, the interop tests)
// and for the engine benchmarks.
//
//	/echo and /   WebSocket echo (permessage-deflate accepted, 16 MiB messages)
//	GET /stats    {"conns":N,"goroutines":N,"heap_inuse":N}
//
// Usage:
//
//	go run ./examples/echo -addr 127.0.0.1:9001 [-mode reactor|blocking] [-compress=true]
//
// SIGINT or SIGTERM closes every connection with 1001 (going away) and
// exits once they are all gone.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/websocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// readLimit is the largest message echoed: the Autobahn suite sends up to
// 16 MiB.
const readLimit = 16 << 20

// shutdownTimeout bounds the wait for clients to answer our close frame.
const shutdownTimeout = 10 * time.Second

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9001", "listen address")
	mode := fs.String("mode", "reactor", "I/O mode: reactor (epoll, Linux) or blocking (goroutines)")
	compress := fs.Bool("compress", true, "accept permessage-deflate")
	takeover := fs.Bool("compress-takeover", false, "with -compress, keep each connection's compression context between messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := websocket.Config{ReadLimit: readLimit, Compression: *compress, CompressionContextTakeover: *takeover}
	switch *mode {
	case "reactor":
		cfg.Mode = websocket.ModeReactor
	case "blocking":
		cfg.Mode = websocket.ModeBlocking
	default:
		return fmt.Errorf("echo: -mode must be reactor or blocking, got %q", *mode)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	fmt.Fprintf(stdout, "echo: listening on %s (mode %s, compression %v)\n", ln.Addr(), *mode, *compress)
	return serve(ctx, ln, cfg)
}

// serve runs the echo server on ln until ctx is done.
func serve(ctx context.Context, ln net.Listener, cfg websocket.Config) error {
	ws := websocket.NewServer(cfg, websocket.Handler{
		OnMessage: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
			// Write waits for room rather than failing: a conformance
			// client may send faster than it reads. It fails only once the
			// connection is closing, and then there is nobody to tell.
			_ = c.Write(context.Background(), typ, data)
		},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { serveStats(w, ws) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { accept(w, r, ws) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var err error
	select {
	case err = <-serveErr:
		err = fmt.Errorf("echo: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// http.Server.Shutdown leaves hijacked connections alone; the WebSocket
	// server closes them.
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = fmt.Errorf("echo: http shutdown: %w", serr)
	}
	if serr := ws.Shutdown(sctx, websocket.StatusGoingAway, "server shutting down"); serr != nil && err == nil {
		err = fmt.Errorf("echo: websocket shutdown: %w", serr)
	}
	if err == nil {
		if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
			err = fmt.Errorf("echo: serve: %w", serr)
		}
	}
	return err
}

// accept upgrades /echo and / to the echo.
func accept(w http.ResponseWriter, r *http.Request, ws *websocket.Server) {
	if r.URL.Path != "/" && r.URL.Path != "/echo" {
		http.NotFound(w, r)
		return
	}
	_, _ = ws.Accept(w, r, &websocket.AcceptOptions{
		// This is a conformance and benchmark endpoint: test clients
		// (Autobahn, browsers on other origins) must reach it. A real
		// service keeps the default same-origin check.
		CheckOrigin: func(*http.Request) bool { return true },
	}) // a failed handshake has been answered already
}

// stats is the body of GET /stats, the same as bench/baseline's.
type stats struct {
	Conns      int    `json:"conns"`
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse"`
}

func serveStats(w http.ResponseWriter, ws *websocket.Server) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Header().Set("Content-Type", "application/json")
	// A failed write means the client went away; there is nobody to tell.
	_ = json.NewEncoder(w).Encode(stats{Conns: ws.Len(), Goroutines: runtime.NumGoroutine(), HeapInuse: ms.HeapInuse})
}
