//go:build linux

package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/procstat"
	"github.com/wsgate/wsgate/internal/testbin"
)

const (
	secret = "hostile-suite-secret-0123456789ab"
	apiKey = "hostile-suite-api-key"
	// limit bounds every wait of the suite that has no tighter bound.
	limit = 60 * time.Second
	mib   = 1 << 20
	mb1   = 1000 * 1000 // the bounds are in MB, as the issue states them
)

// buildGateway compiles cmd/wsgate once, without -race even when the test
// runs under it: the race detector multiplies memory, and memory is what
// the suite measures.
func buildGateway(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "wsgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/wsgate")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/wsgate: %v\n%s", err, out)
	}
	return bin
}

// gateway is one running "wsgate serve".
type gateway struct {
	cmd  *exec.Cmd
	pid  int
	addr string // host:port
	logs *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done

	attackSeq atomic.Uint32 // picks the source address of dialTCPErr
}

var listening = regexp.MustCompile(`wsgate listening on http://(\S+)`)

// start runs bin serve with the suite's secret and key, JSON logs, on a
// port of its choice, plus args. nofile > 0 runs it under prlimit with that
// open-files limit, soft and hard.
func start(t *testing.T, bin string, nofile int, args ...string) *gateway {
	t.Helper()
	argv := append([]string{"serve", "--addr", "127.0.0.1:0", "--jwt-secret", secret, "--api-key", apiKey, "--log-format", "json"}, args...)
	path := bin
	if nofile > 0 {
		path = testbin.Require(t, "prlimit")
		argv = append([]string{fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--", bin}, argv...)
	}
	g := &gateway{logs: &syncBuffer{}, done: make(chan struct{})}
	g.cmd = exec.Command(path, argv...)
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	g.cmd.Stderr = g.logs
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	g.pid = g.cmd.Process.Pid // prlimit execs the gateway in place: same pid
	banner := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case banner <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout) // keep the pipe drained
	}()
	go func() {
		g.err = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() { g.stop(t) })
	select {
	case g.addr = <-banner:
	case <-g.done:
		t.Fatalf("gateway exited before listening: %v\n%s", g.err, g.logs)
	case <-time.After(limit):
		t.Fatalf("gateway did not listen within %v\n%s", limit, g.logs)
	}
	return g
}

// stop ends the gateway with SIGTERM (SIGKILL after limit).
func (g *gateway) stop(t *testing.T) {
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM) // it may be exiting already
	select {
	case <-g.done:
	case <-time.After(limit):
		_ = g.cmd.Process.Kill() // it ignored SIGTERM; the test reports below
		<-g.done
		t.Errorf("gateway ignored SIGTERM for %v", limit)
	}
}

func (g *gateway) url(path string) string { return "http://" + g.addr + path }
func (g *gateway) ws(path string) string  { return "ws://" + g.addr + path }

func (g *gateway) rss(t *testing.T) int64 {
	t.Helper()
	n, err := procstat.RSS(g.pid)
	if err != nil {
		t.Fatalf("rss: %v", err)
	}
	return n
}

// token returns a valid token for user. It names the issuer and audience
// that the case checking them configures; the others ignore them.
func token(t *testing.T, user string) string {
	t.Helper()
	return signed(t, map[string]any{"sub": user, "exp": time.Now().Add(time.Hour).Unix(), "iss": "iss-ok", "aud": "aud-ok"})
}

// push sends one push to user through the HTTP API and returns the status.
func (g *gateway) push(ctx context.Context, user string, data string) (int, error) {
	body := fmt.Sprintf(`{"to":{"user":%q},"action":120,"json":%q}`, user, data)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url("/api/v1/push"), strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := freshClient().Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // the status is the answer
	_ = resp.Body.Close()                 // read to the end above
	return resp.StatusCode, nil
}

// stats reads the gateway's counters through the API.
func (g *gateway) stats(t *testing.T) wsgate.Stats {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url("/api/v1/stats"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := freshClient().Do(req)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	defer resp.Body.Close()
	var s wsgate.Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("stats: %v", err)
	}
	return s
}

