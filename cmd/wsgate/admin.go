package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/web"
)

// mountAdmin serves the live admin view at /admin on the gateway's port,
// behind the API key; with no API key there is no admin view, as there is
// no API.
func mountAdmin(page *http.ServeMux, srv *wsgate.Server, cfg *config.Config, peers web.Peers) {
	h := web.Admin(srv, web.AdminConfig{APIKey: cfg.APIKey, Node: nodeName(cfg.Server.Addr), Peers: peers})
	page.Handle("/admin", h)
	page.Handle("/admin/", h)
}

// nodeName names this node in the admin view: the host name and the
// gateway's port.
func nodeName(addr string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "0" {
		return net.JoinHostPort(host, port)
	}
	return host
}

// printAdminBanner adds the admin view's URL to serve's banner.
func printAdminBanner(w io.Writer, cfg *config.Config, addr net.Addr) {
	if cfg.APIKey != "" {
		scheme := "http"
		if cfg.TLSCertFile != "" {
			scheme = "https"
		}
		fmt.Fprintf(w, "  admin:      %s://%s/admin (any user name; password: the API key)\n", scheme, displayAddr(addr))
	}
}
