package faulttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate/internal/testbin"
)

const (
	buildTimeout = 5 * time.Minute  // go build of cmd/wsgate, -race on a cold cache
	startTimeout = 15 * time.Second // a process until it answers
	stopTimeout  = 15 * time.Second // SIGTERM (or SHUTDOWN) until the process exits
)

// moduleRoot is the directory of go.mod, found upwards from the package's.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// buildWsgate builds cmd/wsgate into the test's temporary directory, with
// the race detector when the test itself runs under it, so that a data race
// in a node under fault is reported too.
func buildWsgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wsgate")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/wsgate")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// process is a child process whose output goes to a log file.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string        // path of the output file
	exited chan struct{} // closed when Wait has returned
}

func startProcess(t *testing.T, name, logPath string, path string, args ...string) *process {
	t.Helper()
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = out.Close() }() // the child holds its own descriptor
	fmt.Fprintf(out, "==== %s start %s\n", name, time.Now().UTC().Format(time.StampMilli))
	p := &process{name: name, log: logPath, exited: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { // owned by p: kill and stop wait for it
		_ = p.cmd.Wait() // the exit is judged by the caller (killed, stopped)
		close(p.exited)
	}()
	return p
}

// kill is SIGKILL: a crash.
func (p *process) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill() // it may have exited already
	<-p.exited               // SIGKILL cannot be ignored
}

// stop is SIGTERM, then SIGKILL after stopTimeout.
func (p *process) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // it may have exited already
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		t.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, stopTimeout)
		p.kill(t)
	}
}

// tail returns the last n lines of the process's log.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }() // read only
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// grepLog returns the lines of the log at path that contain s.
func grepLog(path, s string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }() // read only
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// redisServer is a redis-server that writes its data only when told: its
// config has no save points and no append-only file, so that a test decides
// which snapshot it comes back with.
type redisServer struct {
	path string // redis-server
	dir  string // working directory: redis.conf, dump.rdb, log
	addr string
	proc *process
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	r := &redisServer{path: testbin.Require(t, "redis-server"), dir: t.TempDir(), addr: testbin.FreeAddr(t)}
	_, port, _ := net.SplitHostPort(r.addr) // FreeAddr made it
	conf := fmt.Sprintf("port %s\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %s\ndbfilename dump.rdb\nloglevel notice\n", port, r.dir)
	if err := os.WriteFile(filepath.Join(r.dir, "redis.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	t.Cleanup(func() {
		if r.proc != nil {
			r.proc.kill(t)
		}
	})
	return r
}

func (r *redisServer) url() string  { return "redis://" + r.addr + "/0" }
func (r *redisServer) dump() string { return filepath.Join(r.dir, "dump.rdb") }
func (r *redisServer) logPath() string {
	return filepath.Join(r.dir, "redis.log")
}

func (r *redisServer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1, DialTimeout: time.Second})
}

// start runs redis-server on its address (loading dump.rdb if there is
// one) and waits until it answers PING.
func (r *redisServer) start(t *testing.T) {
	t.Helper()
	r.proc = startProcess(t, "redis-server", r.logPath(), r.path, filepath.Join(r.dir, "redis.conf"))
	rdb := r.client()
	defer func() { _ = rdb.Close() }() // a probe
	deadline := time.Now().Add(startTimeout)
	for rdb.Ping(context.Background()).Err() != nil {
		select {
		case <-r.proc.exited:
			t.Fatalf("redis-server exited at start:\n%s", tail(r.logPath(), 20))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not answer PING within %v:\n%s", startTimeout, tail(r.logPath(), 20))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill is kill -9: whatever was not saved is gone.
func (r *redisServer) kill(t *testing.T) {
	t.Helper()
	r.proc.kill(t)
	r.proc = nil
}

// shutdownSave is a graceful stop: SHUTDOWN SAVE writes dump.rdb, then exits.
func (r *redisServer) shutdownSave(t *testing.T) {
	t.Helper()
	rdb := r.client()
	err := rdb.ShutdownSave(context.Background()).Err()
	_ = rdb.Close() // the server is gone
	if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("SHUTDOWN SAVE: %v", err)
	}
	select {
	case <-r.proc.exited:
	case <-time.After(stopTimeout):
		t.Fatalf("redis-server did not exit within %v of SHUTDOWN SAVE", stopTimeout)
	}
	r.proc = nil
}

// snapshot runs SAVE and copies dump.rdb aside as name.
func (r *redisServer) snapshot(t *testing.T, name string) {
	t.Helper()
	rdb := r.client()
	defer func() { _ = rdb.Close() }() // one command
	if err := rdb.Save(context.Background()).Err(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}
	copyFile(t, r.dump(), filepath.Join(r.dir, name))
}

// restore puts the snapshot name back as dump.rdb (the server must be down).
func (r *redisServer) restore(t *testing.T, name string) {
	t.Helper()
	copyFile(t, filepath.Join(r.dir, name), r.dump())
}

// forget deletes dump.rdb (the server must be down): it comes back empty.
func (r *redisServer) forget(t *testing.T) {
	t.Helper()
	if err := os.Remove(r.dump()); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// node is one gateway process: wsgate serve on a fixed loopback address,
// restartable on the same address after a kill.
type node struct {
	name string
	bin  string
	addr string
	args []string
	log  string
	proc *process
}

func (n *node) http() string { return "http://" + n.addr }
func (n *node) ws() string   { return "ws://" + n.addr + "/ws" }

// start runs the node and waits until its API answers.
func (n *node) start(t *testing.T, apiKey string) {
	t.Helper()
	n.proc = startProcess(t, n.name, n.log, n.bin, append([]string{"serve", "--addr", n.addr}, n.args...)...)
	req, err := http.NewRequest(http.MethodGet, n.http()+"/api/v1/stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := hc.Do(req)
		if err == nil {
			_ = resp.Body.Close() // status only
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-n.proc.exited:
			t.Fatalf("%s exited at start:\n%s", n.name, tail(n.log, 30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within %v (last: %v):\n%s", n.name, startTimeout, err, tail(n.log, 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
