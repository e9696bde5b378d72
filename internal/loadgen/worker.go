package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// A worker process holds part of the connections of an idle or fanout run
// when one process cannot (the open-files limit is per process). The bench
// process starts it through a Spawner, which runs Hold in the new process,
// and talks to it over its stdin and stdout, one JSON object per line:
//
//	bench → worker:  {"cmd":"open"}  {"cmd":"echo","timeout_ms":T}
//	                 {"cmd":"wait","round":R,"timeout_ms":T}
//	worker → bench:  {"progress":{"opened":N,"msgs":N,"errors":N}}
//	                 {"reply":{"n":N,"round":{"got":N,"last":NS},"err":"…"}}
//
// Closing the worker's stdin closes its connections and ends it, so a
// worker never outlives the bench process that feeds it.

// Spawner starts a worker that runs Hold(ctx, args, stdin, stdout) and
// returns its pipes. "wsgate bench" re-executes itself as
// "wsgate bench hold ARGS"; tests run Hold on a goroutine.
type Spawner func(ctx context.Context, args []string) (*Worker, error)

// Worker is a started worker process.
type Worker struct {
	Stdin  io.WriteCloser // commands; Close ends the worker
	Stdout io.Reader      // progress and replies
	Wait   func() error   // waits for the worker to exit, after Stdout reached EOF
}

