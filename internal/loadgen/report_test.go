package loadgen

import (
	"bytes"
	"strings"
	"testing"
)

func result(scenario, server string, round int, metrics ...Metric) Result {
	return Result{Scenario: scenario, Server: server, Round: round, Metrics: metrics}
}

func TestWriteReport(t *testing.T) {
	var results []Result
	for round, v := range []struct{ gw, base float64 }{{1.0, 7}, {1.4, 6}, {9, 8}} {
		results = append(results,
			result("idle", "wsgate", round+1, Metric{Name: "rss_per_conn", Value: v.gw, Unit: "KiB", Better: Lower}),
			result("idle", "baseline", round+1, Metric{Name: "rss_per_conn", Value: v.base, Unit: "KiB", Better: Lower}),
			result("rpc", "wsgate", round+1, Metric{Name: "msgs_per_cpu_s", Value: 100, Better: Higher}),
			result("rpc", "baseline", round+1, Metric{Name: "msgs_per_cpu_s", Value: 100, Better: Higher}),
		)
	}
	var buf bytes.Buffer
	if err := WriteReport(&buf, results, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		// medians: wsgate 1.4, baseline 7 → met; rpc ratio 1.00 < 1.2 → not met
		"| idle: RSS per connection ≤ 1.5 KiB | 1.40 KiB | 7 KiB | 0.20× | yes |",
		"| rpc: replies per server CPU-second ≥ 1.2× baseline | 100 | 100 | 1.00× | **no** |",
		"| idle | rss_per_conn | KiB | 1.40 | 7 | 0.20× better |",
		"| 3 | wsgate | 0 | 9 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestReadResults(t *testing.T) {
	in := `{"scenario":"idle","server":"a","metrics":[{"name":"conns","value":3,"unit":""}],"errors":1}

{"scenario":"rpc","server":"b","metrics":[]}
`
	got, err := ReadResults(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Errors != 1 || got[1].Scenario != "rpc" {
		t.Fatalf("got %+v, want two results", got)
	}
	if v, ok := got[0].Metric("conns"); !ok || v != 3 {
		t.Errorf("conns: got %v, %v; want 3, true", v, ok)
	}
	if _, err := ReadResults(strings.NewReader("{bad")); err == nil {
		t.Error("ReadResults of bad JSON: got no error")
	}
}

func TestHoldBadInput(t *testing.T) {
	var out bytes.Buffer
	err := Hold(t.Context(), []string{"--url", "ws://127.0.0.1:1/ws", "--n", "0"}, strings.NewReader("nonsense\n{\"cmd\":\"dance\"}\n"), &out)
	if err != nil {
		t.Fatalf("Hold: %v", err)
	}
	for _, want := range []string{`bad command \"nonsense\"`, `unknown command \"dance\"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := Hold(t.Context(), []string{"--n", "3"}, strings.NewReader(""), &out); err == nil {
		t.Error("Hold without --url: got no error")
	}
}
