// Command baseline is the comparison server for the wsgate benchmarks: the
// gorilla/websocket "hub" that tutorials teach and many production gateways
// started from, written carefully but with the same architecture — a read
// goroutine and a write goroutine per connection, a buffered send channel per
// client, and one hub goroutine owning the client set through
// register/unregister/broadcast channels.
//
// It serves the endpoints wsgate serves, so every benchmark scenario runs
// against both:
//
//	/echo            RFC 6455 echo: each message comes back with the same opcode
//	/ws?user=ID      action protocol: binary uint32 BE action + payload; the reply
//	                 repeats action and payload; a message shorter than 4 bytes gets
//	                 action 0x80000000 + "wsgate: message shorter than 4 bytes"
//	POST /api/v1/push {"to":{"all":true}|{"user":"ID"},"action":N,"data":"<base64>"}
//	                 sends uint32(action)+data to the /ws targets, answers {"delivered":N}
//	GET /stats       {"conns":N,"goroutines":N,"heap_inuse":N}
//
// Usage:
//
//	go run ./bench/baseline -addr 127.0.0.1:8080
//
// CheckOrigin allows every origin because this is a benchmark target on
// loopback, not something to deploy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
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

// config holds the knobs of one server; the zero value is not used, run fills it.
type config struct {
	// pingPeriod is how often the write goroutine pings; 0 disables pings and
	// read deadlines. The gorilla chat example uses 54 s with a 60 s pong wait;
	// the benchmarks run with 0 so both servers do the same work for an idle
	// connection.
	pingPeriod time.Duration
	// sendQueue is the capacity of each client's send channel (256 in the
	// gorilla chat example). A push that finds it full disconnects the client.
	sendQueue int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	ping := fs.Duration("ping", 0, "ping period like the gorilla chat example (54s there); 0 = no pings, no read deadline")
	queue := fs.Int("queue", 256, "messages buffered per client; a push finding it full disconnects the client")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *queue < 1 {
		return fmt.Errorf("baseline: -queue must be at least 1, got %d", *queue)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	fmt.Fprintf(stdout, "baseline: listening on %s\n", ln.Addr())
	return serve(ctx, ln, config{pingPeriod: *ping, sendQueue: *queue})
}

// shutdownTimeout bounds how long serve waits for HTTP requests in flight.
const shutdownTimeout = 10 * time.Second

// serve runs the server on ln until ctx is done, then stops accepting, closes
// every WebSocket with 1001 (going away) and waits for all its goroutines.
func serve(ctx context.Context, ln net.Listener, cfg config) error {
	h := newHub()
	hubCtx, stopHub := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		h.run(hubCtx)
	}()
	a := newApp(h, cfg)
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var err error
	select {
	case err = <-serveErr:
		err = fmt.Errorf("baseline: serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if serr := srv.Shutdown(sctx); serr != nil {
			err = fmt.Errorf("baseline: shutdown: %w", serr)
		}
		cancel()
		<-serveErr // http.ErrServerClosed after Shutdown; nothing to report
	}
	// http.Server.Shutdown leaves hijacked connections alone: stopping the hub
	// kicks every client, whose pumps then close their connections.
	stopHub()
	<-hubDone
	a.wait()
	return err
}

// app carries what the HTTP handlers share.
type app struct {
	hub      *hub
	cfg      config
	upgrader websocket.Upgrader

	mu      sync.Mutex
	closed  bool           // set by wait; no connection goroutine starts after it
	workers sync.WaitGroup // read and write pumps
}

func newApp(h *hub, cfg config) *app {
	return &app{
		hub: h,
		cfg: cfg,
		// The buffer sizes of the gorilla chat example.
		upgrader: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			CheckOrigin:     func(*http.Request) bool { return true }, // benchmark target only
		},
	}
}

// track reserves n connection goroutines, or reports false once wait has
// begun; the mutex makes Add never race with Wait.
func (a *app) track(n int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.workers.Add(n)
	return true
}

// wait blocks until every connection goroutine has returned.
func (a *app) wait() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.workers.Wait()
}

// errHubClosed is returned to pushes that arrive during shutdown.
var errHubClosed = errors.New("baseline: hub closed")
