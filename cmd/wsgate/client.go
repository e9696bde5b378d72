package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// clientFlags are the settings of "wsgate client".
type clientFlags struct {
	binary       bool
	action       uint
	every        time.Duration
	message      string
	subprotocols string
	headers      headerList
	token        string
	compress     bool
	closeWait    time.Duration
	linger       time.Duration
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.binary, "binary", false, "send each line as a binary message instead of text")
	fs.UintVar(&f.action, "action", 0, "send each line as an action frame: uint32 big-endian `N` + the line (implies --binary)")
	fs.DurationVar(&f.every, "every", 0, "also send --message every `interval` (e.g. 1s)")
	fs.StringVar(&f.message, "message", "ping", "the message --every sends")
	fs.StringVar(&f.subprotocols, "subprotocol", "", "comma-separated subprotocols to offer (e.g. wsgate.v1, wsgate.v1.json)")
	fs.Var(&f.headers, "header", "extra handshake header `\"Name: value\"` (repeatable)")
	fs.StringVar(&f.token, "token", "", "send \"Authorization: Bearer TOKEN\"")
	fs.BoolVar(&f.compress, "compress", false, "offer permessage-deflate")
	fs.DurationVar(&f.closeWait, "close-wait", 2*time.Second, "on Ctrl-C, how long to wait for the server's close frame")
	fs.DurationVar(&f.linger, "linger", time.Second, "after stdin ends, how long to wait for replies before closing (not with --every)")
}

// headerList collects repeated --header flags.
type headerList []string

func (h *headerList) String() string { return strings.Join(*h, ", ") }

func (h *headerList) Set(s string) error {
	name, _, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("want \"Name: value\", got %q", s)
	}
	*h = append(*h, s)
	return nil
}

func (f *clientFlags) header() http.Header {
	h := http.Header{}
	for _, kv := range f.headers {
		name, value, _ := strings.Cut(kv, ":")
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if f.token != "" {
		h.Set("Authorization", "Bearer "+f.token)
	}
	return h
}

// frame turns one line (or the --every message) into the message to send.
func (f *clientFlags) frame(line string) (websocket.MessageType, []byte) {
	switch {
	case f.action != 0:
		return websocket.BinaryMessage, wire.AppendSimple(nil, wire.Action(f.action), []byte(line))
	case f.binary:
		return websocket.BinaryMessage, []byte(line)
	}
	return websocket.TextMessage, []byte(line)
}

// runClient implements "wsgate client": stdin lines go out, everything that
// arrives is printed to stdout, connection events go to stderr.
func runClient(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("wsgate client", "Usage: wsgate client [flags] ws://host:port/path\n\nSends each line of stdin as a message and prints every message that arrives with its type and\nlength (action frames decoded). Ctrl-C closes with 1000 and prints the close code.\n\nExit status: 0 closed with 1000 or 1001; 3 handshake refused with 401/403; 5 closed with any\nother code (1009 message too big, 1007 invalid UTF-8, 4000 slow consumer, …) or dropped;\n1 any other failure; 2 bad command line.\n\n", stderr)
	var f clientFlags
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "wsgate client: want exactly one URL")
		fs.Usage()
		return errUsage
	}
	if f.action > 1<<32-1 {
		fmt.Fprintln(stderr, "wsgate client: --action must fit in 32 bits")
		return errUsage
	}
	url := fs.Arg(0)
	conn, resp, err := websocket.Dial(ctx, url, &websocket.Config{Compression: f.compress, CloseTimeout: f.closeWait},
		&websocket.DialOptions{Header: f.header(), Subprotocols: config.SplitList(f.subprotocols)})
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("wsgate: connect %s: HTTP %s: %w", url, resp.Status, err)
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				return withExit(exitAuth, err)
			}
			return err
		}
		return fmt.Errorf("wsgate: connect %s: %w", url, err)
	}
	proto := conn.Subprotocol()
	fmt.Fprintf(stderr, "connected to %s (subprotocol %s); press Ctrl-C to quit\n", url, orNone(proto))
	s := &session{conn: conn, flags: &f, stdout: stdout, stderr: stderr, proto: proto}
	return s.run(ctx, stdin)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// session is one connection of "wsgate client".
type session struct {
	conn           *websocket.Conn
	flags          *clientFlags
	stdout, stderr io.Writer
	proto          string
}

// run sends lines and ticks until stdin ends (then lingers), the server
// closes or ctx ends (Ctrl-C), and reports how the connection closed.
func (s *session) run(ctx context.Context, stdin io.Reader) error {
	readDone := make(chan error, 1)
	go func() { readDone <- s.printMessages() }()
	// The stdin reader is the one goroutine run does not wait for: a read
	// from a terminal cannot be interrupted. It ends at EOF, and it never
	// blocks on the channel after run has returned (done is closed).
	done := make(chan struct{})
	defer close(done)
	lines := readLines(stdin, done)

	var tick <-chan time.Time
	if s.flags.every > 0 {
		t := time.NewTicker(s.flags.every)
		defer t.Stop()
		tick = t.C
	}
	var linger <-chan time.Time
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				if s.flags.every == 0 {
					linger = time.After(s.flags.linger)
				}
				continue
			}
			if err := s.send(ctx, line); err != nil {
				return s.finish(ctx, err, readDone)
			}
		case <-tick:
			if err := s.send(ctx, s.flags.message); err != nil {
				return s.finish(ctx, err, readDone)
			}
		case err := <-readDone:
			return s.report(err)
		case <-linger:
			return s.close(readDone)
		case <-ctx.Done():
			return s.close(readDone)
		}
	}
}

