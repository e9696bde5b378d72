package websocket

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
)

// DialOptions tunes one client-side handshake.
type DialOptions struct {
	Header       http.Header                                                       // extra request headers (Cookie, Authorization, Origin, ...)
	Subprotocols []string                                                          // offered in preference order
	TLSConfig    *tls.Config                                                       // wss:// ; forces blocking mode
	NetDial      func(ctx context.Context, network, addr string) (net.Conn, error) // default net.Dialer
}

// clientHandshake dials (opts.NetDial / TLS), sends the upgrade request, validates the reply.
func clientHandshake(ctx context.Context, rawURL string, opts *DialOptions, comp compressionConfig) (handshakeResult, *http.Response, error) {
	return handshakeResult{}, nil, errors.New("websocket: dial not implemented")
}
