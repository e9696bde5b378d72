//go:build linux

package websocket_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/procstat"
)

// streamRSSLimit is what echoing a message through the streaming API may
// cost a process, however large the message.
const streamRSSLimit = 64 << 20

// TestStreamEchoRSS echoes one large message through NextWriter →
// NewPullServer (NextReader → NextWriter) → NextReader in a child process
// (internal/streamecho, built without the race detector) and reads the
// child's peak RSS from /proc. 128 MiB always (twice the limit, so a
// buffering implementation fails); 1 GiB with WSGATE_STREAM_GIB=1 (about
// 10 s).
func TestStreamEchoRSS(t *testing.T) {
	sizes := []int64{128 << 20}
	if os.Getenv("WSGATE_STREAM_GIB") == "1" {
		sizes = append(sizes, 1<<30)
	}
	bin := filepath.Join(t.TempDir(), "streamecho")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./internal/streamecho").CombinedOutput(); err != nil {
		t.Fatalf("build streamecho: %v\n%s", err, out)
	}
	for _, n := range sizes {
		t.Run(fmt.Sprintf("%dMiB", n>>20), func(t *testing.T) {
			peak := runStreamEcho(ctx, t, bin, n)
			t.Logf("%d MiB echoed, child peak RSS %.1f MiB", n>>20, float64(peak)/(1<<20))
			if peak > streamRSSLimit {
				t.Errorf("got peak RSS %.1f MiB echoing %d MiB, want under %d MiB", float64(peak)/(1<<20), n>>20, streamRSSLimit>>20)
			}
		})
	}
}

// runStreamEcho runs the child for n bytes and returns its peak RSS,
// read once it reported success and before it exits.
func runStreamEcho(ctx context.Context, t *testing.T, bin string, n int64) int64 {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "-bytes", fmt.Sprint(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close() // lets the child exit
		if err := cmd.Wait(); err != nil {
			t.Errorf("streamecho: %v\n%s", err, stderr.String())
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if want := fmt.Sprintf("ok %d\n", n); line != want {
		t.Fatalf("streamecho: got %q (%v), want %q\n%s", line, err, want, stderr.String())
	}
	peak, err := procstat.PeakRSS(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return peak
}
