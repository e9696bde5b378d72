package loadgen

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Counters are the live figures of a run, shown on the progress line. Every
// connection callback adds to them, from any goroutine.
type Counters struct {
	Opened atomic.Int64 // connections opened (handshakes completed)
	Msgs   atomic.Int64 // messages received
	Errors atomic.Int64 // failed dials, error replies, connections lost
}

// snapshot is Counters as plain numbers, as workers report them.
type snapshot struct {
	Opened int64 `json:"opened"`
	Msgs   int64 `json:"msgs"`
	Errors int64 `json:"errors"`
}

func (c *Counters) snapshot() snapshot {
	return snapshot{Opened: c.Opened.Load(), Msgs: c.Msgs.Load(), Errors: c.Errors.Load()}
}

// add adds the difference between two snapshots of another process's
// counters to c.
func (c *Counters) add(now, before snapshot) {
	c.Opened.Add(now.Opened - before.Opened)
	c.Msgs.Add(now.Msgs - before.Msgs)
	c.Errors.Add(now.Errors - before.Errors)
}

// progress prints the live line. On a terminal it rewrites one line; on
// anything else (a log file, a test buffer) it prints a line per tick.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	c     *Counters
	start time.Time

	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
}

// startProgress prints c every interval until stop is called. A nil w
// prints nothing.
func startProgress(w io.Writer, tty bool, every time.Duration, label string, c *Counters) *progress {
	p := &progress{w: w, tty: tty, label: label, c: c, start: time.Now(),
		quit: make(chan struct{}), done: make(chan struct{})}
	if w == nil {
		close(p.done)
		return p
	}
	go p.loop(every)
	return p
}

func (p *progress) loop(every time.Duration) {
	defer close(p.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.print(false)
		case <-p.quit:
			p.print(true)
			return
		}
	}
}

func (p *progress) print(last bool) {
	s := p.c.snapshot()
	line := fmt.Sprintf("%s  conns %d  msgs %d  errors %d  elapsed %.1fs",
		p.label, s.Opened, s.Msgs, s.Errors, time.Since(p.start).Seconds())
	switch {
	case !p.tty:
		fmt.Fprintln(p.w, line)
	case last:
		fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	default:
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	}
}

// stop prints the final line and waits for the printer to exit; calling it
// again does nothing.
func (p *progress) stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	<-p.done
}
