package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ReadResults reads the JSON lines "wsgate bench --json" writes; blank
// lines are skipped.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var res Result
		if err := json.Unmarshal(b, &res); err != nil {
			return nil, fmt.Errorf("wsgate: bench results line %d: %w", line, err)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("wsgate: bench results: %w", err)
	}
	return out, nil
}

// Goal is a target a metric is held to: an absolute bound, or a bound on
// its ratio to the baseline's median in the same run.
type Goal struct {
	Scenario, Metric string
	Text             string  // how RESULTS.md states it
	Ratio            bool    // bound the ratio server/base instead of the value
	Max              bool    // the value (or ratio) must be ≤ Bound; else ≥ Bound
	Bound            float64 //
}

// Goals are the targets of the benchmark issue.
func Goals() []Goal {
	return []Goal{
		{Scenario: "idle", Metric: "rss_per_conn", Text: "idle: RSS per connection ≤ 1.5 KiB", Max: true, Bound: 1.5},
		{Scenario: "fanout", Metric: "p50", Text: "fanout: time until the last connection has a push ≤ 0.5× baseline", Ratio: true, Max: true, Bound: 0.5},
		{Scenario: "pushallocs", Metric: "allocs_per_recipient", Text: "fanout: allocations per recipient = 0", Max: true, Bound: 0},
		{Scenario: "rpc", Metric: "msgs_per_cpu_s", Text: "rpc: replies per server CPU-second ≥ 1.2× baseline", Ratio: true, Bound: 1.2},
		{Scenario: "connect", Metric: "handshakes_per_s", Text: "connect: handshakes/s ≥ baseline", Ratio: true, Bound: 1},
		// Against Centrifugo (bench/peer/run.sh, issue 13).
		{Scenario: "peer-fanout", Metric: "server_cpu_per_publish", Text: "fanout 10k: server CPU per publish ≤ 0.5× Centrifugo", Ratio: true, Max: true, Bound: 0.5},
		{Scenario: "peer-fanout", Metric: "client_cpu_per_publish", Text: "fanout 10k: load-generator CPU per publish ≤ 1.0× Centrifugo", Ratio: true, Max: true, Bound: 1},
		{Scenario: "peer-fanout", Metric: "p50", Text: "fanout 10k: publish → last delivery p50 ≤ 0.8× Centrifugo", Ratio: true, Max: true, Bound: 0.8},
		{Scenario: "peer-fanout", Metric: "p99", Text: "fanout 10k: publish → last delivery p99 ≤ 0.8× Centrifugo", Ratio: true, Max: true, Bound: 0.8},
		{Scenario: "peer-personal", Metric: "server_cpu_per_push", Text: "personal, history on: server CPU per push ≤ 0.5× Centrifugo", Ratio: true, Max: true, Bound: 0.5},
		{Scenario: "peer-personal-nohist", Metric: "server_cpu_per_push", Text: "personal, history off: server CPU per push ≤ 0.5× Centrifugo", Ratio: true, Max: true, Bound: 0.5},
		{Scenario: "peer-multi", Metric: "server_cpu_per_delivery", Text: "multi-user: server CPU per delivery ≤ 0.5× Centrifugo", Ratio: true, Max: true, Bound: 0.5},
		{Scenario: "peer-connect", Metric: "server_cpu_per_handshake", Text: "connect: server CPU per handshake ≤ 0.5× Centrifugo", Ratio: true, Max: true, Bound: 0.5},
		{Scenario: "peer-idle", Metric: "rss_per_conn", Text: "idle: RSS per connection ≤ 0.05× Centrifugo", Ratio: true, Max: true, Bound: 0.05},
	}
}

// ReportOptions tunes WriteReport.
type ReportOptions struct {
	// Servers in column order; default: the order they first appear.
	Servers []string
	// Base is the server ratios divide by; default the last of Servers.
	Base string
	// Spread adds the lowest and highest round to every median.
	Spread bool
}

