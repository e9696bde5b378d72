// Package redistest runs a real redis-server for tests: on a free loopback
// port, in the test's temporary directory, stopped when the test ends,
// without automatic persistence: snapshots are taken only when a test asks
// (GracefulRestart, Snapshot), so that it decides what the store comes back
// with. It skips the test loudly when redis-server is not
// installed, and fails it in CI (internal/testbin).
package redistest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/testbin"
)

// startTimeout bounds the wait for a started redis-server to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	path string
	dir  string
	addr string // host:port
	cmd  *exec.Cmd
}

// Start starts a redis-server that stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	path := testbin.Require(t, "redis-server")
	s := &Server{t: t, path: path, dir: t.TempDir(), addr: testbin.FreeAddr(t)}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.addr + "/0" }

// Restart runs redis-server again on the same port after Stop (Start runs
// it the first time) and waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr) // FreeAddr made it
	s.cmd = exec.Command(s.path, "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer func() { _ = rdb.Close() }() // a probe
	deadline := time.Now().Add(startTimeout)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not answer PING within %v", startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills redis-server (like a crash) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // it may have exited already
	_ = s.cmd.Wait()         // "signal: killed" is the expected result
	s.cmd = nil
}

// Client returns a plain go-redis client for inspecting and arranging keys,
// closed when the test ends.
func (s *Server) Client() *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.addr})
	s.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// StartNode runs a gateway node built from cfg on this Redis, through a
// redisbroker made from bo (its URL and cfg.Broker are set here). The broker
// outlives the node's Shutdown and closes when the test ends.
func (s *Server) StartNode(t testing.TB, bo redisbroker.Options, cfg wsgate.Config) *gatewaytest.Gateway {
	t.Helper()
	bo.URL = s.URL()
	b, err := redisbroker.New(bo)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the gateway's own cleanup, so it runs after it.
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("broker Close: %v", err)
		}
	})
	cfg.Broker = b
	return gatewaytest.Start(t, cfg, nil)
}

// dump is redis-server's snapshot file in its directory.
func (s *Server) dump() string { return filepath.Join(s.dir, "dump.rdb") }

// save writes a snapshot of the data now.
func (s *Server) save() {
	s.t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: s.addr})
	defer func() { _ = rdb.Close() }() // a probe
	if err := rdb.Save(context.Background()).Err(); err != nil {
		s.t.Fatalf("redis SAVE: %v", err)
	}
}

// GracefulRestart saves the data, stops redis-server and starts it again
// on it: a restart that loses nothing.
func (s *Server) GracefulRestart() {
	s.t.Helper()
	s.save()
	s.Stop()
	s.Restart()
}

// Snapshot saves the data now and returns a function that kills
// redis-server and starts it again from that snapshot: a store that comes
// back older, like a restore from a stale backup or a failover to a
// lagging replica.
func (s *Server) Snapshot() (restore func()) {
	s.t.Helper()
	s.save()
	stale, err := os.ReadFile(s.dump())
	if err != nil {
		s.t.Fatalf("read snapshot: %v", err)
	}
	return func() {
		s.t.Helper()
		s.Stop()
		if err := os.WriteFile(s.dump(), stale, 0o600); err != nil {
			s.t.Fatalf("restore snapshot: %v", err)
		}
		s.Restart()
	}
}

// Wipe kills redis-server and starts it again with no data: a store that
// comes back empty.
func (s *Server) Wipe() {
	s.t.Helper()
	s.Stop()
	if err := os.Remove(s.dump()); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.t.Fatalf("remove snapshot: %v", err)
	}
	s.Restart()
}