func (s *session) send(ctx context.Context, line string) error {
	typ, data := s.flags.frame(line)
	return s.conn.Write(ctx, typ, data)
}

// close starts the closing handshake and waits for its end.
func (s *session) close(readDone <-chan error) error {
	_ = s.conn.Close(websocket.StatusNormalClosure, "") // a connection already closing reports its own end below
	inTime, err := s.awaitEnd(readDone)
	if !inTime {
		fmt.Fprintf(s.stderr, "no close frame from the server within %v\n", s.flags.closeWait)
	}
	return s.report(err)
}

// finish handles a failed send. A send fails because the connection is
// ending (the server closed it, or it broke) or because Ctrl-C interrupted
// a wait for queue room; either way the reader's report says how it ended.
func (s *session) finish(ctx context.Context, sendErr error, readDone <-chan error) error {
	if ctx.Err() != nil {
		return s.close(readDone)
	}
	inTime, err := s.awaitEnd(readDone)
	if !inTime {
		_ = s.report(err)
		return fmt.Errorf("wsgate: send: %w", sendErr)
	}
	return s.report(err)
}

// awaitEnd waits for the reader to see the connection end and returns why.
// The engine gives up on a silent peer after CloseTimeout (= close-wait) by
// itself; past that, awaitEnd drops the connection and reports false.
func (s *session) awaitEnd(readDone <-chan error) (inTime bool, err error) {
	timer := time.NewTimer(s.flags.closeWait + 100*time.Millisecond)
	defer timer.Stop()
	select {
	case err := <-readDone:
		return true, err
	case <-timer.C:
		_ = s.conn.CloseNow() // nothing more to wait for
		return false, <-readDone
	}
}

// report prints how the connection ended. A close handshake with 1000
// (normal) or 1001 (going away: the server is shutting down, or we are) is
// a normal end; any other code (1009 too big, 1007 invalid UTF-8, 4000
// slow consumer, …) and a connection dropped without one are returned as
// errors with exit status exitAbnormalClose.
func (s *session) report(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		fmt.Fprintf(s.stderr, "closed: code %d (%s) reason %q\n", int(ce.Code), wire.CloseCode(ce.Code), ce.Reason)
		if ce.Code == websocket.StatusNormalClosure || ce.Code == websocket.StatusGoingAway {
			return nil
		}
		return withExit(exitAbnormalClose, fmt.Errorf("wsgate: connection closed with %d (%s)", int(ce.Code), wire.CloseCode(ce.Code)))
	}
	fmt.Fprintf(s.stderr, "connection lost: %v\n", err)
	return withExit(exitAbnormalClose, fmt.Errorf("wsgate: connection lost: %w", err))
}

// printMessages prints every message until the connection ends.
func (s *session) printMessages() error {
	for {
		typ, data, err := s.conn.Read(context.Background()) // ends when the connection does
		if err != nil {
			return err
		}
		fmt.Fprintln(s.stdout, describe(typ, data, s.proto))
	}
}

// readLines sends stdin's lines on the returned channel, which is closed at
// EOF or on a read error.
func readLines(r io.Reader, done <-chan struct{}) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	return lines
}

// describe renders a received message: direction, type, length, then the
// content, decoded as a wsgate frame where the form says how.
func describe(typ websocket.MessageType, data []byte, proto string) string {
	if typ == websocket.TextMessage {
		return fmt.Sprintf("< text %d B: %s", len(data), data)
	}
	head := fmt.Sprintf("< binary %d B: ", len(data))
	if proto == wire.Subprotocol || proto == wire.SubprotocolJSON {
		var f wire.Frame
		if err := wire.DecodeFrame(data, &f); err != nil {
			return head + "undecodable frame (" + err.Error() + ") 0x" + hex.EncodeToString(data)
		}
		return head + describeFrame(&f)
	}
	a, payload, err := wire.DecodeSimple(data)
	switch {
	case err != nil:
		return head + showPayload(data)
	case a&wire.SimpleErrorBit != 0:
		return head + fmt.Sprintf("error reply to action %d: %s", a&^wire.SimpleErrorBit, showPayload(payload))
	}
	return head + fmt.Sprintf("action %d payload %s", a, showPayload(payload))
}

func describeFrame(f *wire.Frame) string {
	switch f.Type {
	case wire.TypeHello:
		return fmt.Sprintf("hello conn=%s user=%q seq=%d maxMessage=%d heartbeat=%ds", f.ConnID, f.UserID, f.Seq, f.MaxMessage, f.Heartbeat)
	case wire.TypeReply:
		return fmt.Sprintf("reply id=%d payload %s", f.ID, showPayload(f.Payload))
	case wire.TypeError:
		return fmt.Sprintf("error id=%d code=%d (%s) message %q", f.ID, f.Code, f.Code, f.Payload)
	case wire.TypePush:
		return fmt.Sprintf("push action=%d seq=%d payload %s", f.Action, f.Seq, showPayload(f.Payload))
	}
	return fmt.Sprintf("%s frame", f.Type)
}

// showPayload quotes printable UTF-8 text and writes anything else in hex.
func showPayload(b []byte) string {
	switch {
	case len(b) == 0:
		return "(empty)"
	case isText(b):
		return strconv.Quote(string(b))
	}
	return "0x" + hex.EncodeToString(b)
}

// isText reports whether b is UTF-8 made of printable characters and
// ordinary whitespace.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}
