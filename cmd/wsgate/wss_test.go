package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testbin"
	"github.com/wsgate/wsgate/internal/testcert"
)

const chromiumPath = "/usr/bin/chromium"

// tlsServe is "wsgate serve" with TLS from a config file.
type tlsServe struct {
	*serveProc
	certFile, keyFile string
	ca                *testcert.CA
}

// startTLSServe writes leaf to a directory and starts serve in first-run
// mode with --config naming it.
func startTLSServe(t *testing.T, ca *testcert.CA, leaf *testcert.Leaf) *tlsServe {
	t.Helper()
	dir := t.TempDir()
	s := &tlsServe{ca: ca}
	s.certFile, s.keyFile = leaf.Write(t, dir)
	conf := filepath.Join(dir, "wsgate.toml")
	text := "tls-cert = \"" + s.certFile + "\"\ntls-key = \"" + s.keyFile + "\"\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s.serveProc = startServeProc(t, "--config", conf)
	return s
}

// pageURL is the https test page URL of the banner.
func (s *tlsServe) pageURL(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(s.out.String(), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "test" && f[1] == "page:" {
			return f[2]
		}
	}
	t.Fatalf("no test page URL in the banner:\n%s", s.out.String())
	return ""
}

// servedSerial dials TLS, trusting only the test CA, and returns the
// serial of the leaf certificate served.
func (s *tlsServe) servedSerial(t *testing.T) string {
	t.Helper()
	conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.ca.Pool})
	if err != nil {
		t.Fatalf("tls.Dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// reload replaces the certificate files with leaf, sends SIGHUP and waits
// for the log line that says the certificate was applied.
func (s *tlsServe) reload(t *testing.T, leaf *testcert.Leaf) {
	t.Helper()
	leaf.Write(t, filepath.Dir(s.certFile))
	s.hup(t, "")
	if !strings.Contains(s.out.String(), "applied=[certificate]") {
		t.Errorf("reload log: want applied=[certificate]:\n%s", s.out.String())
	}
}

// TestTLSCertificateReload: SIGHUP swaps the certificate for new
// handshakes, and a connection made before it keeps working.
func TestTLSCertificateReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ca := testcert.NewCA(t)
	old, next := ca.Leaf(t), ca.Leaf(t)
	s := startTLSServe(t, ca, old)
	// Every URL the banner prints is https or wss: a user copying one
	// must not get a plain-text request to a TLS port.
	if banner := s.out.String(); strings.Contains(banner, "http://") || strings.Contains(banner, "ws://") || !strings.Contains(banner, "/admin") {
		t.Errorf("banner with TLS: want only https:// and wss:// URLs, admin included:\n%s", banner)
	}
	if got := s.servedSerial(t); got != old.Cert.SerialNumber.String() {
		t.Fatalf("served serial %s, want the first leaf's %s", got, old.Cert.SerialNumber)
	}
	conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	s.reload(t, next)
	if got := s.servedSerial(t); got != next.Cert.SerialNumber.String() {
		t.Errorf("after SIGHUP: served serial %s, want the new leaf's %s", got, next.Cert.SerialNumber)
	}
	// The connection from before the reload still serves requests.
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatalf("old connection: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Errorf("old connection after reload: got %q, %v; want HTTP 200", status, err)
	}

	// A broken certificate file keeps the working certificate.
	if err := os.WriteFile(s.certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.hup(t, "keeping the old certificate")
	if got := s.servedSerial(t); got != next.Cert.SerialNumber.String() {
		t.Errorf("after a bad certificate file: served serial %s, want still %s", got, next.Cert.SerialNumber)
	}
}

// TestWSSInChromium loads the test page over https:// in headless Chromium,
// which trusts the test CA's leaves by their public keys only, connects over
// wss://, then the test swaps the certificate (SIGHUP) and the page's open
// WebSocket must keep working while a new page connects with the new
// certificate. Set WSGATE_SCREENSHOT=path to keep the screenshot
// (docs/wss-page.png was made so).
func TestWSSInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	node := testbin.Require(t, "node")
	if _, err := os.Stat(chromiumPath); err != nil {
		testbin.Missing(t, "wss test: Debian chromium not found at %s", chromiumPath)
	}
	modules, err := filepath.Abs(filepath.Join("..", "..", "interop", "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(modules, "playwright-core", "package.json")); err != nil {
		testbin.Missing(t, "wss test: playwright-core not installed in %s", modules)
	}
	ca := testcert.NewCA(t)
	old, next := ca.Leaf(t), ca.Leaf(t)
	s := startTLSServe(t, ca, old)
	shot := os.Getenv("WSGATE_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "wss-page.png")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spki := testcert.SPKIHash(old.Cert) + "," + testcert.SPKIHash(next.Cert)
	cmd := exec.CommandContext(ctx, node, "wss_test.mjs", s.pageURL(t), spki, shot)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "CHROMIUM_PATH="+chromiumPath)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var steps []stepResult
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var r stepResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Step == "" {
			continue // the summary line
		}
		steps = append(steps, r)
		t.Logf("chromium: %s ok=%v %s%s", r.Step, r.OK, r.Detail, r.Error)
		if !r.OK {
			t.Errorf("step %q failed: %s", r.Step, r.Error)
		}
		if r.Step == "ready" {
			s.reload(t, next)
			if _, err := io.WriteString(stdin, "reloaded\n"); err != nil {
				t.Errorf("tell the script: %v", err)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("wss_test.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	want := []string{"refused without the SPKI list", "load over https and connect over wss", "action 110 over wss", "screenshot", "ready",
		"same connection after reload", "new connection after reload", "no page errors"}
	if len(steps) != len(want) {
		t.Fatalf("got %d steps, want %d: %q", len(steps), len(want), want)
	}
	for i, w := range want {
		if steps[i].Step != w {
			t.Errorf("step %d: got %q, want %q", i, steps[i].Step, w)
		}
	}
}

type stepResult struct {
	Step   string `json:"step"`
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Detail string `json:"detail"`
}
