// Command httpfloor is the floor under two scenarios of bench/peer/run.sh:
// the cheapest net/http server that the load generator ("wsgate bench peer
// --peer wsgate") can run the personal and connect scenarios against, so
// that what a push or a handshake must cost on this machine is measured
// with the same client, not argued from profiles.
//
// It does only what those scenarios need, in the cheapest way the standard
// library and the libraries wsgate uses allow:
//
//   - GET /ws: net/http reads the request; the handler checks the upgrade
//     headers, verifies the HS256 JWT with golang-jwt and the options
//     wsgate uses (algorithm fixed, exp required, no leeway), hijacks the
//     connection, writes the 101 and the full-form hello in one write(2)
//     and puts the connection in a map by user and in an epoll set: one
//     goroutine reads every connection, as wsgate's engine does (a
//     goroutine per connection costs more: the garbage collector scans
//     every stack). A subscribe request gets its reply (subscriptions are
//     not kept), a ping its pong, a close or EOF ends the connection.
//   - POST /api/v1/push: net/http reads the request; the handler checks the
//     API key, decodes the JSON body {"to":{"user":…},"action":…,"json":…}
//     with encoding/json, looks the user up in the map, does one write(2)
//     of the push frame to its connection (no queue, no sequence, no
//     history) and answers 200 {"delivered":1}.
//
// Anything else (topics, other push targets, the simple form, compression)
// is refused or ignored: this is a measuring instrument, not a gateway.
//
//	go run ./bench/peer/floor/httpfloor --jwt-secret S --api-key K   # prints "httpfloor listening on http://…"
//
// bench/peer/run.sh runs it as a third server with FLOOR_SERVER=1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("httpfloor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen `address`")
	secret := fs.String("jwt-secret", "", "HS256 secret of the clients' tokens (at least 16 bytes)")
	key := fs.String("api-key", "", "API key of the push API (Authorization: Bearer KEY)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this `address` (off by default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := newFloor([]byte(*secret), *key)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *pprofAddr != "" {
		pl, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("httpfloor: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		ps := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ps.Serve(pl) }()  // ends when ps is closed below
		defer func() { _ = ps.Close() }() // nothing to report at exit
		fmt.Printf("httpfloor pprof on http://%s/debug/pprof/\n", pl.Addr())
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("httpfloor: %w", err)
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("httpfloor listening on http://%s\n", ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = srv.Close() // hijacked connections are not closed by it
		f.shutdown()
		<-done
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
