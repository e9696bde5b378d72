package loadgen

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Better says which direction of a metric is an improvement.
type Better string

const (
	Lower  Better = "lower"
	Higher Better = "higher"
	Info   Better = "" // context, not a score (counts, absolute sizes)
)

// Metric is one measured figure of a run.
type Metric struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Better Better  `json:"better,omitempty"`
}

// Result is what one scenario run measured. "wsgate bench --json" writes
// one per line; "wsgate bench report" reads them back.
type Result struct {
	Scenario string   `json:"scenario"`
	Server   string   `json:"server"`
	Round    int      `json:"round,omitempty"`
	Params   string   `json:"params"`
	Metrics  []Metric `json:"metrics"`
	Errors   int64    `json:"errors"`
	Elapsed  float64  `json:"elapsed_s"`
}

// Metric returns the value of the named metric.
func (r *Result) Metric(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

func (r *Result) add(name string, v float64, unit string, b Better) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit, Better: b})
}

func (r *Result) addDuration(name string, d time.Duration, b Better) {
	r.add(name, float64(d)/float64(time.Millisecond), "ms", b)
}

// WriteTable prints r as the summary table "wsgate bench" ends with.
func WriteTable(w io.Writer, r Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s against %s (%s), %.1fs, %d errors\n", r.Scenario, r.Server, r.Params, r.Elapsed, r.Errors)
	fmt.Fprintf(tw, "  metric\tvalue\tunit\n")
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", m.Name, formatValue(m.Value), m.Unit)
	}
	return tw.Flush()
}

// formatValue prints v with about four significant digits; whole numbers
// (counts) without decimals.
func formatValue(v float64) string {
	switch a := abs(v); {
	case a == 0:
		return "0"
	case a >= 1000, a < 1e15 && v == float64(int64(v)):
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
