// Package testbin finds the programs that tests drive from outside Go — nginx,
// chromium, node, Debian's python3, redis-server — and ports for them to listen
// on. One policy holds everywhere: a test whose program is missing is skipped
// with a loud message on a developer's machine and fails in CI (CI=true), where
// scripts/install-deps.sh has installed every one of them.
package testbin

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
)

// InstallHint is the command that installs every program the tests need.
const InstallHint = "./scripts/install-deps.sh"

// InCI reports whether the tests run in CI.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing stops t because something it needs is absent: Fatal in CI, a loud Skip elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: every external program must be installed; run %s)", msg, InstallHint)
	}
	t.Skipf("!!! SKIPPING: %s — run %s to install it", msg, InstallHint)
}

// Require returns the path of program, an absolute path or a name looked up in PATH.
func Require(t testing.TB, program string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		Missing(t, "%s not found", program)
	}
	return path
}

// FreeAddr returns a loopback address whose port was free a moment ago, for
// an external program to listen on: the kernel does not hand a port it just
// released out again at once.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return addr
}
