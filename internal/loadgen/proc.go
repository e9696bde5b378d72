package loadgen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The server-side figures come from /proc, not from the server, so that
// wsgate and the baseline are measured the same way: RSS is what the kernel
// charges the process (heap, stacks, runtime), CPU is utime+stime of all its
// threads.

// readRSS returns VmRSS of pid in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("wsgate: server rss: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("wsgate: server rss: unexpected line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("wsgate: server rss: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("wsgate: server rss: no VmRSS in /proc/%d/status", pid)
}

// readCPU returns the CPU time (user + system, every thread) pid has used.
// Its resolution is one clock tick, usually 10 ms, which is why the
// scenarios that report CPU run for seconds.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("wsgate: server cpu: %w", err)
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after the last ')' start with field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("wsgate: server cpu: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("wsgate: server cpu: short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range []string{f[utime], f[stime]} {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("wsgate: server cpu: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / time.Duration(clockTicks()), nil
}

// clockTicks returns USER_HZ from the auxiliary vector (AT_CLKTCK, what
// sysconf(_SC_CLK_TCK) reads), or 100 when it cannot be read.
func clockTicks() int64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for ; len(b) >= 16; b = b[16:] {
		if binary.NativeEndian.Uint64(b) == atClkTck {
			if v := int64(binary.NativeEndian.Uint64(b[8:])); v > 0 {
				return v
			}
		}
	}
	return 100
}

// serverProc samples one server process; pid 0 samples nothing, so every
// scenario also runs against a server whose process is unknown (tests, or
// a remote gateway) and simply omits the server-side metrics.
type serverProc struct{ pid int }

func (p serverProc) known() bool { return p.pid > 0 }

func (p serverProc) rss() (int64, error) {
	if !p.known() {
		return 0, nil
	}
	return readRSS(p.pid)
}

func (p serverProc) cpu() (time.Duration, error) {
	if !p.known() {
		return 0, nil
	}
	return readCPU(p.pid)
}
