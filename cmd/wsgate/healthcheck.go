package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// runHealthcheck implements "wsgate healthcheck": GET /healthz of the
// gateway this environment configures, exit 0 on 200. It exists for
// container images without a shell or curl (the Dockerfile's HEALTHCHECK):
// it reads --config, $WSGATE_CONFIG and the WSGATE_* variables exactly as
// serve does, so it finds the address and scheme serve listens on.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("wsgate healthcheck", "Usage: wsgate healthcheck [--url URL] [--config FILE]\n\nGETs /healthz of the local gateway (address and TLS from the same settings as serve);\nexit status 0 when it answers 200. For container health checks.\n\n", stderr)
	url := fs.String("url", "", "`URL` to check instead (default: /healthz on serve's --addr, https with --tls-cert)")
	file := fs.String("config", "", "config `file` of serve (default $WSGATE_CONFIG)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" {
		var cargs []string
		if *file != "" {
			cargs = []string{"--config", *file}
		}
		cfg, err := config.Parse(cargs, os.Getenv, io.Discard)
		if err != nil {
			return fmt.Errorf("reading serve's settings: %w", err)
		}
		*url = healthURL(cfg)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// The probe asks whether this process is up, not who it is: the
	// certificate names the public host, not the loopback address dialled.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *url, resp.Status)
	}
	_, err = fmt.Fprintln(stdout, "ok")
	return err
}

// healthURL is /healthz on the address serve listens on, with a wildcard
// host (":8080", "0.0.0.0:8080") replaced by the loopback address.
func healthURL(cfg *config.Config) string {
	scheme := "http"
	if cfg.TLSCertFile != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(cfg.Server.Addr)
	if err != nil {
		return scheme + "://" + cfg.Server.Addr + "/healthz"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
}
