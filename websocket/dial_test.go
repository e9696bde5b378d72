package websocket

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeReply is what a fake server answers to one upgrade request.
type fakeReply struct {
	raw        string // written verbatim; "" writes nothing
	closeAfter bool   // close right after writing instead of waiting for the client
}

// fakeServer is a raw TCP server that answers upgrade requests with
// hand-written responses, to test the client against broken servers.
type fakeServer struct {
	ln   net.Listener
	reqs chan *http.Request // every request read, buffered
	wg   sync.WaitGroup
}

// startFakeServer serves reply for every connection until the test ends.
// reply gets the request and the correct Sec-WebSocket-Accept for its key.
func startFakeServer(t *testing.T, reply func(r *http.Request, accept string) fakeReply) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	fs := &fakeServer{ln: ln, reqs: make(chan *http.Request, 16)}
	fs.wg.Add(1)
	go func() {
		defer fs.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			fs.wg.Add(1)
			go func() {
				defer fs.wg.Done()
				fs.serve(conn, reply)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close() // stops the accept loop
		fs.wg.Wait()
	})
	return fs
}

func (fs *fakeServer) serve(conn net.Conn, reply func(*http.Request, string) fakeReply) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // bounds a stuck test
	br := bufio.NewReader(conn)
	r, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	select {
	case fs.reqs <- r:
	default:
	}
	rep := reply(r, acceptKey(r.Header.Get("Sec-WebSocket-Key")))
	if rep.raw != "" {
		if _, err := io.WriteString(conn, rep.raw); err != nil {
			return
		}
	}
	if !rep.closeAfter {
		_, _ = io.Copy(io.Discard, br) // wait until the client closes
	}
}

func (fs *fakeServer) url(path string) string { return "ws://" + fs.ln.Addr().String() + path }

// switching renders a 101 with the given accept and extra header lines.
func switchingReply(accept string, lines ...string) string {
	s := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	if accept != "" {
		s += "Sec-WebSocket-Accept: " + accept + "\r\n"
	}
	for _, l := range lines {
		s += l + "\r\n"
	}
	return s + "\r\n"
}

// handshakeCtx bounds one handshake in a test.
func handshakeCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDialAgainstServerHandshake(t *testing.T) {
	srv, outcomes := startHandshakeServer(t, &AcceptOptions{Subprotocols: []string{"a", "c"}}, compressionConfig{})
	url := "ws://" + srv.Listener.Addr().String() + "/ws"
	res, resp, err := clientHandshake(handshakeCtx(t), url, &DialOptions{Subprotocols: []string{"c", "a"}}, compressionConfig{})
	if err != nil {
		t.Fatalf("clientHandshake: %v", err)
	}
	defer res.conn.Close()
	if out := <-outcomes; out.err != nil {
		t.Fatalf("serverHandshake: %v", out.err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("got status %d, want 101", resp.StatusCode)
	}
	if res.subprotocol != "a" {
		t.Errorf("got subprotocol %q, want %q (server preference)", res.subprotocol, "a")
	}
	if got := readAllAfterHandshake(t, res); got != serverGreeting {
		t.Errorf("got %q after the handshake, want %q", got, serverGreeting)
	}
}

// readAllAfterHandshake returns the buffered bytes plus the rest of the
// connection until EOF.
func readAllAfterHandshake(t *testing.T, res handshakeResult) string {
	t.Helper()
	if err := res.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	rest, err := io.ReadAll(res.conn)
	if err != nil {
		t.Fatalf("read after handshake: %v", err)
	}
	return string(res.buffered) + string(rest)
}

func TestDialKeepsBytesAfter101(t *testing.T) {
	const extra = "\x81\x05hello\x82\x00"
	fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
		return fakeReply{raw: switchingReply(accept) + extra, closeAfter: true}
	})
	res, _, err := clientHandshake(handshakeCtx(t), fs.url("/"), nil, compressionConfig{})
	if err != nil {
		t.Fatalf("clientHandshake: %v", err)
	}
	defer res.conn.Close()
	if got := readAllAfterHandshake(t, res); got != extra {
		t.Errorf("got %q after the 101, want %q", got, extra)
	}
}

