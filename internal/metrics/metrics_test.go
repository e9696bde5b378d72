package metrics_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgate/wsgate"
	redisbroker "github.com/wsgate/wsgate/broker/redis"
	"github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/leakcheck"
	"github.com/wsgate/wsgate/internal/metrics"
	"github.com/wsgate/wsgate/websocket"
	"github.com/wsgate/wsgate/wire"
)

// samples is one scrape: series ("name{label="value",…}", labels sorted;
// histograms as name_count) → value.
type samples map[string]float64

func scrape(t *testing.T, url string) samples {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	out := samples{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				out[name+"_count{"+strings.Join(labels, ",")+"}"] = float64(m.Histogram.GetSampleCount())
			case m.Untyped != nil:
				out[key] = m.Untyped.GetValue()
			}
		}
	}
	return out
}

// families returns the metric names in s.
func (s samples) families() map[string]bool {
	out := map[string]bool{}
	for k := range s {
		name, _, _ := strings.Cut(k, "{")
		out[strings.TrimSuffix(name, "_count")] = true
	}
	return out
}

// load is the scripted load's gateway and client side.
type load struct {
	t    *testing.T
	gw   *gatewaytest.Gateway
	next int // last X-Real-IP host number handed out
}

// ip returns a fresh client address, so that the per-IP handshake limit
// only bites where the test wants it to.
func (l *load) ip() string {
	l.next++
	return netip.AddrFrom4([4]byte{10, 0, byte(l.next >> 8), byte(l.next)}).String()
}

// dial opens path with extra headers from a fresh IP (unless header names
// one) and returns the HTTP status the handshake got.
func (l *load) dial(path string, protocols []string, header http.Header) (*websocket.Conn, int) {
	l.t.Helper()
	if header == nil {
		header = http.Header{}
	}
	if header.Get("X-Real-IP") == "" {
		header.Set("X-Real-IP", l.ip())
	}
	ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, l.gw.WS+path, nil, &websocket.DialOptions{Subprotocols: protocols, Header: header})
	if err != nil {
		if resp == nil {
			l.t.Fatalf("dial %s: %v", path, err)
		}
		return nil, resp.StatusCode
	}
	l.t.Cleanup(func() { _ = c.CloseNow() }) // closed already, mostly
	return c, http.StatusSwitchingProtocols
}

func (l *load) mustDial(path string, protocols ...string) *websocket.Conn {
	l.t.Helper()
	c, status := l.dial(path, protocols, nil)
	if c == nil {
		l.t.Fatalf("dial %s: got HTTP %d, want 101", path, status)
	}
	return c
}

func (l *load) send(c *websocket.Conn, typ websocket.MessageType, b []byte) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
	defer cancel()
	if err := c.Write(ctx, typ, b); err != nil {
		l.t.Fatalf("write: %v", err)
	}
}

// read returns the next message on c.
func (l *load) read(c *websocket.Conn) []byte {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		l.t.Fatalf("read: %v", err)
	}
	return append([]byte(nil), b...)
}

// request sends a simple-form request and reads its reply.
func (l *load) request(c *websocket.Conn, action wire.Action, payload string) {
	l.t.Helper()
	l.send(c, websocket.BinaryMessage, wire.AppendSimple(nil, action, []byte(payload)))
	l.read(c)
}

// frame sends a full-form frame.
func (l *load) frame(c *websocket.Conn, f wire.Frame) {
	l.t.Helper()
	b, err := wire.AppendFrame(nil, &f)
	if err != nil {
		l.t.Fatal(err)
	}
	l.send(c, websocket.BinaryMessage, b)
}

// readUntilClosed reads c until it ends and returns the close code.
func (l *load) readUntilClosed(c *websocket.Conn) int {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return int(websocket.CloseStatus(err))
		}
	}
}

// rawUpgrade opens /ws over a bare TCP socket that never reads (a slow
// consumer) and returns it.
func (l *load) rawUpgrade(path string) net.Conn {
	l.t.Helper()
	c, err := net.Dial("tcp", l.gw.Addr)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { _ = c.Close() }) // the server may have closed it
	req := "GET " + path + " HTTP/1.1\r\nHost: " + l.gw.Addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"X-Real-IP: " + l.ip() + "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		l.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		l.t.Fatalf("raw upgrade: got %v, %v; want 101", resp, err)
	}
	return c
}

