package main

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/config"
)

// certificate is the certificate serve presents, replaced on SIGHUP. The
// TLS stack asks GetCertificate at every handshake, so a new certificate
// applies to the next handshake while open connections keep the session
// they negotiated: nothing is dropped.
type certificate struct {
	cur atomic.Pointer[tls.Certificate]
}

// newTLS loads --tls-cert and --tls-key into a TLS configuration for
// wsgate.Config.TLSConfig, or returns nil, nil when TLS is off.
func newTLS(cfg *config.Config) (*tls.Config, *certificate, error) {
	if cfg.TLSCertFile == "" {
		return nil, nil, nil
	}
	c := &certificate{}
	if err := c.load(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
		return nil, nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}, c, nil
}

// load reads a certificate chain and its key and makes them the current
// ones; on error the current ones stay.
func (c *certificate) load(certFile, keyFile string) error {
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("wsgate: --tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
	}
	c.cur.Store(&kp)
	return nil
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}