func TestDialRejectsBadResponses(t *testing.T) {
	tests := []struct {
		name       string
		reply      func(accept string) string
		wantStatus int    // 0: no response expected
		wantErr    string // substring of the error
	}{
		{"wrong accept", func(string) string { return switchingReply("AAAAAAAAAAAAAAAAAAAAAAAAAAA=") }, 101, "Sec-WebSocket-Accept"},
		{"missing accept", func(string) string { return switchingReply("") }, 101, "Sec-WebSocket-Accept"},
		{"unoffered protocol", func(a string) string { return switchingReply(a, "Sec-WebSocket-Protocol: z") }, 101, "not offered"},
		{"several protocols", func(a string) string { return switchingReply(a, "Sec-WebSocket-Protocol: a, b") }, 101, "several"},
		{"unoffered extension", func(a string) string { return switchingReply(a, "Sec-WebSocket-Extensions: permessage-deflate") }, 101, "extension"},
		{"missing upgrade", func(a string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + a + "\r\n\r\n"
		}, 101, "Upgrade: websocket"},
		{"missing connection", func(a string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + a + "\r\n\r\n"
		}, 101, "Connection: Upgrade"},
		{"401", func(string) string {
			return "HTTP/1.1 401 Unauthorized\r\nContent-Length: 9\r\nWWW-Authenticate: Bearer\r\n\r\nbad token"
		}, 401, "401 Unauthorized: \"bad token\""},
		{"403", func(string) string { return "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n" }, 403, "403 Forbidden"},
		{"429", func(string) string {
			return "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nslow"
		}, 429, "429"},
		{"503 without length", func(string) string { return "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\ndown" }, 503, "down"},
		{"200", func(string) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" }, 200, "200 OK"},
		{"not http", func(string) string { return "SSH-2.0-OpenSSH\r\n\r\n" }, 0, "read handshake response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
				return fakeReply{raw: tt.reply(accept), closeAfter: tt.wantStatus == 503}
			})
			opts := &DialOptions{Subprotocols: []string{"a", "b"}}
			_, resp, err := clientHandshake(handshakeCtx(t), fs.url("/"), opts, compressionConfig{})
			if err == nil {
				t.Fatalf("got nil error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "websocket: ") {
				t.Errorf("got error %q, want a \"websocket: \" error containing %q", err, tt.wantErr)
			}
			checkRejectedResponse(t, resp, tt.wantStatus)
		})
	}
}

// checkRejectedResponse checks the response handed back with an error.
func checkRejectedResponse(t *testing.T, resp *http.Response, wantStatus int) {
	t.Helper()
	if wantStatus == 0 {
		if resp != nil {
			t.Errorf("got response %v, want nil", resp.Status)
		}
		return
	}
	if resp == nil {
		t.Fatalf("got nil response, want status %d", wantStatus)
	}
	if resp.StatusCode != wantStatus {
		t.Errorf("got status %d, want %d", resp.StatusCode, wantStatus)
	}
	if wantStatus == 429 {
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "slow" {
			t.Errorf("got body %q, %v; want %q readable from resp.Body", body, err, "slow")
		}
		if got := resp.Header.Get("Retry-After"); got != "7" {
			t.Errorf("got Retry-After %q, want 7", got)
		}
	}
}

func TestDialRejectionBodyIsBounded(t *testing.T) {
	big := strings.Repeat("x", 10000)
	fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
		return fakeReply{raw: "HTTP/1.1 401 Unauthorized\r\nContent-Length: 10000\r\n\r\n" + big}
	})
	_, resp, err := clientHandshake(handshakeCtx(t), fs.url("/"), nil, compressionConfig{})
	if err == nil {
		t.Fatalf("got nil error, want a rejection")
	}
	if n := len(err.Error()); n > errorBodySnippet+200 {
		t.Errorf("got error of %d bytes, want the body cut to about %d", n, errorBodySnippet)
	}
	body, _ := io.ReadAll(resp.Body)
	if len(body) != maxErrorBody {
		t.Errorf("got %d body bytes in resp.Body, want %d", len(body), maxErrorBody)
	}
}