const (
	actionEcho wire.Action = 150
	actionFail wire.Action = 151
	// actionFallback has no handler: the Fallback answers it, as a backend
	// would, and Config.CountActions gives it its own series.
	actionFallback wire.Action = 152
	actionPanic    wire.Action = 153
)

func startGateway(t *testing.T) (*gatewaytest.Gateway, string) {
	t.Helper()
	gw := gatewaytest.Start(t, wsgate.Config{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		HandshakeRate:  0.5, // burst 1: a second handshake from one IP is refused
		MaxConns:       24,
		MessageRate:    50,
		MaxMessageSize: 4 << 10,
		SendQueueBytes: 64 << 10,
		CountActions:   []wire.Action{actionFallback},
		Fallback:       func(_ context.Context, r *wsgate.Request) ([]byte, error) { return r.Payload, nil },
	}, func(srv *wsgate.Server) {
		if err := srv.Handle(actionEcho, func(_ context.Context, r *wsgate.Request) ([]byte, error) { return r.Payload, nil }); err != nil {
			t.Fatal(err)
		}
		if err := srv.Handle(actionFail, func(context.Context, *wsgate.Request) ([]byte, error) { return nil, errors.New("boom") }); err != nil {
			t.Fatal(err)
		}
		if err := srv.Handle(actionPanic, func(context.Context, *wsgate.Request) ([]byte, error) { panic("metrics test") }); err != nil {
			t.Fatal(err)
		}
	})
	h, err := metrics.Handler(gw.Server)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return gw, hs.URL + "/metrics"
}

