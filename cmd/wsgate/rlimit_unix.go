//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// raiseOpenFiles raises the soft RLIMIT_NOFILE to the hard limit (Go's
// runtime does the same at start on most systems; doing it here makes it
// so everywhere and lets serve read the result) and returns both.
func raiseOpenFiles() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("wsgate: getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = want.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return uint64(lim.Cur), uint64(lim.Max), fmt.Errorf("wsgate: setrlimit: %w", err)
		}
		lim = want
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}
