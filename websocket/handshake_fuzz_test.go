package websocket

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzServerHandshake feeds arbitrary request bytes through net/http's request
// parser into serverHandshake. Whatever the input: no panic, the answer is a
// 101 with the right accept key or one of the documented error statuses with
// a "websocket: " reason, and bytes past the request survive the hijack.
func FuzzServerHandshake(f *testing.F) {
	valid := "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + rfcSampleKey + "\r\nSec-WebSocket-Version: 13\r\n"
	for _, seed := range []string{
		valid + "\r\n",
		valid + "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n",
		valid + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
		valid + "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, x\r\n\r\n",
		valid + "Origin: http://h\r\n\r\n\x81\x82\x01\x02\x03\x04ik",
		valid + "Origin: http://evil\r\n\r\n",
		strings.Replace(valid, "GET", "POST", 1) + "\r\n",
		strings.Replace(valid, "13", "8", 1) + "\r\n",
		strings.Replace(valid, "HTTP/1.1", "HTTP/2.0", 1) + "\r\n",
		strings.Replace(valid, "HTTP/1.1", "HTTP/1.0", 1) + "\r\n",
		strings.Replace(valid, rfcSampleKey, "short", 1) + "\r\n",
		valid + "Content-Length: 2\r\n\r\nab",
		valid + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		br := bufio.NewReader(bytes.NewReader(data))
		r, err := http.ReadRequest(br)
		if err != nil {
			return // net/http answers these itself before any handler runs
		}
		wantBuffered := bytes.Clone(peekBuffered(br))
		w := newHSFuzzWriter(br)
		opts := &AcceptOptions{Subprotocols: []string{"chat", "superchat"}}
		res, err := serverHandshake(w, r, opts, compressionConfig{enabled: compress})
		if err != nil {
			checkFuzzRejection(t, w, err)
			return
		}
		checkFuzzUpgrade(t, w, r, res)
		// serverHandshake reads nothing past the headers when it accepts (a
		// request with a body is refused), so the whole read buffer must survive.
		if !bytes.Equal(res.buffered, wantBuffered) {
			t.Errorf("got buffered %q, want %q", res.buffered, wantBuffered)
		}
	})
}

func peekBuffered(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered()) // cannot fail: the bytes are buffered
	return b
}

// checkFuzzRejection checks an HTTP error answer.
func checkFuzzRejection(t *testing.T, w *hsFuzzWriter, err error) {
	t.Helper()
	if w.conn.hijacked {
		t.Fatalf("got error %v after hijacking, want a plain HTTP answer", err)
	}
	switch w.status {
	case 400, 403, 405, 426, 505:
	default:
		t.Fatalf("got status %d (%v), want 400/403/405/426/505", w.status, err)
	}
	if !strings.HasPrefix(w.body.String(), "websocket: ") || !strings.HasPrefix(err.Error(), "websocket: ") {
		t.Errorf("got body %q, error %q; want both to start with \"websocket: \"", w.body.String(), err)
	}
	if w.status == 426 && w.hdr.Get("Sec-WebSocket-Version") != "13" {
		t.Errorf("got 426 without Sec-WebSocket-Version: 13")
	}
	if w.status == 405 && w.hdr.Get("Allow") != "GET" {
		t.Errorf("got 405 without Allow: GET")
	}
}

// checkFuzzUpgrade checks the 101 a successful handshake hands to the
// connection layer, which sends it; nothing is written on the hijacked
// connection before that.
func checkFuzzUpgrade(t *testing.T, w *hsFuzzWriter, r *http.Request, res handshakeResult) {
	t.Helper()
	if !w.conn.hijacked || w.status != 0 {
		t.Fatalf("got success without hijack (status %d)", w.status)
	}
	if w.conn.out.Len() != 0 {
		t.Fatalf("got %q written during the handshake, want the 101 held for the connection layer", w.conn.out.Bytes())
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(res.response)), nil)
	if err != nil {
		t.Fatalf("101 response does not parse: %v\n%s", err, res.response)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("got status %d on the hijacked conn, want 101", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(r.Header.Get("Sec-WebSocket-Key")); got != want {
		t.Errorf("got Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if res.subprotocol != "" && res.subprotocol != "chat" && res.subprotocol != "superchat" {
		t.Errorf("got subprotocol %q, want one the server supports", res.subprotocol)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != res.subprotocol {
		t.Errorf("got header protocol %q, result %q; want equal", resp.Header.Get("Sec-WebSocket-Protocol"), res.subprotocol)
	}
}

// hsFuzzWriter is an http.ResponseWriter + http.Hijacker over an in-memory conn.
type hsFuzzWriter struct {
	hdr    http.Header
	status int
	body   bytes.Buffer
	br     *bufio.Reader
	conn   *hsFuzzConn
}

func newHSFuzzWriter(br *bufio.Reader) *hsFuzzWriter {
	return &hsFuzzWriter{hdr: http.Header{}, br: br, conn: &hsFuzzConn{}}
}

func (w *hsFuzzWriter) Header() http.Header { return w.hdr }

func (w *hsFuzzWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *hsFuzzWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

func (w *hsFuzzWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.conn.hijacked = true
	return w.conn, bufio.NewReadWriter(w.br, bufio.NewWriter(w.conn)), nil
}

// hsFuzzConn records writes; reads see EOF at once.
type hsFuzzConn struct {
	hijacked bool
	out      bytes.Buffer
}

func (c *hsFuzzConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (c *hsFuzzConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *hsFuzzConn) Close() error                     { return nil }
func (c *hsFuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *hsFuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *hsFuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *hsFuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *hsFuzzConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzTokenList checks the comma-list parser used for Connection, Upgrade and
// Sec-WebSocket-Protocol. Lines of raw become separate header values.
func FuzzTokenList(f *testing.F) {
	for _, seed := range [][2]string{
		{"keep-alive, Upgrade", "upgrade"},
		{"websocket", "WebSocket"},
		{" a ,\tb,,c ,", "b"},
		{"chat\nsuperchat, json", "json"},
		{",,,", ""},
		{"", "x"},
		{"up grade", "up grade"},
		{"\t", "\t"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, raw, token string) {
		values := strings.Split(raw, "\n")
		elems := parseTokenList(values)
		for _, e := range elems {
			if e == "" || strings.Contains(e, ",") || strings.Trim(e, " \t") != e {
				t.Fatalf("parseTokenList(%q) gave element %q, want non-empty, trimmed, without commas", values, e)
			}
		}
		if again := parseTokenList([]string{strings.Join(elems, ",")}); strings.Join(again, "\x00") != strings.Join(elems, "\x00") {
			t.Fatalf("reparsing %q gave %q, want the same list", elems, again)
		}
		if token != "" && !strings.Contains(token, ",") && strings.Trim(token, " \t") == token {
			want := false
			for _, e := range elems {
				want = want || strings.EqualFold(e, token)
			}
			if got := tokenListContains(values, token); got != want {
				t.Fatalf("tokenListContains(%q, %q) = %v, want %v", values, token, got, want)
			}
		}
		if p := selectSubprotocol(values, []string{token, "chat"}); p != "" && !hasExactToken(elems, p) {
			t.Fatalf("selectSubprotocol(%q) = %q, which the client did not offer", values, p)
		}
	})
}

func hasExactToken(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
