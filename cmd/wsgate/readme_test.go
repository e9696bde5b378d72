package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testbin"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// readmeTimeout bounds each command of the README tests.
const readmeTimeout = 30 * time.Second

// buildBinary builds this command into a temporary directory, once per
// test binary run, and returns the directory (for PATH) and the path.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wsgate-readme-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wsgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &buildError{err: err, out: string(out)}
	}
	return bin, nil
})

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

func wsgateBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// readmeCommands returns the command lines of the README's "The command
// line" block, and the output lines it documents (comments starting "#   <").
func readmeCommands(t *testing.T) (cmds, outputs []string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## The command line")
	if !ok {
		t.Fatal("README.md has no \"## The command line\" section")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("README.md: no sh block under \"The command line\"")
	}
	block, _, _ := strings.Cut(rest, "```")
	for _, line := range strings.Split(block, "\n") {
		switch trimmed := strings.TrimSpace(line); {
		case strings.HasPrefix(trimmed, "#   < "):
			outputs = append(outputs, strings.TrimPrefix(trimmed, "#   "))
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		default:
			cmds = append(cmds, trimmed)
		}
	}
	if len(cmds) < 7 {
		t.Fatalf("found %d commands in the README block, want the 7 it had when this test was written:\n%s", len(cmds), block)
	}
	return cmds, outputs
}

// serveProc is "wsgate serve" run as a process from the built binary.
type serveProc struct {
	cmd  *exec.Cmd
	addr string // 127.0.0.1:port
	out  *syncBuffer
}

// startServeProc runs "wsgate serve args..." on a free address (given as
// $WSGATE_ADDR, so a config file may still set another) until the test
// ends, then checks that SIGTERM makes it exit 0.
func startServeProc(t *testing.T, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{addr: testbin.FreeAddr(t), out: &syncBuffer{}}
	p.cmd = exec.Command(wsgateBinary(t), append([]string{"serve"}, args...)...)
	p.cmd.Env = append(os.Environ(), "WSGATE_ADDR="+p.addr)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM) // exits 0 on SIGTERM
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("serve after SIGTERM: %v\n%s", err, p.out.String())
			}
		case <-time.After(readmeTimeout):
			_ = p.cmd.Process.Kill() // hung: reported here
			<-exited
			t.Errorf("serve did not exit after SIGTERM")
		}
	})
	p.out.waitFor(t, "test page:")
	return p
}

// hup sends SIGHUP and waits for the reload's log line: "reloaded", or
// want when it is not "".
func (p *serveProc) hup(t *testing.T, want string) {
	t.Helper()
	if want == "" {
		want = "msg=reloaded"
	}
	n := strings.Count(p.out.String(), want)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(testTimeout); strings.Count(p.out.String(), want) == n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line after SIGHUP:\n%s", want, p.out.String())
		}
	}
}

// readmeServer is serve for the README tests, with the export line the
// README tells the user to paste.
type readmeServer struct {
	*serveProc
	exports string
}

func startReadmeServer(t *testing.T, args ...string) *readmeServer {
	t.Helper()
	return &readmeServer{serveProc: startServeProc(t, args...)}
}

// run runs one README line with bash, the way a user pastes it, after the
// exports, with the built binary first in PATH and the README's address
// replaced by the test server's. stdin is what the user types.
func (s *readmeServer) run(ctx context.Context, t *testing.T, bin, line, stdin string) (stdout, stderr string, err error) {
	t.Helper()
	line = strings.ReplaceAll(line, "127.0.0.1:8080", s.addr)
	cmd := exec.CommandContext(ctx, "bash", "-c", s.exports+"\n"+line)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // Ctrl-C
	cmd.WaitDelay = readmeTimeout
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestReadmeFirstRun runs the README's command-line examples against
// "wsgate serve" in first-run mode, with the export line its banner prints.
func TestReadmeFirstRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := wsgateBinary(t)
	s := startReadmeServer(t)
	// The server is up once its first banner line is out; the export line
	// comes a few lines later, possibly in a later write.
	for deadline := time.Now().Add(readmeTimeout); s.exports == "" && time.Now().Before(deadline); {
		for _, line := range strings.Split(s.out.String(), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "export TOKEN=") {
				s.exports = strings.TrimSpace(line)
			}
		}
		if s.exports == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if s.exports == "" {
		t.Fatalf("the first-run banner has no export line for the README:\n%s", s.out.String())
	}
	runReadme(t, bin, s)
}

// TestReadmeConfigFile runs the same examples against a serve configured
// by a config file, with the variables a user would set from it.
func TestReadmeConfigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := wsgateBinary(t)
	const secret, key = "readme-config-file-secret-0123456789", "readme-config-file-key"
	file := filepath.Join(t.TempDir(), "wsgate.toml")
	conf := "jwt-secret = \"" + secret + "\"\napi-key = \"" + key + "\"\ndemo = true\n"
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startReadmeServer(t, "--config", file)
	ctx, cancel := context.WithTimeout(context.Background(), readmeTimeout)
	defer cancel()
	tok, errOut, err := s.run(ctx, t, bin, "wsgate token --secret '"+secret+"' --user demo", "")
	if err != nil {
		t.Fatalf("wsgate token: %v\n%s", err, errOut)
	}
	s.exports = "export TOKEN=" + strings.TrimSpace(tok) + " KEY=" + key + " WSGATE_JWT_SECRET=" + secret + " WSGATE_API=http://" + s.addr
	runReadme(t, bin, s)
}