// freshClient is an HTTP client that opens a new connection per request and
// gives up after 5 s, as a load balancer's probe does.
func freshClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// healthy reports whether a new client can connect and receive a push
// sent through the HTTP API.
func (g *gateway) healthy(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	user := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	pushes := make(chan client.Push, 1)
	c, err := client.Dial(ctx, g.ws("/ws"), client.Options{
		Token: token(t, user), DisableReconnect: true,
		OnPush: func(p client.Push) {
			select {
			case pushes <- p:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("new client: %w", err)
	}
	defer c.Close()
	for {
		status, err := g.push(ctx, user, "ping")
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		if status != http.StatusOK && status != http.StatusAccepted {
			return fmt.Errorf("push: HTTP %d", status)
		}
		select {
		case <-pushes:
			return nil
		case <-time.After(time.Second):
			// the registration may trail the hello by a moment: push again
		case <-ctx.Done():
			return fmt.Errorf("no push within 15 s")
		}
	}
}

// monitor samples the gateway's RSS and /healthz latency until stopped.
type monitor struct {
	g        *gateway
	stopc    chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	peak     int64
	worst    time.Duration // slowest /healthz answer
	failures int           // /healthz probes that got no 200 within 5 s
	probes   int
}

func watch(g *gateway) *monitor {
	m := &monitor{g: g, stopc: make(chan struct{}), done: make(chan struct{})}
	go m.sampleRSS()
	go m.probe()
	return m
}

func (m *monitor) sampleRSS() {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if n, err := procstat.RSS(m.g.pid); err == nil {
			m.mu.Lock()
			m.peak = max(m.peak, n)
			m.mu.Unlock()
		}
		select {
		case <-tick.C:
		case <-m.stopc:
			return
		}
	}
}

// probe runs the /healthz prober in a process of its own (this test
// binary, see TestMain), so that the attack's goroutines in this process do
// not delay it, and reads its results.
func (m *monitor) probe() {
	defer close(m.done)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), probeEnv+"="+m.g.addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		m.fail()
		return
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		m.fail()
		return
	}
	if err := cmd.Start(); err != nil {
		m.fail()
		return
	}
	go func() {
		<-m.stopc
		_ = stdin.Close() // tells the prober to stop
	}()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var d time.Duration
		var ok bool
		if n, err := fmt.Sscanf(sc.Text(), "ok %d", &d); n == 1 && err == nil {
			ok = true
		}
		m.mu.Lock()
		m.probes++
		if ok {
			m.worst = max(m.worst, d)
		} else {
			m.failures++
		}
		m.mu.Unlock()
	}
	_ = cmd.Wait() // it ends when stdin closes
}

func (m *monitor) fail() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures++
}

// probeEnv names the gateway address for the prober process.
const probeEnv = "WSGATE_HOSTILE_PROBE"

// TestMain turns this binary into the /healthz prober when probeEnv is
// set: a GET on a new connection every 50 ms, as a load balancer does,
// printing "ok <nanoseconds>" or "fail <error>" per probe until stdin
// closes.
func TestMain(m *testing.M) {
	addr := os.Getenv(probeEnv)
	if addr == "" {
		os.Exit(m.Run())
	}
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // returns when the suite closes it
		close(stop)
	}()
	hc := freshClient()
	for {
		t0 := time.Now()
		resp, err := hc.Get("http://" + addr + "/healthz")
		switch {
		case err != nil:
			fmt.Printf("fail %v\n", err)
		case resp.StatusCode != http.StatusOK:
			_ = resp.Body.Close() // the status is the answer
			fmt.Printf("fail HTTP %d\n", resp.StatusCode)
		default:
			_ = resp.Body.Close() // the status is the answer
			fmt.Printf("ok %d\n", time.Since(t0))
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-stop:
			os.Exit(0)
		}
	}
}

// stop ends the sampling and returns the peak RSS, the slowest /healthz
// and the failed probes.
func (m *monitor) stop() (peak int64, worst time.Duration, failures, probes int) {
	close(m.stopc)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak, m.worst, m.failures, m.probes
}

// syncBuffer is a bytes.Buffer safe for the child's stderr copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// reportPath is where the table goes besides the test log.
func reportPath() string { return os.Getenv("WSGATE_HOSTILE_REPORT") }

// dialTCPErr opens a TCP connection to the gateway from the next of the
// attack addresses.
func (g *gateway) dialTCPErr() (net.Conn, error) {
	return dialFrom(net.IPv4(127, 0, 1, byte(1+g.attackSeq.Add(1)%attackAddrs)), g.addr)
}

// attackAddrs is how many loopback source addresses (127.0.1.1–16) the
// cases that open many connections at once spread them over: that many
// attackers, each within --max-pending-conns-per-ip's default (128), so
// that those cases test the bound they are about and not that one. The
// prober and the health check come from 127.0.0.1.
const attackAddrs = 16

// dialFrom opens a TCP connection to addr from the loopback address ip
// (all of 127/8 is loopback on Linux).
func dialFrom(ip net.IP, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	return d.Dial("tcp", addr)
}
