//go:build unix

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testbin"
)

const (
	buildTimeout   = 5 * time.Minute
	readyTimeout   = 20 * time.Second
	stopTimeout    = 10 * time.Second
	startAttempts  = 3
	maxServerLog   = 1 << 20
	echoServerPath = "./examples/echo"
)

// moduleRoot returns the repository root: the test runs in interop/.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatalf("interop: module root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("interop: module root %s has no go.mod: %v", root, err)
	}
	return root
}

// buildEcho compiles examples/echo once into a temporary directory, with -race
// when the test itself runs under the race detector. WSGATE_INTEROP_ECHO names
// a prebuilt server instead (to run these clients against another echo server
// with the same flags).
func buildEcho(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WSGATE_INTEROP_ECHO"); p != "" {
		t.Logf("using echo server %s from WSGATE_INTEROP_ECHO", p)
		return p
	}
	root := moduleRoot(t)
	if _, err := os.Stat(filepath.Join(root, echoServerPath, "main.go")); err != nil {
		// Not an external tool: the tree is incomplete. Say so, and fail in CI.
		msg := fmt.Sprintf("interop: the echo example %s is not in the tree: %v", echoServerPath, err)
		if testbin.InCI() {
			t.Fatal(msg)
		}
		t.Skip("!!! SKIPPING: " + msg)
	}
	bin := filepath.Join(t.TempDir(), "echo")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, echoServerPath)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("interop: go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// echoServer is one running echo example process.
type echoServer struct {
	addr   string
	cmd    *exec.Cmd
	log    *capBuffer
	exited chan struct{} // closed when cmd.Wait has returned
	err    error         // cmd.Wait's result, valid after exited
}

// startEcho starts the echo server on a free loopback port and waits until it
// answers. The port is found by listening on 127.0.0.1:0 and closing; if
// another process takes it in between, the server exits and we try a new one.
// The server is stopped in t.Cleanup whatever happens.
func startEcho(t *testing.T, bin, mode string) *echoServer {
	t.Helper()
	var errs []error
	for attempt := 0; attempt < startAttempts; attempt++ {
		s, err := launchEcho(t, bin, mode)
		if err == nil {
			return s
		}
		errs = append(errs, err)
	}
	t.Fatalf("interop: echo server (-mode %s) did not start: %v", mode, errors.Join(errs...))
	return nil
}

func launchEcho(t *testing.T, bin, mode string) (*echoServer, error) {
	addr := testbin.FreeAddr(t)
	s := &echoServer{addr: addr, log: &capBuffer{max: maxServerLog}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "-addr", addr, "-mode", mode)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { // owned by s: stop waits for exited
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { // whatever happens to the test
		s.stop()
		s.checkRaces(t)
	})
	if err := s.waitReady(); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %w; server output:\n%s", addr, err, s.log.String())
	}
	return s, nil
}

// waitReady polls GET /stats until it answers 200, the process exits or
// readyTimeout passes.
func (s *echoServer) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + s.addr + "/stats")
		if err == nil {
			_ = resp.Body.Close() // only the status matters here
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before answering: %v", s.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no 200 from GET /stats within %v", readyTimeout)
}

// stats fetches GET /stats and checks that it is a JSON object.
func (s *echoServer) stats(t *testing.T) map[string]any {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.addr + "/stats")
	if err != nil {
		t.Errorf("GET /stats: %v", err)
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Errorf("GET /stats: got a body that is not a JSON object: %v", err)
		return nil
	}
	return m
}

// waitNoConns polls GET /stats until the server reports no open connection:
// every client has closed its connections, so the server must have let go
// of them (the close handshake finishes asynchronously, hence the wait).
func (s *echoServer) waitNoConns(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(stopTimeout)
	for {
		st := s.stats(t)
		if st == nil {
			return // stats reported why
		}
		n, ok := st["conns"].(float64)
		switch {
		case !ok:
			t.Errorf("GET /stats: got %v, want a numeric \"conns\" field", st)
			return
		case n == 0:
			t.Logf("GET /stats after the clients: %v", st)
			return
		case time.Now().After(deadline):
			t.Errorf("GET /stats: got conns=%v %v after every client closed, want 0", n, stopTimeout)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shutdown interrupts the server and asserts that it exits cleanly (status 0)
// within stopTimeout, as its SIGINT handling promises.
func (s *echoServer) shutdown(t *testing.T) {
	t.Helper()
	if !s.stop() {
		t.Errorf("echo server %s did not exit within %v of SIGINT; killed it", s.addr, stopTimeout)
	} else if s.err != nil {
		t.Errorf("echo server %s: got exit %v after SIGINT, want status 0; output:\n%s", s.addr, s.err, s.log.String())
	}
	s.checkRaces(t)
}

// stop interrupts the server and kills it if it has not exited within
// stopTimeout. It reports whether the server exited by itself. Safe to call
// more than once.
func (s *echoServer) stop() bool {
	select {
	case <-s.exited:
		return true
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt) // it may be exiting already
	select {
	case <-s.exited:
		return true
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill() // nothing more to do if this fails
		<-s.exited
		return false
	}
}

// checkRaces fails t if the (race-built) server printed a data race report.
func (s *echoServer) checkRaces(t *testing.T) {
	t.Helper()
	if out := s.log.String(); strings.Contains(out, "WARNING: DATA RACE") {
		t.Errorf("echo server %s reported a data race:\n%s", s.addr, out)
		s.log.Reset() // report it once
	}
}

// capBuffer is a goroutine-safe output sink that keeps the first max bytes.
type capBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped int
}

// Write always reports the whole of p as written: dropping the excess is the
// point, and a short write would make os/exec stop copying the output.
func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if room := max(b.max-b.buf.Len(), 0); room < n {
		b.dropped += n - room
		p = p[:room]
	}
	b.buf.Write(p)
	return n, nil
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("%s\n[... %d more bytes dropped]", b.buf.String(), b.dropped)
	}
	return b.buf.String()
}

func (b *capBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
	b.dropped = 0
}
