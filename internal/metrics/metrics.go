// Package metrics exports a gateway's Stats as Prometheus metrics.
//
// The library keeps its own counters and fixed-bucket histograms
// (wsgate.Stats) and does not link Prometheus; the Collector here reads
// Stats once per scrape and turns it into const metrics, so a scrape costs
// the gateway one Stats call and the hot paths nothing. Every label comes
// from a small closed set (endpoint, protocol form, close code, registered
// action, target kind, handshake outcome): no user or connection ids.
// docs/METRICS.md documents each metric; a test checks that the two agree.
package metrics

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/wire"
)

// Source is what the Collector reads: *wsgate.Server.
type Source interface {
	Stats() wsgate.Stats
}

// Outcome is one handshake outcome and how many handshakes had it.
type Outcome struct {
	Status string // the HTTP status: "101" accepted, "400", "401", "403", "429", "503"
	Name   string // accepted, bad_request, unauthorized, forbidden, rate_limited, unavailable
	Count  uint64
}

// Handshakes maps st onto the handshake outcomes of
// wsgate_handshakes_total and of the admin view.
//
// When Stats gains Handshakes (wsgate.HandshakeStats{Accepted, BadRequest,
// Unauthorized, Forbidden, RateLimited, Unavailable}), this is the one
// place to change: read those six fields instead of Accepted and Rejected.
func Handshakes(st *wsgate.Stats) []Outcome {
	return []Outcome{
		{"101", "accepted", st.Handshakes.Accepted},
		{"400", "bad_request", st.Handshakes.BadRequest},
		{"401", "unauthorized", st.Handshakes.Unauthorized},
		{"403", "forbidden", st.Handshakes.Forbidden},
		{"429", "rate_limited", st.Handshakes.RateLimited},
		{"503", "unavailable", st.Handshakes.Unavailable},
	}
}

// Rejection is one reason of wsgate_http_rejections_total and its count.
type Rejection struct {
	Name  string
	Count uint64
}

// HTTPRejections maps st onto the reasons of wsgate_http_rejections_total.
func HTTPRejections(st *wsgate.Stats) []Rejection {
	r := &st.HTTPRejected
	return []Rejection{
		{"pending_limit", r.PendingLimit}, {"per_ip_limit", r.PerIPLimit}, {"out_of_files", r.OutOfFiles},
		{"headers_too_large", r.HeadersTooLarge}, {"bad_request", r.BadRequest},
		{"header_timeout", r.HeaderTimeout}, {"body_timeout", r.BodyTimeout}, {"idle_closed", r.IdleClosed},
	}
}

// Collector is a prometheus.Collector for one gateway.
type Collector struct {
	src Source
}

// New returns the Collector of src.
func New(src Source) *Collector { return &Collector{src: src} }

const ns = "wsgate"

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
}

// The metrics, in the order of docs/METRICS.md.
var (
	descConns       = newDesc("connections", "Open WebSocket connections, by endpoint (ws, echo) and protocol form (simple, wsgate.v1, wsgate.v1.json; empty for echo).", "endpoint", "protocol")
	descUsers       = newDesc("users", "Distinct users with at least one open /ws connection on this node.")
	descTopics      = newDesc("topics", "Topics with at least one subscriber on this node.")
	descHandshakes  = newDesc("handshakes_total", "WebSocket handshakes by outcome: the HTTP status answered (101 accepted on /ws; 400, 401, 403, 429, 503 refused on /ws or /echo).", "status")
	descHTTPRejects = newDesc("http_rejections_total", "Connections and requests refused before any handler saw them, by reason: pending_limit, per_ip_limit, out_of_files (503 before the request was read), headers_too_large (431), bad_request (400 from net/http), header_timeout, body_timeout; idle_closed counts keep-alive connections closed after --http-idle-timeout, not a refusal.", "reason")
	descCloses      = newDesc("closes_total", "Closed /ws connections by close code (whichever side sent it; 1006 dropped without one; \"other\" for codes without their own series).", "code")
	descRequests    = newDesc("requests_total", "Client requests dispatched, by action (registered and system actions; \"other\" for the rest).", "action")
	descHandlerDur  = newDesc("handler_duration_seconds", "Time handler calls took, by action (as wsgate_requests_total; system actions answered inline are not timed).", "action")
	descHandlerErrs = newDesc("handler_errors_total", "Handler calls that failed with an error other than a reply error (answered \"internal error\" or \"timed out\").")
	descPanics      = newDesc("panics_total", "Panics recovered in handlers and in the engine's connection callbacks, each logged with its stack; the connection or request is answered and the gateway keeps serving.")
	descPushes      = newDesc("pushes_total", "Push messages that reached at least one connection on this node, by target kind (conn, user, topic, all); a push to several users counts once per user.", "target")
	descDeliveries  = newDesc("push_deliveries_total", "Connections on this node that had a push queued, by target kind.", "target")
	descPushDur     = newDesc("push_duration_seconds", "Per push message, time from this node starting its delivery until it was written to or queued on the last of its connections here, by target kind.", "target")
	descSlow        = newDesc("slow_consumer_closes_total", "Connections closed with 4000 because their send queue was full.")
	descRateLimited = newDesc("rate_limited_closes_total", "Connections closed with 4002 for sending faster than --message-rate.")
	descResumed     = newDesc("resumes_total", "Connections that resumed from a position they named (full-form clients reconnecting).")
	descReplayed    = newDesc("replayed_pushes_total", "Sequenced pushes sent again from the history to resuming clients.")
	descLost        = newDesc("lost_notices_total", "Notices sent to clients that asked for pushes no longer retained.")
	descBrokerDur   = newDesc("broker_duration_seconds", "Time the broker's calls took, by operation (publish, history, cursor, status): round trips to Redis with --redis.", "op")
	descBrokerErrs  = newDesc("broker_errors_total", "Broker calls that failed, by operation (Redis unreachable or refusing).", "op")
)

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descConns, descUsers, descTopics, descHandshakes, descHTTPRejects, descCloses, descRequests, descHandlerDur,
		descHandlerErrs, descPanics, descPushes, descDeliveries, descPushDur, descSlow, descRateLimited,
		descResumed, descReplayed, descLost, descBrokerDur, descBrokerErrs,
	} {
		ch <- d
	}
}