// TestMetricsMoveUnderLoad scrapes /metrics before, during and after a
// scripted load that exercises every documented wsgate_* series, and
// checks that each one moved as docs/METRICS.md says it should.
func TestMetricsMoveUnderLoad(t *testing.T) {
	leakcheck.Check(t)
	gw, url := startGateway(t)
	l := &load{t: t, gw: gw}
	before := scrape(t, url)

	simple := l.mustDial("/ws?user=alice")
	full := l.mustDial("/ws?user=bob", wire.Subprotocol)
	var hello wire.Frame
	if err := wire.DecodeFrame(l.read(full), &hello); err != nil || hello.Type != wire.TypeHello {
		t.Fatalf("first frame: got %+v, %v; want hello", hello, err)
	}
	jsonConn := l.mustDial("/ws?user=carol", wire.SubprotocolJSON)
	l.read(jsonConn) // hello
	echo := l.mustDial("/echo")
	gatewaytest.WaitFor(t, "4 connections", func() bool { st := gw.Stats(); return st.Conns == 3 && st.EchoConns == 1 })
	during1 := scrape(t, url) // gauges while every form is open

	// Requests: a registered action, a failing one, an unknown one, a system one.
	l.request(simple, actionEcho, "hi")
	l.request(simple, actionFail, "")
	l.request(simple, actionPanic, "")
	l.request(simple, 999, "")
	l.request(simple, actionFallback, "")
	l.frame(full, wire.Frame{Type: wire.TypeRequest, ID: 1, Action: wire.ActionSubscribe, Payload: []byte("news")})
	l.read(full)

	// Pushes of every kind, each to connections that read them.
	ctx := context.Background()
	push := func(to wsgate.Target, readers ...*websocket.Conn) {
		t.Helper()
		if n, err := gw.Push(ctx, to, 200, []byte("p")); n != len(readers) || err != nil {
			t.Fatalf("Push(%+v): got %d, %v; want %d, nil", to, n, err, len(readers))
		}
		for _, c := range readers {
			l.read(c)
		}
	}
	push(wsgate.Target{User: "alice"}, simple)
	push(wsgate.Target{Topic: "news"}, full)
	push(wsgate.Target{All: true}, simple, full, jsonConn)
	push(wsgate.Target{Conn: string(hello.ConnID)}, full)

	// Resume: dave's client resumes from nothing after a push (replayed),
	// erin's from an epoch the server does not have (a lost notice).
	if _, err := gw.Publish(ctx, wsgate.Target{User: "dave"}, 201, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	dave := l.mustDial("/ws?user=dave&resume=0.0", wire.Subprotocol)
	l.read(dave)                                                     // hello
	l.read(dave)                                                     // the replayed push
	erin := l.mustDial("/ws?user=erin&resume=1.7", wire.Subprotocol) // an epoch erin does not have
	l.read(erin)                                                     // hello
	l.read(erin)                                                     // the lost notice

	// Refused handshakes: 400, 401, 403, 429, 503.
	l.refusals()

	// Closes: 1009 (too big), 4002 (too fast), 4000 (slow consumer), 1000.
	l.send(jsonConn, websocket.TextMessage, []byte(strings.Repeat("x", 5<<10)))
	if code := l.readUntilClosed(jsonConn); code != 1009 {
		t.Errorf("oversized message: closed with %d, want 1009", code)
	}
	l.flood()
	l.slowConsumer()
	// Closes are counted when the gateway has let go of the connection,
	// a moment after the client saw the close.
	gatewaytest.WaitFor(t, "only the 4 well-behaved /ws connections open", func() bool { return gw.Stats().Conns == 4 })

	during := scrape(t, url)
	for _, c := range []*websocket.Conn{simple, full, echo, dave, erin} {
		_ = c.Close(websocket.StatusNormalClosure, "") // counted below
		l.readUntilClosed(c)
	}
	gatewaytest.WaitFor(t, "every connection closed", func() bool { st := gw.Stats(); return st.Conns == 0 && st.EchoConns == 0 })
	after := scrape(t, url)

	checkDocumented(t, before, during1, during, after)
}

// refusals makes one handshake of each refused kind, and more for 429 and
// 503, which need a bucket emptied or the connection limit reached.
func (l *load) refusals() {
	t := l.t
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, l.gw.URL+"/ws?user=x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Real-IP", l.ip())
	resp, err := http.DefaultClient.Do(req) // no upgrade headers: the handshake itself fails
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 4 {
		t.Errorf("GET /ws without upgrade: got %d, want 4xx", resp.StatusCode)
	}
	if _, status := l.dial("/ws", nil, nil); status != http.StatusUnauthorized {
		t.Errorf("no user: got %d, want 401", status)
	}
	if _, status := l.dial("/ws?user=x", nil, http.Header{"Origin": {"http://evil.example"}}); status != http.StatusForbidden {
		t.Errorf("foreign origin: got %d, want 403", status)
	}
	l.dialUntil("/ws?user=y", http.StatusTooManyRequests, "1.2.3.4", 10)
	l.dialUntil("/ws?user=z", http.StatusServiceUnavailable, "", 30)
	l.raw("GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 32<<10)+"\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge)
	l.raw("GET /ws HTTP/1.1\r\n\r\n", http.StatusBadRequest) // no Host
}

// raw sends req on a connection of its own and checks net/http's answer.
func (l *load) raw(req string, status int) {
	l.t.Helper()
	c, err := net.Dial("tcp", l.gw.Addr)
	if err != nil {
		l.t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a hang shows as an error
	_, _ = io.WriteString(c, req)                       // the answer tells
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != status {
		l.t.Errorf("raw request: got %v, %v; want %d", resp, err, status)
	}
}

// dialUntil dials until a handshake gets status, at most tries times, from
// ip ("" = a fresh one each time), and drops the connections it opened.
func (l *load) dialUntil(path string, status int, ip string, tries int) {
	l.t.Helper()
	var opened []*websocket.Conn
	defer func() {
		for _, c := range opened {
			_ = c.CloseNow() // a drop without a close frame: 1006
		}
	}()
	for range tries {
		h := http.Header{}
		if ip != "" {
			h.Set("X-Real-IP", ip)
		}
		c, got := l.dial(path, nil, h)
		if got == status {
			return
		}
		if c != nil {
			opened = append(opened, c)
		}
	}
	l.t.Errorf("no HTTP %d in %d handshakes to %s", status, tries, path)
}

// flood sends faster than MessageRate until the gateway closes with 4002.
func (l *load) flood() {
	l.t.Helper()
	c := l.mustDial("/ws?user=flood")
	msg := wire.AppendSimple(nil, 999, nil)
	ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.Timeout)
	defer cancel()
	for range 1000 {
		if c.Write(ctx, websocket.BinaryMessage, msg) != nil {
			break // closed
		}
	}
	if code := l.readUntilClosed(c); code != int(wire.CloseRateLimited) {
		l.t.Errorf("flood: closed with %d, want 4002", code)
	}
}

