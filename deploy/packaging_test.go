package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testbin"
)

const testTimeout = 30 * time.Second

// buildStatic runs scripts/build-static.sh, the Dockerfile's build step.
func buildStatic(t *testing.T, version, commit string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wsgate")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "../scripts/build-static.sh", bin, version, commit).CombinedOutput()
	if err != nil {
		t.Fatalf("build-static.sh: %v\n%s", err, out)
	}
	return bin
}

// TestStaticBinary builds the image's binary and checks what the image
// relies on: no dynamic loader or shared library (distroless/static has no
// libc), "wsgate version" stamped by the build arguments, and "wsgate
// healthcheck" (the image's HEALTHCHECK) true while serve runs on
// WSGATE_ADDR and false once it stopped.
func TestStaticBinary(t *testing.T) {
	bin := buildStatic(t, "v0.0.0-test", "0123abcd")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("open ELF: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a dynamic loader (PT_INTERP): not static; is CGO_ENABLED=0 set?")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %q, want none", libs)
	}

	out := runBin(t, bin, nil, "version")
	for _, want := range []string{"wsgate v0.0.0-test", "commit 0123abcd", runtime.Version()} {
		if !strings.Contains(out, want) {
			t.Errorf("wsgate version: got %q, want it to contain %q", out, want)
		}
	}

	env := []string{"WSGATE_ADDR=" + testbin.FreeAddr(t)}
	serve := exec.Command(bin, "serve")
	serve.Env = append(os.Environ(), env...)
	var serveOut bytes.Buffer
	serve.Stdout, serve.Stderr = &serveOut, &serveOut
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	defer func() {
		_ = serve.Process.Kill() // normally exited already
		<-exited
	}()
	healthy := false
	for deadline := time.Now().Add(testTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		err := envCmd(bin, env, "healthcheck").Run()
		if err == nil {
			healthy = true
			break
		}
		if e := (*exec.ExitError)(nil); !errors.As(err, &e) {
			t.Fatalf("healthcheck: %v", err)
		}
	}
	if !healthy {
		t.Fatalf("wsgate healthcheck never succeeded against serve on %s; serve said:\n%s", env[0], serveOut.String())
	}
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("serve after SIGTERM: %v, want exit 0\n%s", err, serveOut.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("serve did not exit after SIGTERM")
	}
	var ee *exec.ExitError
	if err := envCmd(bin, env, "healthcheck").Run(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("healthcheck with serve stopped: got %v, want exit status 1", err)
	}
}

func envCmd(bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

func runBin(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	out, err := envCmd(bin, env, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("wsgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDockerfile checks the Dockerfile's promises that a docker build
// would keep (no Docker daemon in the tests): the build runs the script
// TestStaticBinary runs, the image runs as non-root on a static base, and
// its health check needs no shell.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{
		"RUN scripts/build-static.sh /out/wsgate",
		"FROM gcr.io/distroless/static",
		"USER nonroot:nonroot",
		`CMD ["/usr/local/bin/wsgate", "healthcheck"]`,
		"ENV WSGATE_ADDR=:8080",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Contains(df, "go build") {
		t.Error("Dockerfile runs go build itself: build through scripts/build-static.sh so the test checks the same binary")
	}
}

// TestSystemdUnit runs systemd-analyze verify on the unit, with ExecStart
// pointed at a real binary (verify checks that it exists). Verify exits 0
// even for unknown keys and bad values, so any output fails the test.
func TestSystemdUnit(t *testing.T) {
	analyze := testbin.Require(t, "systemd-analyze")
	unit, err := os.ReadFile("systemd/wsgate.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LimitNOFILE=", "NoNewPrivileges=yes", "ProtectSystem=strict", "ExecReload=/bin/kill -HUP $MAINPID", "--config /etc/wsgate/wsgate.toml"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("wsgate.service lacks %q", want)
		}
	}
	bin, err := os.Executable() // verify only checks that ExecStart is executable
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "wsgate.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/wsgate"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, "verify", path)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestComposeReusesNginxConf: compose.yaml rewrites the one upstream line
// of deploy/nginx/wsgate.conf; if that line changes, the compose file
// would silently proxy to nothing.
func TestComposeReusesNginxConf(t *testing.T) {
	compose, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile("nginx/wsgate.conf")
	if err != nil {
		t.Fatal(err)
	}
	const line = "server 127.0.0.1:8080;"
	if !strings.Contains(string(compose), "s/"+line+"/server wsgate1:8080; server wsgate2:8080;/") {
		t.Errorf("compose.yaml no longer rewrites %q to the two nodes", line)
	}
	if strings.Count(string(conf), line) != 1 {
		t.Errorf("nginx/wsgate.conf: want exactly one %q line for compose.yaml to rewrite", line)
	}
	for _, want := range []string{"../nginx/wsgate.conf:", "WSGATE_REDIS: \"redis://redis:6379/0\"", "wsgate1:", "wsgate2:"} {
		if !strings.Contains(string(compose), want) {
			t.Errorf("compose.yaml lacks %q", want)
		}
	}
}
