//go:build unix

package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const (
	chromiumPath = "/usr/bin/chromium"
	// pythonPath is Debian's interpreter: python3 first on PATH may be a pyenv
	// shim that does not see the python3-websockets package.
	pythonPath = "/usr/bin/python3"
	installCmd = "./scripts/install-deps.sh"
)

// inCI reports whether the test runs in CI, where a missing external tool is a
// failure: .ci/run installs every one of them.
func inCI() bool { return os.Getenv("CI") == "true" }

// missing stops the test because an external tool is absent: t.Fatal in CI,
// a loud t.Skip elsewhere.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("interop: %s (CI=true: every external client must be installed; run %s)", msg, installCmd)
	}
	t.Skipf("!!! SKIPPING real-client interop test: %s — run %s to install it", msg, installCmd)
}

func requireFile(t *testing.T, path, what string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		missing(t, "%s not found at %s", what, path)
	}
}

func requireNode(t *testing.T, pkgs ...string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, "node not on PATH")
	}
	for _, p := range pkgs {
		requireFile(t, filepath.Join("node_modules", p, "package.json"), "npm package "+p)
	}
}

func requirePythonWebsockets(t *testing.T) {
	t.Helper()
	requireFile(t, pythonPath, "Debian python3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, pythonPath, "-c", "import websockets").CombinedOutput()
	if err != nil {
		missing(t, "%s cannot import websockets (Debian package python3-websockets): %v: %s", pythonPath, err, out)
	}
}
