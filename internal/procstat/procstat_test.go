package procstat

import (
	"os"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("RSS: got %d, %v; want at least 1 MiB for a running Go test", rss, err)
	}
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the counter moves (one clock tick), for at most 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, err := CPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU: still %v after 10 s of busy work, want it to grow", after)
		}
	}
	if hz := clockTicks(); hz <= 0 {
		t.Fatalf("clockTicks: got %d, want > 0", hz)
	}
}

func TestMissingProcess(t *testing.T) {
	if _, err := RSS(-1); err == nil {
		t.Error("RSS(-1): got nil error, want one")
	}
	if _, err := CPU(-1); err == nil {
		t.Error("CPU(-1): got nil error, want one")
	}
}