type command struct {
	Cmd       string `json:"cmd"`
	Round     uint64 `json:"round,omitempty"`
	Upto      int    `json:"upto,omitempty"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
}

type reply struct {
	N       int         `json:"n"`
	Round   roundResult `json:"round"`
	Err     string      `json:"err,omitempty"`
	Timeout bool        `json:"timeout,omitempty"`
	CPU     int64       `json:"cpu_ns,omitempty"` // the worker's CPU time when it answered
}

type workerMsg struct {
	Progress *snapshot `json:"progress,omitempty"`
	Reply    *reply    `json:"reply,omitempty"`
}

// progressEvery is how often a worker reports its counters.
const progressEvery = 200 * time.Millisecond

// holdArgs is the command line of a worker holding the share hc.
func holdArgs(hc holderConfig) []string {
	args := []string{"--url", hc.URL, "--first", strconv.Itoa(hc.First), "--n", strconv.Itoa(hc.N),
		"--conc", strconv.Itoa(hc.Conc), "--dial-timeout", hc.DialTimeout.String()}
	if hc.Peer.Peer != "" {
		// The secret goes on the command line of a local child: a
		// benchmark secret, visible to this machine's users anyway.
		args = append(args, "--peer", string(hc.Peer.Peer), "--secret", hc.Peer.Secret, "--topics", strconv.Itoa(hc.Peer.Topics))
	}
	return args
}

func parseHoldArgs(args []string) (holderConfig, error) {
	fs := flag.NewFlagSet("bench hold", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var hc holderConfig
	fs.StringVar(&hc.URL, "url", "", "WebSocket URL")
	fs.IntVar(&hc.First, "first", 0, "user number of the first connection")
	fs.IntVar(&hc.N, "n", 0, "connections")
	fs.IntVar(&hc.Conc, "conc", 50, "handshakes in flight")
	fs.DurationVar(&hc.DialTimeout, "dial-timeout", 10*time.Second, "handshake timeout")
	fs.StringVar((*string)(&hc.Peer.Peer), "peer", "", "peer protocol: wsgate or centrifugo (default: simple form)")
	fs.StringVar(&hc.Peer.Secret, "secret", "", "HS256 secret of the peer tokens")
	fs.IntVar(&hc.Peer.Topics, "topics", 0, "busy topics")
	if err := fs.Parse(args); err != nil {
		return hc, fmt.Errorf("wsgate: bench hold: %w", err)
	}
	if hc.URL == "" || hc.N < 0 {
		return hc, errors.New("wsgate: bench hold: needs --url and --n ≥ 0")
	}
	return hc, nil
}

// Hold is the worker's side: it reads commands from stdin until EOF, runs
// them on its share of connections and answers on stdout. ctx bounds each
// command; the worker ends when its stdin does.
func Hold(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	hc, err := parseHoldArgs(args)
	if err != nil {
		return err
	}
	c := &Counters{}
	h := newHolder(hc, c)
	out := &msgWriter{enc: json.NewEncoder(stdout)}
	stopReports := out.reportEvery(progressEvery, c)

	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		var cmd command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			err = fmt.Errorf("wsgate: bench hold: bad command %q: %w", sc.Text(), err)
			out.send(workerMsg{Reply: &reply{Err: err.Error()}})
			continue
		}
		rep := h.run(ctx, cmd)
		s := c.snapshot()
		out.send(workerMsg{Progress: &s}) // counters first, so the bench has them with the reply
		out.send(workerMsg{Reply: &rep})
	}
	stopReports()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	cerr := h.close(cctx)
	s := c.snapshot()
	out.send(workerMsg{Progress: &s})
	return errors.Join(sc.Err(), cerr, out.err)
}

// run executes one command.
func (h *holder) run(ctx context.Context, cmd command) reply {
	timeout := time.Duration(cmd.TimeoutMS) * time.Millisecond
	var rep reply
	var err error
	switch cmd.Cmd {
	case "open":
		rep.N, err = h.open(ctx)
	case "echo":
		rep.N, err = h.echo(ctx, timeout)
	case "wait":
		rep.Round, err = h.waitRound(ctx, cmd.Round, cmd.Upto, timeout)
	case "cpu":
		var d time.Duration
		d, err = h.cpu(ctx)
		rep.CPU = int64(d)
	default:
		err = fmt.Errorf("wsgate: bench hold: unknown command %q", cmd.Cmd)
	}
	if err != nil {
		rep.Err = err.Error()
		rep.Timeout = errors.Is(err, errTimeout)
	}
	return rep
}

// msgWriter serialises the worker's output lines.
type msgWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error // first write error; later writes are skipped
}

func (w *msgWriter) send(m workerMsg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.enc.Encode(m)
	}
}

// reportEvery sends c's counters every interval until the returned stop
// function is called; stop waits for the reporting goroutine.
func (w *msgWriter) reportEvery(every time.Duration, c *Counters) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s := c.snapshot()
				w.send(workerMsg{Progress: &s})
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

// remote is a share held by a worker process.
type remote struct {
	w       *Worker
	c       *Counters
	enc     *json.Encoder
	replies chan reply
	quit    chan struct{} // closed by close: the reader stops handing over replies
	done    chan struct{} // closed when the reader saw the worker's EOF

	mu        sync.Mutex // one command at a time
	closeOnce sync.Once
	readErr   error
}

func spawnRemote(ctx context.Context, spawn Spawner, hc holderConfig, c *Counters) (*remote, error) {
	w, err := spawn(ctx, holdArgs(hc))
	if err != nil {
		return nil, fmt.Errorf("wsgate: bench: start worker: %w", err)
	}
	r := &remote{w: w, c: c, enc: json.NewEncoder(w.Stdin), replies: make(chan reply),
		quit: make(chan struct{}), done: make(chan struct{})}
	go r.read()
	return r, nil
}

// read follows the worker's output until EOF: progress goes into the
// bench's counters, replies to the command waiting for them.
func (r *remote) read() {
	defer close(r.done)
	sc := bufio.NewScanner(r.w.Stdout)
	var last snapshot
	for sc.Scan() {
		var m workerMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			r.readErr = fmt.Errorf("wsgate: bench: worker said %q: %w", sc.Text(), err)
			continue
		}
		if m.Progress != nil {
			r.c.add(*m.Progress, last)
			last = *m.Progress
		}
		if m.Reply != nil {
			select {
			case r.replies <- *m.Reply:
			case <-r.quit:
			}
		}
	}
	if r.readErr == nil {
		r.readErr = sc.Err()
	}
}

// call sends cmd and waits for its reply.
func (r *remote) call(ctx context.Context, cmd command) (reply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enc.Encode(cmd); err != nil {
		return reply{}, fmt.Errorf("wsgate: bench: worker: %w", err)
	}
	select {
	case rep := <-r.replies:
		switch {
		case rep.Timeout:
			return rep, errTimeout
		case rep.Err != "":
			return rep, errors.New(rep.Err)
		}
		return rep, nil
	case <-r.done:
		return reply{}, fmt.Errorf("wsgate: bench: worker ended during %q", cmd.Cmd)
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
}

func (r *remote) open(ctx context.Context) (int, error) {
	rep, err := r.call(ctx, command{Cmd: "open"})
	return rep.N, err
}

func (r *remote) echo(ctx context.Context, timeout time.Duration) (int, error) {
	rep, err := r.call(ctx, command{Cmd: "echo", TimeoutMS: timeout.Milliseconds()})
	return rep.N, err
}

func (r *remote) waitRound(ctx context.Context, round uint64, upto int, timeout time.Duration) (roundResult, error) {
	rep, err := r.call(ctx, command{Cmd: "wait", Round: round, Upto: upto, TimeoutMS: timeout.Milliseconds()})
	return rep.Round, err
}

func (r *remote) cpu(ctx context.Context) (time.Duration, error) {
	rep, err := r.call(ctx, command{Cmd: "cpu"})
	return time.Duration(rep.CPU), err
}

// close ends the worker: its stdin closes, it closes its connections and
// exits. close waits for that, bounded by ctx.
func (r *remote) close(ctx context.Context) error {
	var err error
	r.closeOnce.Do(func() {
		close(r.quit)
		err = r.w.Stdin.Close()
		select {
		case <-r.done:
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("wsgate: bench: worker did not stop: %w", ctx.Err()))
		}
		err = errors.Join(err, r.w.Wait())
		select {
		case <-r.done:
			err = errors.Join(err, r.readErr)
		default:
		}
	})
	return err
}
