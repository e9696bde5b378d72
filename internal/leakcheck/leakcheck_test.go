package leakcheck

import (
	"testing"
	"time"
)

// fakeT records failures instead of failing the real test.
type fakeT struct {
	testing.TB
	cleanups []func()
	failed   bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Cleanup(fn func())     { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestCheckCatchesALeak(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	f := &fakeT{TB: t}
	check(f, 100*time.Millisecond)
	go func() { <-stop }() // still running when the "test" ends
	f.runCleanups()
	if !f.failed {
		t.Fatal("a goroutine outliving the test: got no failure, want one")
	}
}

func TestCheckPassesWhenGoroutinesEnd(t *testing.T) {
	f := &fakeT{TB: t}
	check(f, Grace)
	done := make(chan struct{})
	go func() { time.Sleep(50 * time.Millisecond); close(done) }()
	f.runCleanups()
	<-done
	if f.failed {
		t.Fatal("a goroutine that ended within the grace period: got a failure, want none")
	}
}