// table is the medians of every (scenario, metric, server) of a set of
// results, and the samples behind them.
type table struct {
	servers   []string
	scenarios []string
	metrics   map[string][]Metric // scenario → metrics in first-seen order
	samples   map[[3]string][]float64
	spread    bool // medians show (min–max) too
	byRound   map[[3]string]map[int]float64
}

func newTable(results []Result, servers []string) *table {
	t := &table{servers: servers, metrics: map[string][]Metric{}, samples: map[[3]string][]float64{},
		byRound: map[[3]string]map[int]float64{}}
	for _, r := range results {
		if !slices.Contains(t.servers, r.Server) {
			t.servers = append(t.servers, r.Server)
		}
		if !slices.Contains(t.scenarios, r.Scenario) {
			t.scenarios = append(t.scenarios, r.Scenario)
		}
		for _, m := range r.Metrics {
			if !slices.ContainsFunc(t.metrics[r.Scenario], func(x Metric) bool { return x.Name == m.Name }) {
				t.metrics[r.Scenario] = append(t.metrics[r.Scenario], m)
			}
			k := [3]string{r.Scenario, m.Name, r.Server}
			t.samples[k] = append(t.samples[k], m.Value)
			if t.byRound[k] == nil {
				t.byRound[k] = map[int]float64{}
			}
			t.byRound[k][r.Round] = m.Value
		}
	}
	return t
}