// Collect reads the gateway's Stats once and sends them as metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- orInvalid(d)(prometheus.NewConstMetric(d, prometheus.GaugeValue, float64(v), labels...))
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- orInvalid(d)(prometheus.NewConstMetric(d, prometheus.CounterValue, float64(v), labels...))
	}
	gauge(descConns, st.Protocols.Simple, "ws", "simple")
	gauge(descConns, st.Protocols.Binary, "ws", "wsgate.v1")
	gauge(descConns, st.Protocols.JSON, "ws", "wsgate.v1.json")
	gauge(descConns, st.EchoConns, "echo", "")
	gauge(descUsers, st.Users)
	gauge(descTopics, st.Topics)
	for _, o := range Handshakes(&st) {
		counter(descHandshakes, o.Count, o.Status)
	}
	for _, r := range HTTPRejections(&st) {
		counter(descHTTPRejects, r.Count, r.Name)
	}
	for _, cc := range st.Closes {
		counter(descCloses, cc.Count, codeLabel(cc.Code))
	}
	for _, a := range st.Actions {
		label := actionLabel(a.Action)
		counter(descRequests, a.Requests, label)
		ch <- histogram(descHandlerDur, &a.Latency, label)
	}
	counter(descHandlerErrs, st.HandlerErrors)
	counter(descPanics, st.Panics)
	for _, k := range []struct {
		name string
		ps   *wsgate.PushStats
	}{{"conn", &st.PushKinds.Conn}, {"user", &st.PushKinds.User}, {"topic", &st.PushKinds.Topic}, {"all", &st.PushKinds.All}} {
		counter(descPushes, k.ps.Messages, k.name)
		counter(descDeliveries, k.ps.Delivered, k.name)
		ch <- histogram(descPushDur, &k.ps.Latency, k.name)
	}
	counter(descSlow, st.SlowConsumers)
	counter(descRateLimited, st.RateLimited)
	counter(descResumed, st.Resumed)
	counter(descReplayed, st.Replayed)
	counter(descLost, st.Lost)
	for _, op := range []struct {
		name string
		op   *wsgate.BrokerOp
	}{{"publish", &st.Broker.Publish}, {"history", &st.Broker.History}, {"cursor", &st.Broker.Cursor}, {"status", &st.Broker.Status}} {
		counter(descBrokerErrs, op.op.Errors, op.name)
		ch <- histogram(descBrokerDur, &op.op.Latency, op.name)
	}
	// Hooks for what Stats does not carry yet (see docs/METRICS.md,
	// "Not yet exported"): Stats.Panics → wsgate_handler_panics_total;
	// the broker's history size and evictions → wsgate_history_*. Each is
	// a desc above, one line in Describe and one or two here.
}

func codeLabel(code int) string {
	if code == 0 {
		return "other"
	}
	return strconv.Itoa(code)
}

func actionLabel(a wire.Action) string {
	if a == 0 {
		return "other"
	}
	return strconv.FormatUint(uint64(a), 10)
}

// histogram converts a wsgate.Histogram to a Prometheus one in seconds.
func histogram(d *prometheus.Desc, h *wsgate.Histogram, labels ...string) prometheus.Metric {
	bounds := wsgate.LatencyBounds()
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range bounds {
		cum += h.Counts[i]
		buckets[b.Seconds()] = cum
	}
	return orInvalid(d)(prometheus.NewConstHistogram(d, cum+h.Counts[len(bounds)], h.Sum.Seconds(), buckets, labels...))
}

// orInvalid passes a metric on, or turns the error of building it (a label
// count that does not match its desc: a bug here) into a metric that fails
// the scrape with that error, instead of a panic.
func orInvalid(d *prometheus.Desc) func(prometheus.Metric, error) prometheus.Metric {
	return func(m prometheus.Metric, err error) prometheus.Metric {
		if err != nil {
			return prometheus.NewInvalidMetric(d, err)
		}
		return m
	}
}

// Handler serves src's metrics together with the Go runtime's and the
// process's (the client library's standard collectors) in the Prometheus
// text format.
func Handler(src Source) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		New(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("wsgate: metrics: %w", err)
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), nil
}
