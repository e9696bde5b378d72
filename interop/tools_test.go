//go:build unix

package interop

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testbin"
)

const (
	chromiumPath = "/usr/bin/chromium"
	// pythonPath is Debian's interpreter: python3 first on PATH may be a pyenv
	// shim that does not see the python3-websockets package.
	pythonPath = "/usr/bin/python3"
)

// missing stops the test because an external tool is absent: t.Fatal in CI
// (CI=true), a loud t.Skip elsewhere; the policy lives in internal/testbin.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	testbin.Missing(t, "interop: "+format, args...)
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