// median of the samples of (scenario, metric, server); false when none.
func (t *table) median(scenario, metric, server string) (float64, bool) {
	s := slices.Clone(t.samples[[3]string{scenario, metric, server}])
	if len(s) == 0 {
		return 0, false
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// WriteReport writes the markdown tables of bench/RESULTS.md: the targets
// with their verdicts, the medians of every metric with the ratio to the
// baseline, and every round.
func WriteReport(w io.Writer, results []Result, o ReportOptions) error {
	t := newTable(results, slices.Clone(o.Servers))
	t.spread = o.Spread
	if len(t.servers) == 0 {
		return fmt.Errorf("wsgate: bench report: no results")
	}
	base := o.Base
	if base == "" {
		base = t.servers[len(t.servers)-1]
	}
	bw := bufio.NewWriter(w)
	fmt.Fprint(bw, "## Targets\n\n")
	t.writeGoals(bw, base)
	fmt.Fprint(bw, "## Every metric (medians)\n\n")
	t.writeMedians(bw, base)
	fmt.Fprint(bw, "## Every round\n\n")
	writeRounds(bw, results, t)
	return bw.Flush()
}

func (t *table) writeGoals(w io.Writer, base string) {
	others := slices.DeleteFunc(slices.Clone(t.servers), func(s string) bool { return s == base })
	if len(others) == 0 {
		return
	}
	srv := others[0]
	fmt.Fprintf(w, "| target | %s | %s | ratio | met |\n|---|--:|--:|--:|:-:|\n", srv, base)
	for _, g := range Goals() {
		v, ok := t.median(g.Scenario, g.Metric, srv)
		if !ok {
			continue
		}
		b, hasBase := t.median(g.Scenario, g.Metric, base)
		ratio, subject := "–", v
		if hasBase && b != 0 {
			ratio = fmt.Sprintf("%.2f×", v/b)
		}
		if g.Ratio {
			if !hasBase || b == 0 {
				continue
			}
			subject = v / b
		}
		met := subject >= g.Bound
		if g.Max {
			met = subject <= g.Bound
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", g.Text, t.cell(g.Scenario, g.Metric, srv), t.cell(g.Scenario, g.Metric, base), ratio, yesNo(met))
	}
	fmt.Fprintln(w)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// cell is a median with its unit, or "–".
func (t *table) cell(scenario, metric, server string) string {
	v, ok := t.median(scenario, metric, server)
	if !ok {
		return "–"
	}
	unit := ""
	for _, m := range t.metrics[scenario] {
		if m.Name == metric && m.Unit != "" {
			unit = " " + m.Unit
		}
	}
	return formatValue(v) + unit
}

func (t *table) writeMedians(w io.Writer, base string) {
	fmt.Fprintf(w, "| scenario | metric | unit | %s |", strings.Join(t.servers, " | "))
	for _, s := range t.servers {
		if s != base {
			fmt.Fprintf(w, " %s / %s |", s, base)
		}
	}
	fmt.Fprintf(w, "\n|---|---|---|%s", strings.Repeat("--:|", len(t.servers)))
	fmt.Fprintf(w, "%s\n", strings.Repeat("--:|", len(t.servers)-1))
	for _, sc := range t.scenarios {
		for _, m := range t.metrics[sc] {
			t.writeMedianRow(w, sc, m, base)
		}
	}
	fmt.Fprintln(w)
}

func (t *table) writeMedianRow(w io.Writer, sc string, m Metric, base string) {
	fmt.Fprintf(w, "| %s | %s | %s |", sc, m.Name, m.Unit)
	for _, s := range t.servers {
		if v, ok := t.median(sc, m.Name, s); ok {
			fmt.Fprintf(w, " %s%s |", formatValue(v), t.minMax(sc, m.Name, s))
		} else {
			fmt.Fprint(w, " – |")
		}
	}
	b, hasBase := t.median(sc, m.Name, base)
	for _, s := range t.servers {
		if s == base {
			continue
		}
		v, ok := t.median(sc, m.Name, s)
		if !ok || !hasBase || b == 0 {
			fmt.Fprint(w, " – |")
			continue
		}
		fmt.Fprintf(w, " %.2f×%s %s |", v/b, t.ratioSpread(sc, m.Name, s, base), arrow(m.Better, v, b))
	}
	fmt.Fprintln(w)
}

// minMax is " (min–max)" of the rounds when the table shows the spread
// and there is more than one round.
func (t *table) minMax(scenario, metric, server string) string {
	s := t.samples[[3]string{scenario, metric, server}]
	if !t.spread || len(s) < 2 {
		return ""
	}
	return fmt.Sprintf(" (%s–%s)", formatValue(slices.Min(s)), formatValue(slices.Max(s)))
}

// ratioSpread is " (min–max)" of the ratios server/base of the rounds
// both ran, when the table shows the spread.
func (t *table) ratioSpread(scenario, metric, server, base string) string {
	a, b := t.byRound[[3]string{scenario, metric, server}], t.byRound[[3]string{scenario, metric, base}]
	var rs []float64
	for round, v := range a {
		if bv, ok := b[round]; ok && bv != 0 {
			rs = append(rs, v/bv)
		}
	}
	if !t.spread || len(rs) < 2 {
		return ""
	}
	return fmt.Sprintf(" (%.2f–%.2f)", slices.Min(rs), slices.Max(rs))
}

// arrow says whether the numerator's value is better or worse than the
// base's, for metrics that have a direction.
func arrow(b Better, v, base float64) string {
	switch {
	case b == Info || v == base:
		return ""
	case (b == Lower) == (v < base):
		return "better"
	default:
		return "worse"
	}
}

// writeRounds lists every result, one table per scenario.
func writeRounds(w io.Writer, results []Result, t *table) {
	for _, sc := range t.scenarios {
		ms := t.metrics[sc]
		fmt.Fprintf(w, "### %s\n\n| round | server | errors |", sc)
		for _, m := range ms {
			fmt.Fprintf(w, " %s |", m.Name)
		}
		fmt.Fprintf(w, "\n|--:|---|--:|%s\n", strings.Repeat("--:|", len(ms)))
		for _, r := range results {
			if r.Scenario != sc {
				continue
			}
			fmt.Fprintf(w, "| %d | %s | %d |", r.Round, r.Server, r.Errors)
			for _, m := range ms {
				if v, ok := r.Metric(m.Name); ok {
					fmt.Fprintf(w, " %s |", formatValue(v))
				} else {
					fmt.Fprint(w, " – |")
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
}
