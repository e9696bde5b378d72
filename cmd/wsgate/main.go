// Command wsgate runs the WebSocket gateway and talks to it.
//
//	wsgate serve            run the gateway (page at /, WebSocket at /ws)
//	wsgate client URL       interactive WebSocket client, like wscat
//	wsgate push ...         push a message through the HTTP API
//	wsgate token ...        print a signed HS256 demo token
//	wsgate version          module version, commit and Go version
//	wsgate healthcheck      exit 0 when the local gateway is healthy
//
// Run "wsgate COMMAND --help" for the flags of each command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// Exit statuses. Scripts may rely on them; usage lists them.
const (
	exitFailure       = 1 // anything else: network error, server error, bad configuration
	exitUsage         = 2 // bad command line
	exitAuth          = 3 // the server refused the token or API key (HTTP 401 or 403)
	exitNotDelivered  = 4 // push: no connection had the message queued
	exitAbnormalClose = 5 // client: the connection ended other than with 1000 or 1001
)

// exitError carries the exit status for its error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExit gives err the exit status code.
func withExit(code int, err error) error { return &exitError{code: code, err: err} }

// exitCode prints err (if any), with one "wsgate" prefix, and maps it to
// the process exit status (see the constants above).
func exitCode(err error, stderr io.Writer) int {
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		// The flag package has already printed the problem and the usage.
		return exitUsage
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "wsgate") {
		msg = "wsgate: " + msg
	}
	fmt.Fprintln(stderr, msg)
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

// errUsage marks bad command lines; the message has already been printed.
var errUsage = errors.New("wsgate: usage error")

const usage = `wsgate — WebSocket long-connection gateway

Usage:
  wsgate serve  [flags]        run the gateway (try: wsgate serve)
  wsgate client [flags] URL    send stdin lines to a WebSocket, print what arrives
  wsgate push   [flags]        push a message through the HTTP API
  wsgate token  [flags]        print a signed HS256 token
  wsgate bench  SCENARIO       load-test a gateway: idle, fanout, rpc, connect
  wsgate version               print the version, commit and Go version
  wsgate healthcheck           exit 0 when the local gateway answers /healthz

Run "wsgate COMMAND --help" for the flags of a command.

Exit status:
  0  success (serve: stopped cleanly by SIGINT/SIGTERM)
  1  failure: network or server error, bad configuration
  2  bad command line
  3  refused: the token or API key was not accepted (HTTP 401/403)
  4  push: no connection had the message queued (delivered 0, or no such connection)
  5  client: the connection ended with a close code other than 1000/1001, or dropped
`

// run is the whole program; main only turns its error into an exit status.
// stdin is a parameter (beside stdout and stderr) so that tests can drive
// "wsgate client" through a pipe.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "client":
		return runClient(ctx, rest, stdin, stdout, stderr)
	case "push":
		return runPush(ctx, rest, stdout, stderr)
	case "token":
		return runToken(rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "version", "--version":
		return runVersion(rest, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "wsgate: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}

// newFlagSet is a subcommand's flag set: its errors and help go to stderr,
// and its help is usage followed by the flags and their defaults.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args with fs and turns the flag package's errors into
// errUsage (the message is already printed) while keeping flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return flag.ErrHelp
	default:
		return errUsage
	}
}