func TestDialRejectionBodyDoesNotStall(t *testing.T) {
	// No Content-Length and the server keeps the connection open: the body
	// never ends. The read must give up at ctx's deadline.
	fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
		return fakeReply{raw: "HTTP/1.1 401 Unauthorized\r\n\r\nno"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, resp, err := clientHandshake(ctx, fs.url("/"), nil, compressionConfig{})
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("got resp %v, err %v; want a 401 rejection", resp, err)
	}
	if !strings.Contains(err.Error(), `"no"`) {
		t.Errorf("got error %q, want the partial body %q in it", err, "no")
	}
}

func TestDialRequestHeaders(t *testing.T) {
	fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
		return fakeReply{raw: switchingReply(accept, "Sec-WebSocket-Protocol: b")}
	})
	opts := &DialOptions{
		Subprotocols: []string{"a", "b"},
		Header: http.Header{
			"Cookie":        {"sid=1"},
			"authorization": {"Bearer tok"},
			"Origin":        {"https://app.example"},
		},
	}
	res, _, err := clientHandshake(handshakeCtx(t), fs.url("/path?q=1"), opts, compressionConfig{})
	if err != nil {
		t.Fatalf("clientHandshake: %v", err)
	}
	defer res.conn.Close()
	if res.subprotocol != "b" {
		t.Errorf("got subprotocol %q, want b", res.subprotocol)
	}
	r := <-fs.reqs
	want := map[string]string{
		"Upgrade":                "websocket",
		"Connection":             "Upgrade",
		"Sec-WebSocket-Version":  "13",
		"Sec-WebSocket-Protocol": "a, b",
		"Cookie":                 "sid=1",
		"Authorization":          "Bearer tok",
		"Origin":                 "https://app.example",
		"User-Agent":             "wsgate",
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("got %s %q, want %q", k, got, v)
		}
	}
	if r.Method != http.MethodGet || r.RequestURI != "/path?q=1" || r.Host != fs.ln.Addr().String() {
		t.Errorf("got %s %s Host %s, want GET /path?q=1 Host %s", r.Method, r.RequestURI, r.Host, fs.ln.Addr())
	}
	if _, herr := checkKey(r.Header); herr != nil {
		t.Errorf("got bad Sec-WebSocket-Key %q: %v", r.Header.Get("Sec-WebSocket-Key"), herr)
	}
	if _, ok := r.Header["Sec-Websocket-Extensions"]; ok {
		t.Errorf("got Sec-WebSocket-Extensions with compression off, want none")
	}
}

func TestDialKeysAreRandom(t *testing.T) {
	seen := map[string]bool{}
	for range 8 {
		_, key, err := buildUpgradeRequest(dialTarget{host: "h", requestURI: "/"}, &DialOptions{}, compressionConfig{})
		if err != nil {
			t.Fatalf("buildUpgradeRequest: %v", err)
		}
		raw, err := base64.StdEncoding.DecodeString(key)
		if err != nil || len(raw) != 16 {
			t.Fatalf("got key %q, want base64 of 16 bytes", key)
		}
		if seen[key] {
			t.Fatalf("got key %q twice, want fresh random keys", key)
		}
		seen[key] = true
	}
}

func TestDialHeaderOverrides(t *testing.T) {
	fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
		return fakeReply{raw: switchingReply(accept)}
	})
	opts := &DialOptions{Header: http.Header{"Host": {"virtual.example"}, "User-Agent": {"bot/1"}}}
	res, _, err := clientHandshake(handshakeCtx(t), fs.url("/"), opts, compressionConfig{})
	if err != nil {
		t.Fatalf("clientHandshake: %v", err)
	}
	defer res.conn.Close()
	r := <-fs.reqs
	if r.Host != "virtual.example" || r.Header.Get("User-Agent") != "bot/1" {
		t.Errorf("got Host %q User-Agent %q, want virtual.example and bot/1", r.Host, r.Header.Get("User-Agent"))
	}
}