// slowConsumer pushes to a client that never reads until the gateway
// closes it with 4000.
func (l *load) slowConsumer() {
	l.t.Helper()
	raw := l.rawUpgrade("/ws?user=slow")
	gw := l.gw
	before := gw.Stats().SlowConsumers
	payload := make([]byte, 32<<10)
	deadline := time.Now().Add(gatewaytest.Timeout)
	for gw.Stats().SlowConsumers == before {
		if time.Now().After(deadline) {
			l.t.Fatalf("no slow-consumer close within %v", gatewaytest.Timeout)
		}
		if _, err := gw.Push(context.Background(), wsgate.Target{User: "slow"}, 200, payload); err != nil {
			l.t.Fatal(err)
		}
	}
	_ = raw.Close() // the gateway's close frame cannot get through a full queue: drop it
}

// documented returns the wsgate_* metric names docs/METRICS.md lists in its
// tables.
func documented(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(wsgate_[a-z_]+)`").FindAllSubmatch(b, -1) {
		names = append(names, string(m[1]))
	}
	return names
}

// checkDocumented checks that every documented metric is exported and
// moved during the load, and that nothing undocumented is exported.
func checkDocumented(t *testing.T, before, open, during, after samples) {
	t.Helper()
	type move struct {
		series   string
		from, to samples
	}
	grew := func(series string) move { return move{series, before, during} }
	gauge := func(series string) []move { return []move{{series, before, open}, {series, after, open}} }
	kinds := func(name string) []move {
		var ms []move
		for _, k := range []string{"conn", "user", "topic", "all"} {
			ms = append(ms, grew(name+`{target="`+k+`"}`))
		}
		return ms
	}
	want := map[string][]move{
		"wsgate_connections": append(append(append(
			gauge(`wsgate_connections{endpoint="ws",protocol="simple"}`),
			gauge(`wsgate_connections{endpoint="ws",protocol="wsgate.v1"}`)...),
			gauge(`wsgate_connections{endpoint="ws",protocol="wsgate.v1.json"}`)...),
			gauge(`wsgate_connections{endpoint="echo",protocol=""}`)...),
		"wsgate_users":  gauge(`wsgate_users{}`),
		"wsgate_topics": {{`wsgate_topics{}`, before, during}, {`wsgate_topics{}`, after, during}},
		"wsgate_handshakes_total": {
			grew(`wsgate_handshakes_total{status="101"}`), grew(`wsgate_handshakes_total{status="400"}`),
			grew(`wsgate_handshakes_total{status="401"}`), grew(`wsgate_handshakes_total{status="403"}`),
			grew(`wsgate_handshakes_total{status="429"}`), grew(`wsgate_handshakes_total{status="503"}`),
		},
		"wsgate_http_rejections_total": {
			grew(`wsgate_http_rejections_total{reason="headers_too_large"}`), grew(`wsgate_http_rejections_total{reason="bad_request"}`),
		},
		"wsgate_closes_total": {
			grew(`wsgate_closes_total{code="1009"}`), grew(`wsgate_closes_total{code="4000"}`),
			grew(`wsgate_closes_total{code="4002"}`), grew(`wsgate_closes_total{code="1006"}`),
			{`wsgate_closes_total{code="1000"}`, during, after},
		},
		"wsgate_requests_total": {
			grew(`wsgate_requests_total{action="150"}`), grew(`wsgate_requests_total{action="151"}`),
			grew(`wsgate_requests_total{action="1"}`), grew(`wsgate_requests_total{action="other"}`),
			grew(`wsgate_requests_total{action="152"}`),
		},
		"wsgate_handler_duration_seconds": {
			grew(`wsgate_handler_duration_seconds_count{action="150"}`), grew(`wsgate_handler_duration_seconds_count{action="151"}`),
			grew(`wsgate_handler_duration_seconds_count{action="152"}`),
		},
		"wsgate_handler_errors_total":       {grew(`wsgate_handler_errors_total{}`)},
		"wsgate_panics_total":               {grew(`wsgate_panics_total{}`)},
		"wsgate_pushes_total":               kinds("wsgate_pushes_total"),
		"wsgate_push_deliveries_total":      kinds("wsgate_push_deliveries_total"),
		"wsgate_push_duration_seconds":      kinds("wsgate_push_duration_seconds_count"),
		"wsgate_slow_consumer_closes_total": {grew(`wsgate_slow_consumer_closes_total{}`)},
		"wsgate_rate_limited_closes_total":  {grew(`wsgate_rate_limited_closes_total{}`)},
		"wsgate_resumes_total":              {grew(`wsgate_resumes_total{}`)},
		"wsgate_replayed_pushes_total":      {grew(`wsgate_replayed_pushes_total{}`)},
		"wsgate_lost_notices_total":         {grew(`wsgate_lost_notices_total{}`)},
		"wsgate_broker_duration_seconds": {
			grew(`wsgate_broker_duration_seconds_count{op="publish"}`), grew(`wsgate_broker_duration_seconds_count{op="history"}`),
			grew(`wsgate_broker_duration_seconds_count{op="cursor"}`),
		},
		"wsgate_broker_errors_total": nil, // the in-memory broker never fails: TestBrokerErrors
	}
	docs := documented(t)
	if len(docs) < len(want) {
		t.Errorf("docs/METRICS.md lists %d wsgate_* metrics, want at least %d: %v", len(docs), len(want), docs)
	}
	for _, name := range docs {
		moves, ok := want[name]
		if !ok {
			t.Errorf("%s is documented but this test does not check it", name)
			continue
		}
		for _, m := range moves {
			from, okFrom := m.from[m.series]
			to, okTo := m.to[m.series]
			if !okFrom || !okTo || !(to > from) {
				t.Errorf("%s: got %v (present %v) then %v (present %v), want it to grow", m.series, from, okFrom, to, okTo)
			}
		}
	}
	for name := range during.families() {
		if strings.HasPrefix(name, "wsgate_") && !contains(docs, name) {
			t.Errorf("%s is exported but not documented in docs/METRICS.md", name)
		}
	}
	for _, series := range []string{"go_goroutines{}", "process_open_fds{}", "process_cpu_seconds_total{}"} {
		if _, ok := during[series]; !ok {
			t.Errorf("standard series %s missing from the scrape", series)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestDashboardUsesDocumentedMetrics: the Grafana dashboard queries only
// metrics that exist, and shows every documented one.
func TestDashboardUsesDocumentedMetrics(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/wsgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/wsgate.json: %v", err)
	}
	docs := documented(t)
	used := map[string]bool{}
	name := regexp.MustCompile(`\bwsgate_[a-z_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(m, "_bucket")
				used[base] = true
				if !contains(docs, base) {
					t.Errorf("panel %q queries %s, which docs/METRICS.md does not list", p.Title, m)
				}
			}
		}
	}
	for _, d := range docs {
		if !used[d] {
			t.Errorf("%s is documented but no dashboard panel shows it", d)
		}
	}
}

// TestBrokerErrors: a broker that cannot be reached shows in
// wsgate_broker_errors_total, by operation.
func TestBrokerErrors(t *testing.T) {
	b, err := redisbroker.New(redisbroker.Options{URL: "redis://127.0.0.1:1/0"}) // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }() // never connected
	srv, err := wsgate.New(wsgate.Config{InsecureNoAuth: true, Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Publish(context.Background(), wsgate.Target{User: "u"}, 120, nil); !errors.Is(err, wsgate.ErrUnavailable) {
		t.Fatalf("Publish: got %v, want ErrUnavailable", err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.New(srv))
	got, err := testutil.GatherAndCount(reg, "wsgate_broker_errors_total")
	if err != nil || got != 4 {
		t.Fatalf("wsgate_broker_errors_total: %d series, %v; want 4", got, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP wsgate_broker_errors_total Broker calls that failed, by operation (Redis unreachable or refusing).
# TYPE wsgate_broker_errors_total counter
wsgate_broker_errors_total{op="cursor"} 0
wsgate_broker_errors_total{op="history"} 0
wsgate_broker_errors_total{op="publish"} 1
wsgate_broker_errors_total{op="status"} 0
`), "wsgate_broker_errors_total"); err != nil {
		t.Error(err)
	}
}
