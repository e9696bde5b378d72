package wsgate

import (
	"crypto/tls"
	"net"
)

// serverTLS is the Server's own copy of the caller's TLS settings, offering
// HTTP/1.1 by ALPN unless the caller chose protocols: a browser that
// negotiated h2 would try WebSocket over HTTP/2, which the engine does not
// speak, and the page and API need nothing more than HTTP/1.1.
func serverTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	if len(c.NextProtos) == 0 {
		c.NextProtos = []string{"http/1.1"}
	}
	return c
}

// tlsListener wraps ln in TLS when Config.TLSConfig is set. The handshake
// runs on the http.Server's connection goroutine, under its header
// timeout; the hijacked *tls.Conn then goes to the engine, which drives it
// in blocking mode (it cannot reach a raw socket under TLS).
func (s *Server) tlsListener(ln net.Listener) net.Listener {
	if s.cfg.TLSConfig == nil {
		return ln
	}
	return tls.NewListener(ln, s.cfg.TLSConfig)
}
