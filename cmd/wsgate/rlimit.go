package main

import (
	"fmt"
	"log/slog"

	"github.com/wsgate/wsgate/internal/config"
)

// Connection limits derived from the open-files limit.
const (
	// libraryMaxConns is wsgate.Config's own MaxConns default, the most
	// the derived default gives.
	libraryMaxConns = 100000
	// libraryMaxPending is wsgate.Config's MaxPendingConns default.
	libraryMaxPending = 1024
	// fdOverhead is what the process needs besides client sockets: the
	// listener, epoll and event descriptors, Redis and backend
	// connections, log files.
	fdOverhead = 64
)

// fitConnsToFiles raises the soft open-files limit to the hard one, then
// sets --max-conns, when not given, to what the limit leaves for WebSockets
// once pending connections and the process's own files are served; a
// configured value beyond that is kept, with a warning, since the
// descriptor limit will refuse (503) the connections beyond it.
func fitConnsToFiles(cfg *config.Config, logger *slog.Logger) {
	soft, hard, err := raiseOpenFiles()
	if err != nil {
		logger.Warn("wsgate: raising the open-files limit", "err", err)
	}
	if soft == 0 {
		return // unknown on this platform
	}
	pending := cfg.Server.MaxPendingConns
	if pending == 0 {
		pending = libraryMaxPending
	}
	fit := maxConnsFor(soft, pending)
	switch {
	case cfg.Server.MaxConns == 0:
		cfg.Server.MaxConns = fit
	case cfg.Server.MaxConns > fit:
		logger.Warn(fmt.Sprintf("wsgate: --max-conns %d cannot be met: the open-files limit is %d (hard limit %d), which leaves room for about %d connections; beyond them new clients get HTTP 503", cfg.Server.MaxConns, soft, hard, fit),
			"max_conns", cfg.Server.MaxConns, "open_files", soft, "fits", fit)
	}
}

// maxConnsFor is the number of WebSockets an open-files limit of nofile
// leaves room for, with pending connections and fdOverhead set aside (at
// most a quarter of the limit), capped at the library's default.
func maxConnsFor(nofile uint64, pending int) int {
	reserve := min(uint64(pending)+fdOverhead, nofile/4)
	return int(min(nofile-reserve, libraryMaxConns))
}
