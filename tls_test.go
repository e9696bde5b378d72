package wsgate_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/internal/testcert"
	"github.com/wsgate/wsgate/websocket"
)

// TestTLS serves wss:// from a certificate of a test CA: a request and
// its reply go through, HTTPS serves /healthz, HTTP/1.1 is what ALPN
// picks even for a client that prefers h2, and plain ws:// is refused.
// Mode asks for the reactor, which cannot read through TLS: the engine
// picks the mode per connection (a *tls.Conn is not a *net.TCPConn whose
// descriptor it could take), so TLS connections run in blocking mode.
func TestTLS(t *testing.T) {
	ca := testcert.NewCA(t)
	leaf := ca.Leaf(t)
	given := &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	cfg := anon()
	cfg.TLSConfig = given
	cfg.Mode = websocket.ModeReactor
	ts := startServer(t, cfg, handle(t, 110, echoHandler))
	if len(given.NextProtos) != 0 {
		t.Errorf("New changed the caller's TLSConfig: NextProtos %q", given.NextProtos)
	}

	c := dial(t, "wss://"+ts.addr+"/ws", &websocket.DialOptions{TLSConfig: &tls.Config{RootCAs: ca.Pool}})
	write(t, c, websocket.BinaryMessage, simple(110, "over tls"))
	if _, got := read(t, c); !strings.HasSuffix(string(got), "got over tls") {
		t.Errorf("reply over wss: got %q, want it to end in %q", got, "got over tls")
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: true}}
	resp, err := hc.Get("https://" + ts.addr + "/healthz")
	if err != nil {
		t.Fatalf("GET https /healthz: %v", err)
	}
	_ = resp.Body.Close() // status is all we need
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 {
		t.Errorf("GET https /healthz: got %d over %s, want 200 over HTTP/1.1", resp.StatusCode, resp.Proto)
	}

	conn, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ca.Pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("tls.Dial: %v", err)
	}
	if got := conn.ConnectionState().NegotiatedProtocol; got != "http/1.1" {
		t.Errorf("ALPN: got %q, want http/1.1 (the engine does not speak WebSocket over HTTP/2)", got)
	}
	_ = conn.Close() // only the handshake mattered

	if _, err := dialErr(t, "ws://"+ts.addr+"/ws", nil); err == nil {
		t.Error("plain ws:// to the TLS port: got a connection, want an error")
	}
}

func TestTLSConfigNeedsACertificate(t *testing.T) {
	cfg := anon()
	cfg.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS13}
	_, err := wsgate.New(cfg)
	if err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Fatalf("New with a TLSConfig without certificates: got %v, want an error saying so", err)
	}
}

// TestSetAllowedOrigins: a changed list applies to the next handshake.
func TestSetAllowedOrigins(t *testing.T) {
	ts := startServer(t, anon())
	opts := &websocket.DialOptions{Header: http.Header{"Origin": {"https://app.example"}}}
	if _, err := dialErr(t, ts.wsURL("/ws"), opts); statusOf(err) != http.StatusForbidden {
		t.Fatalf("before: got %v, want 403", err)
	}
	ts.SetAllowedOrigins([]string{"https://app.example"})
	dial(t, ts.wsURL("/ws"), opts)
	ts.SetAllowedOrigins(nil)
	if _, err := dialErr(t, ts.wsURL("/ws"), opts); statusOf(err) != http.StatusForbidden {
		t.Fatalf("after clearing: got %v, want 403", err)
	}
}
