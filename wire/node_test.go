package wire_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestJSClient runs the JS client's tests, which check wsgate.js against
// the same golden vectors as this package. Node is optional locally and
// required in CI.
func TestJSClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not on PATH; CI must install Node ≥ 20 to check wsgate.js")
		}
		t.Skip("SKIPPING the JS codec and client tests: node is not on PATH (install Node ≥ 20 to run them)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "client/js/test/unit_test.mjs")
	cmd.Dir = ".." // the module root, as the test's relative paths expect
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test client/js/test/unit_test.mjs: %v\n%s", err, out)
	}
	t.Logf("node --test passed:\n%s", tail(out, 9))
}

// tail returns the last n lines of b, the summary of node's TAP output.
func tail(b []byte, n int) []byte {
	for i := len(b) - 2; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}