func TestDialRejectsHandshakeHeaders(t *testing.T) {
	for _, name := range []string{"Sec-WebSocket-Key", "upgrade", "Connection", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"} {
		var dials atomic.Int32
		opts := &DialOptions{
			Header: http.Header{name: {"x"}},
			NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return nil, errors.New("should not dial")
			},
		}
		_, _, err := clientHandshake(handshakeCtx(t), "ws://127.0.0.1:1/", opts, compressionConfig{})
		if err == nil || !strings.Contains(err.Error(), "set by the handshake") {
			t.Errorf("header %s: got error %v, want \"set by the handshake\"", name, err)
		}
		if n := dials.Load(); n != 0 {
			t.Errorf("header %s: got %d dials, want 0", name, n)
		}
	}
}

func TestParseDialURL(t *testing.T) {
	tests := []struct {
		url                   string
		wantAddr, wantHost    string
		wantURI, wantSrvName  string
		wantSecure, wantError bool
	}{
		{url: "ws://example.com", wantAddr: "example.com:80", wantHost: "example.com", wantURI: "/", wantSrvName: "example.com"},
		{url: "wss://example.com/a/b?c=d", wantAddr: "example.com:443", wantHost: "example.com", wantURI: "/a/b?c=d", wantSrvName: "example.com", wantSecure: true},
		{url: "WS://Example.com:8080/x", wantAddr: "Example.com:8080", wantHost: "Example.com:8080", wantURI: "/x", wantSrvName: "Example.com"},
		{url: "ws://[::1]:9000/x", wantAddr: "[::1]:9000", wantHost: "[::1]:9000", wantURI: "/x", wantSrvName: "::1"},
		{url: "wss://[::1]/", wantAddr: "[::1]:443", wantHost: "[::1]", wantURI: "/", wantSrvName: "::1", wantSecure: true},
		{url: "ws://h/a%20b", wantAddr: "h:80", wantHost: "h", wantURI: "/a%20b", wantSrvName: "h"},
		{url: "http://example.com/", wantError: true},
		{url: "https://example.com/", wantError: true},
		{url: "ftp://example.com/", wantError: true},
		{url: "example.com/ws", wantError: true},
		{url: "ws:///path", wantError: true},
		{url: "ws://:80/", wantError: true},
		{url: "ws://user:pw@example.com/", wantError: true},
		{url: "ws://example.com/#frag", wantError: true},
		{url: "ws://example.com/?a b", wantError: true},
		{url: "ws://exa mple.com/", wantError: true},
		{url: "", wantError: true},
	}
	for _, tt := range tests {
		got, err := parseDialURL(tt.url)
		if tt.wantError {
			if err == nil {
				t.Errorf("parseDialURL(%q) = %+v, want an error", tt.url, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseDialURL(%q): %v", tt.url, err)
			continue
		}
		want := dialTarget{secure: tt.wantSecure, addr: tt.wantAddr, host: tt.wantHost, serverName: tt.wantSrvName, requestURI: tt.wantURI}
		if got != want {
			t.Errorf("parseDialURL(%q) = %+v, want %+v", tt.url, got, want)
		}
	}
}

func TestDialUsesNetDial(t *testing.T) {
	fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
		return fakeReply{raw: switchingReply(accept)}
	})
	var gotNetwork, gotAddr string
	opts := &DialOptions{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		gotNetwork, gotAddr = network, addr
		var d net.Dialer
		return d.DialContext(ctx, "tcp", fs.ln.Addr().String())
	}}
	res, _, err := clientHandshake(handshakeCtx(t), "ws://gateway.invalid:1234/ws", opts, compressionConfig{})
	if err != nil {
		t.Fatalf("clientHandshake: %v", err)
	}
	defer res.conn.Close()
	if gotNetwork != "tcp" || gotAddr != "gateway.invalid:1234" {
		t.Errorf("got NetDial(%q, %q), want (tcp, gateway.invalid:1234)", gotNetwork, gotAddr)
	}
	if r := <-fs.reqs; r.Host != "gateway.invalid:1234" {
		t.Errorf("got Host %q, want gateway.invalid:1234", r.Host)
	}
}

