package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wsgate/wsgate"
)

// serverPushes reads wsgate's own view of its pushes (GET /api/v1/stats,
// push_kinds): per message, the time from the start of its delivery on the
// node to the return of the write(2) (or the queueing, for a connection
// whose socket buffer was full) on the last of its connections — the
// server's broadcast time without the load generator's share of the
// cores. Centrifugo exposes nothing comparable, so it is wsgate only.
type serverPushes struct {
	cfg     Config
	on      bool
	samples []wsgate.PushKinds
	err     error
}

func newServerPushes(cfg Config, peer Peer) *serverPushes {
	return &serverPushes{cfg: cfg, on: peer == PeerWsgate}
}

// sample reads the push counters once; a failure leaves the figures out
// (it is reported with them, not fatal to the scenario).
func (s *serverPushes) sample(ctx context.Context) {
	if !s.on || s.err != nil {
		return
	}
	k, err := s.read(ctx)
	if err != nil {
		s.err = err
		return
	}
	s.samples = append(s.samples, k)
}

func (s *serverPushes) read(ctx context.Context) (wsgate.PushKinds, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.API+"/api/v1/stats", nil)
	if err != nil {
		return wsgate.PushKinds{}, err
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return wsgate.PushKinds{}, err
	}
	defer func() { _ = resp.Body.Close() }() // read below
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return wsgate.PushKinds{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return wsgate.PushKinds{}, fmt.Errorf("wsgate: bench: stats: %s", resp.Status)
	}
	var st struct {
		PushKinds wsgate.PushKinds `json:"push_kinds"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return wsgate.PushKinds{}, fmt.Errorf("wsgate: bench: stats: %w", err)
	}
	return st.PushKinds, nil
}

// report adds the server-side push time between the first and the last
// sample: its mean, and the upper bounds of the histogram buckets that hold
// the median and the 99th percentile.
func (s *serverPushes) report(res *Result, scenario string) {
	if !s.on {
		return
	}
	if len(s.samples) < 2 {
		return // the stats endpoint did not answer: the figures are missing from the result
	}
	pick := func(k wsgate.PushKinds) wsgate.PushStats {
		if scenario == "personal" || scenario == "multi" {
			return k.User
		}
		return k.Topic
	}
	a, b := pick(s.samples[0]), pick(s.samples[len(s.samples)-1])
	var d wsgate.Histogram
	for i := range d.Counts {
		d.Counts[i] = b.Latency.Counts[i] - a.Latency.Counts[i]
	}
	d.Sum = b.Latency.Sum - a.Latency.Sum
	n := d.Count()
	if n == 0 {
		return
	}
	res.add("server_push_mean", float64(d.Sum)/float64(n)/1e6, "ms", Lower)
	res.add("server_push_p50_le", bucketBound(&d, 0.5), "ms", Info)
	res.add("server_push_p99_le", bucketBound(&d, 0.99), "ms", Info)
}

// bucketBound returns the upper bound, in milliseconds, of the bucket that
// holds quantile q of h; +Inf for the overflow bucket.
func bucketBound(h *wsgate.Histogram, q float64) float64 {
	bounds := wsgate.LatencyBounds()
	want := uint64(q*float64(h.Count()) + 0.999999)
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= want {
			if i < len(bounds) {
				return float64(bounds[i]) / 1e6
			}
			break
		}
	}
	return float64(bounds[len(bounds)-1]) / 1e6 * 10
}
