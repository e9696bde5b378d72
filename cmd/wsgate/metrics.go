package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/metrics"
)

// metricsServer serves GET /metrics on --metrics-addr, a listener apart
// from the gateway's: Prometheus scrapes it from the monitoring network,
// it is never exposed where clients connect, and it answers during a
// drain, when the gateway's port refuses new clients.
type metricsServer struct {
	hs   *http.Server
	addr net.Addr
	done chan error
}

// startMetrics listens on addr and serves srv's metrics until stop; nil
// when addr is "" (off).
func startMetrics(ctx context.Context, addr string, srv *wsgate.Server, logger *slog.Logger) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	h, err := metrics.Handler(srv)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wsgate: --metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	m := &metricsServer{
		hs:   &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr(),
		done: make(chan error, 1),
	}
	go func() { m.done <- m.hs.Serve(ln) }()
	logger.Info("serving metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	return m, nil
}

// stop closes the listener and waits for Serve to return. Scrapes in
// flight are cut: the gateway is gone, and so are its numbers.
func (m *metricsServer) stop() {
	if m == nil {
		return
	}
	_ = m.hs.Close() // only the listener's close error, which changes nothing now
	<-m.done         // http.ErrServerClosed, or the error that stopped it earlier
}

// printBanner adds the metrics URL to serve's banner.
func (m *metricsServer) printBanner(w io.Writer) {
	if m != nil {
		fmt.Fprintf(w, "  metrics:    http://%s/metrics\n", m.addr)
	}
}