func TestDialContextDeadline(t *testing.T) {
	fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
		return fakeReply{} // read the request, never answer
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := dialWithin(t, ctx, fs.url("/"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got error %v, want one matching context.DeadlineExceeded", err)
	}
}

func TestDialContextCancel(t *testing.T) {
	fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
		return fakeReply{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-fs.reqs // the request is on the wire: cancel mid-handshake
		cancel()
	}()
	err := dialWithin(t, ctx, fs.url("/"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got error %v, want one matching context.Canceled", err)
	}
}

// dialWithin runs clientHandshake and fails the test if it does not return
// within 10 s (a liveness bound, not a speed check).
func dialWithin(t *testing.T, ctx context.Context, url string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		res, _, err := clientHandshake(ctx, url, nil, compressionConfig{})
		if err == nil {
			_ = res.conn.Close() // unexpected success; the caller reports it
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("got nil error, want the handshake to fail")
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("clientHandshake did not return after ctx ended")
		return nil
	}
}

func TestDialTLS(t *testing.T) {
	outcomes := make(chan error, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := serverHandshake(w, r, nil, compressionConfig{})
		if err == nil {
			_, _ = res.conn.Write(append(res.response, serverGreeting...)) // checked by the client
			_ = res.conn.Close()                                           // handler owns the conn
		}
		outcomes <- err
	}))
	// The server prefers h2; the client must still get HTTP/1.1 through ALPN.
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused-certificate case below is expected
	srv.StartTLS()
	defer srv.Close()
	url := "wss://" + srv.Listener.Addr().String() + "/ws"

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	res, _, err := clientHandshake(handshakeCtx(t), url, &DialOptions{TLSConfig: &tls.Config{RootCAs: pool}}, compressionConfig{})
	if err != nil {
		t.Fatalf("clientHandshake: %v", err)
	}
	defer res.conn.Close()
	if err := <-outcomes; err != nil {
		t.Fatalf("serverHandshake: %v", err)
	}
	tc, ok := res.conn.(*tls.Conn)
	if !ok {
		t.Fatalf("got conn %T, want *tls.Conn", res.conn)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("got ALPN %q, want http/1.1", p)
	}
	if got := readAllAfterHandshake(t, res); got != serverGreeting {
		t.Errorf("got %q after the handshake, want %q", got, serverGreeting)
	}

	// Without the test CA the certificate must be refused.
	_, _, err = clientHandshake(handshakeCtx(t), url, nil, compressionConfig{})
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Errorf("got error %v, want x509.UnknownAuthorityError", err)
	}
}

func TestDialCompressionOffer(t *testing.T) {
	comp := compressionConfig{enabled: true}
	const reply = "permessage-deflate"
	fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
		return fakeReply{raw: switchingReply(accept, "Sec-WebSocket-Extensions: "+reply)}
	})
	wantParams, wantErr := acceptDeflateResponse([]string{reply}, comp)
	res, _, err := clientHandshake(handshakeCtx(t), fs.url("/"), nil, comp)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("got error %v, want error %v (from acceptDeflateResponse)", err, wantErr)
	}
	if err == nil {
		defer res.conn.Close()
		if (res.deflate == nil) != (wantParams == nil) || (wantParams != nil && *res.deflate != *wantParams) {
			t.Errorf("got deflate params %+v, want %+v", res.deflate, wantParams)
		}
	}
	r := <-fs.reqs
	if got, want := r.Header.Get("Sec-WebSocket-Extensions"), deflateOffer(comp); got != want {
		t.Errorf("got Sec-WebSocket-Extensions %q, want %q", got, want)
	}
}

func TestDialCompressionRejectsUnofferedExtension(t *testing.T) {
	fs := startFakeServer(t, func(r *http.Request, accept string) fakeReply {
		return fakeReply{raw: switchingReply(accept, "Sec-WebSocket-Extensions: x-webkit-deflate-frame")}
	})
	_, resp, err := clientHandshake(handshakeCtx(t), fs.url("/"), nil, compressionConfig{enabled: true})
	if err == nil || !strings.HasPrefix(err.Error(), "websocket: ") {
		t.Fatalf("got error %v, want a \"websocket: \" error for an unoffered extension", err)
	}
	if resp == nil || resp.StatusCode != 101 {
		t.Errorf("got response %v, want the 101 handed back", resp)
	}
}
