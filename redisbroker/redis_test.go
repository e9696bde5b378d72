package redisbroker_test

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate/internal/testbin"
)

// redisServer is a real redis-server on a free loopback port, without
// persistence, in the test's temporary directory.
type redisServer struct {
	t    *testing.T
	path string
	dir  string
	port int
	cmd  *exec.Cmd
}

// startRedis starts a redis-server that stops when the test ends. It skips
// the test loudly when redis-server is not installed (and fails in CI).
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	path := testbin.Require(t, "redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // redis-server takes the port over
	r := &redisServer{t: t, path: path, dir: t.TempDir(), port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// URL is the redis:// URL of the server.
func (r *redisServer) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

// start runs redis-server and waits until it answers PING.
func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.path, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--loglevel", "warning")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.port), MaxRetries: -1})
	defer func() { _ = rdb.Close() }() // a probe
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatal("redis-server did not answer PING within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills redis-server (like a crash) and waits for it to exit.
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill() // it may have exited already
	_ = r.cmd.Wait()         // "signal: killed" is the expected result
	r.cmd = nil
}

// client returns a plain go-redis client for inspecting and arranging keys.
func (r *redisServer) client() *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.port)})
	r.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