// runReadme runs each README line and checks what it printed. A client
// connected as user "demo" watches the pushes arrive.
func runReadme(t *testing.T, bin string, s *readmeServer) {
	cmds, outputs := readmeCommands(t)
	watch := s.watch(t)
	jwt := regexp.MustCompile(`^[\w-]+\.[\w-]+\.[\w-]+$`)
	for _, line := range cmds {
		t.Run(line, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), readmeTimeout)
			defer cancel()
			var stdout, stderr string
			var err error
			switch {
			case strings.Contains(line, "--every"):
				// Runs until Ctrl-C: wait for two ticks, then interrupt.
				stdout, stderr, err = s.runPiped(ctx, bin, line, func(out string) bool {
					return strings.Count(out, `payload "tick"`) >= 2
				})
				if !strings.Contains(stderr, "closed: code 1000") {
					t.Errorf("after Ctrl-C: stderr %q, want the close code 1000", stderr)
				}
			default:
				stdout, stderr, err = s.run(ctx, t, bin, line, "hi\n")
			}
			if err != nil {
				t.Fatalf("exit: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			switch {
			case strings.Contains(line, "--action 110"):
				for _, want := range outputs {
					if !strings.Contains(stdout, want) {
						t.Errorf("stdout lacks the README's %q:\n%s", want, stdout)
					}
				}
			case strings.Contains(line, "--every"):
				if strings.Count(stdout, `payload "tick"`) < 2 {
					t.Errorf("stdout: want two ticks echoed:\n%s", stdout)
				}
			case strings.Contains(line, "--subprotocol wsgate.v1"):
				if !strings.Contains(stdout, "hello") {
					t.Errorf("stdout: want the full form's hello:\n%s", stdout)
				}
			case strings.Contains(line, "/echo"):
				if !strings.Contains(stdout, "< text 2 B: hi") {
					t.Errorf("stdout: want \"hi\" echoed:\n%s", stdout)
				}
			case strings.Contains(line, "--user demo"):
				if !strings.Contains(stdout, "delivered 1") {
					t.Errorf("stdout %q: want delivered 1 (a client of demo is connected)", stdout)
				}
				watch.waitFor(t, `action 120 payload "hello"`)
			case strings.Contains(line, "--topic news"):
				if !strings.Contains(stdout, "delivered") {
					t.Errorf("stdout %q: want the delivered count", stdout)
				}
			case strings.HasPrefix(line, "wsgate token"):
				tok := strings.TrimSpace(stdout)
				if !jwt.MatchString(tok) {
					t.Fatalf("stdout %q: want a JWT", stdout)
				}
				// The server accepts it.
				out, errOut, err := s.run(ctx, t, bin, "wsgate client --token "+tok+" ws://127.0.0.1:8080/ws", "")
				if err != nil || !strings.Contains(errOut, "connected") {
					t.Errorf("connecting with the minted token: %v\n%s%s", err, out, errOut)
				}
			default:
				t.Errorf("no check for this README line: add one")
			}
		})
	}
}

// watch connects a client as user "demo" (the README's push target) with
// the exported token and keeps it connected until the test ends; the
// returned buffer fills with what it receives, printed as wsgate client
// prints it.
func (s *readmeServer) watch(t *testing.T) *syncBuffer {
	t.Helper()
	tok := regexp.MustCompile(`TOKEN=(\S+)`).FindStringSubmatch(s.exports)
	if tok == nil {
		t.Fatalf("no TOKEN in %q", s.exports)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readmeTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/ws", nil,
		&websocket.DialOptions{Header: http.Header{"Authorization": {"Bearer " + tok[1]}}})
	if err != nil {
		t.Fatalf("watcher: %v", err)
	}
	// The README pushes to the topic news too: be there, so that the push
	// reaches someone (push exits 4 when nobody had it queued).
	if err := conn.WriteMessage(websocket.BinaryMessage, wire.AppendSimple(nil, wire.ActionSubscribe, []byte("news"))); err != nil {
		t.Fatalf("watcher: subscribe: %v", err)
	}
	if _, reply, err := conn.Read(ctx); err != nil || !bytes.Equal(reply, wire.AppendSimple(nil, wire.ActionSubscribe, nil)) {
		t.Fatalf("watcher: subscribe reply %x, %v", reply, err)
	}
	out := &syncBuffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			typ, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			fmt.Fprintln(out, describe(typ, data, ""))
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close(websocket.StatusNormalClosure, "") // the read loop sees the end
		<-done
	})
	return out
}

// runPiped runs line with a stdin that stays open, like a terminal's, and
// sends it Ctrl-C once interrupt reports true for the stdout so far.
func (s *readmeServer) runPiped(ctx context.Context, bin, line string, interrupt func(string) bool) (stdout, stderr string, err error) {
	line = strings.ReplaceAll(line, "127.0.0.1:8080", s.addr)
	cmd := exec.CommandContext(ctx, "bash", "-c", s.exports+"\nexec "+line)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	cmd.WaitDelay = readmeTimeout
	var e syncBuffer
	cmd.Stderr = &e
	if _, err := cmd.StdinPipe(); err != nil { // closed by Wait
		return "", "", err
	}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return "", "", err
	}
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	var o strings.Builder
	sc := bufio.NewScanner(pipe)
	sent := false
	for sc.Scan() {
		o.WriteString(sc.Text() + "\n")
		if !sent && interrupt(o.String()) {
			sent = true
			_ = cmd.Process.Signal(os.Interrupt) // Ctrl-C; Wait reports how it ended
		}
	}
	err = cmd.Wait()
	return o.String(), e.String(), err
}
