package loadgen

import (
	"time"

	"github.com/wsgate/wsgate/internal/procstat"
)

// The server-side figures come from /proc, not from the server, so that
// wsgate and the baseline are measured the same way: RSS is what the kernel
// charges the process (heap, stacks, runtime), CPU is utime+stime of all its
// threads.

// serverProc samples one server process; pid 0 samples nothing, so every
// scenario also runs against a server whose process is unknown (tests, or
// a remote gateway) and simply omits the server-side metrics.
type serverProc struct{ pid int }

func (p serverProc) known() bool { return p.pid > 0 }

func (p serverProc) rss() (int64, error) {
	if !p.known() {
		return 0, nil
	}
	return procstat.RSS(p.pid)
}

func (p serverProc) cpu() (time.Duration, error) {
	if !p.known() {
		return 0, nil
	}
	return procstat.CPU(p.pid)
}
