// Package leakcheck fails a test that leaves goroutines running: every goroutine in
// wsgate has an owner that must wait for it, and this is how the tests hold owners to it.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Grace is how long Check waits for goroutines that are on their way out.
const Grace = 10 * time.Second

// Check records the goroutines running now and, when the test ends, fails it if any
// goroutine started since is still running after Grace. Call it first in a test so
// that its cleanup runs after the test's other cleanups.
func Check(t testing.TB) {
	t.Helper()
	check(t, Grace)
}

func check(t testing.TB, grace time.Duration) {
	before := ids()
	t.Cleanup(func() {
		deadline := time.Now().Add(grace)
		for {
			leaked := since(before)
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// stacks returns every goroutine's stack keyed by its header ("goroutine 7").
func stacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := make(map[string]string)
	for _, g := range strings.Split(string(buf), "\n\n") {
		id, _, _ := strings.Cut(g, " [")
		out[id] = g
	}
	return out
}

func ids() map[string]bool {
	out := make(map[string]bool)
	for id := range stacks() {
		out[id] = true
	}
	return out
}

// since lists the stacks of goroutines not in before, leaving out the testing
// framework's own and os/signal's, which the first signal.Notify of the
// process starts and which runs until the process exits (a serve under
// test watches SIGHUP).
func since(before map[string]bool) []string {
	var leaked []string
	for id, stack := range stacks() {
		if before[id] || strings.Contains(stack, "testing.tRunner") || strings.Contains(stack, "testing.(*T).Run") ||
			strings.Contains(stack, "os/signal.loop") {
			continue
		}
		leaked = append(leaked, stack)
	}
	return leaked
}
