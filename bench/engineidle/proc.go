package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a subprocess gets after each polite request to exit.
const stopGrace = 5 * time.Second

// proc is one subprocess: a server under test or a client. Its stderr (and a
// server's stdout) go to a log file whose tail is quoted in errors.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stdin   io.WriteCloser // clients only
	lines   chan string    // clients only: stdout lines, closed at EOF
	done    chan struct{}  // closed once the process has exited
	err     error          // from Wait, valid after done

	stopping chan struct{} // closed by stop; the line reader drops lines after it
	stopOnce sync.Once
}

// startProc starts path with args. interactive wires stdin and stdout lines
// for the driver/client conversation. The process gets its own process group
// (so a terminal Ctrl-C reaches the driver first and it stops things in
// order) and dies with SIGKILL if the driver dies without cleaning up.
func startProc(name, path string, args []string, logPath string, interactive bool) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("engineidle: %w", err)
	}
	defer logf.Close() // the child has its own copy of the descriptor
	p := &proc{
		name:     name,
		cmd:      exec.Command(path, args...),
		logPath:  logPath,
		done:     make(chan struct{}),
		stopping: make(chan struct{}),
	}
	p.cmd.Stderr = logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stdout io.Reader
	if interactive {
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			return nil, fmt.Errorf("engineidle: %w", err)
		}
		if stdout, err = p.cmd.StdoutPipe(); err != nil {
			return nil, fmt.Errorf("engineidle: %w", err)
		}
		p.lines = make(chan string, 16)
	} else {
		p.cmd.Stdout = logf
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("engineidle: start %s: %w", name, err)
	}
	go p.reap(stdout)
	return p, nil
}

// reap forwards stdout lines (if any) until EOF, then waits for the process;
// exec requires all pipe reads to finish before Wait.
func (p *proc) reap(stdout io.Reader) {
	defer close(p.done)
	if stdout != nil {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			case <-p.stopping:
			}
		}
		close(p.lines)
	}
	p.err = p.cmd.Wait()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// send writes one command line to a client.
func (p *proc) send(cmd string) error {
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		return fmt.Errorf("engineidle: %s: send %q: %w", p.name, cmd, err)
	}
	return nil
}

// expect waits for the next stdout line, which must start with prefix.
func (p *proc) expect(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line, ok := <-p.lines:
		switch {
		case !ok:
			<-p.done
			return "", fmt.Errorf("engineidle: %s exited (%v) before %q%s", p.name, p.err, prefix, p.logTail())
		case strings.HasPrefix(line, prefix):
			return line, nil
		}
		return "", fmt.Errorf("engineidle: %s: got %q, want %q...%s", p.name, line, prefix, p.logTail())
	case <-timer.C:
		return "", fmt.Errorf("engineidle: %s: no %q within %v%s", p.name, prefix, timeout, p.logTail())
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// stop ends the process and waits for it: a client is asked by closing its
// stdin, then everybody gets SIGTERM, then SIGKILL. It reports a process
// that had to be killed or exited with an error.
func (p *proc) stop() error {
	p.stopOnce.Do(func() { close(p.stopping) })
	if p.stdin != nil {
		_ = p.stdin.Close() // EOF asks the client to close its connections and exit
		if p.waitExit(stopGrace) {
			return p.exitErr()
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("engineidle: %s: %w", p.name, err)
	}
	if p.waitExit(stopGrace) {
		return p.exitErr()
	}
	_ = p.cmd.Process.Kill() // an error here means it has just exited
	<-p.done
	return fmt.Errorf("engineidle: %s ignored SIGTERM for %v and was killed%s", p.name, stopGrace, p.logTail())
}

func (p *proc) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// exitErr reports a non-zero exit; exiting on our SIGTERM counts as clean.
func (p *proc) exitErr() error {
	var ee *exec.ExitError
	if p.err == nil {
		return nil
	}
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return fmt.Errorf("engineidle: %s: %w%s", p.name, p.err, p.logTail())
}

// logTail returns the end of the process log for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "\n--- " + p.logPath + " (tail) ---\n" + strings.TrimRight(string(b), "\n")
}
