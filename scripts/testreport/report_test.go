package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const passingRun = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:1: quiet log\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.01s\n"}
{"Action":"pass","Package":"p"}
`

// A package killed by -timeout: the running test never reports a result.
const timedOutRun = `{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t1.0s\n"}
{"Action":"fail","Package":"p"}
`

func TestReport(t *testing.T) {
	mixed, err := os.ReadFile("testdata/mixed.jsonl")
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	tests := []struct {
		name                    string
		in                      string
		passed, failed, skipped int
		ok                      bool
		want, notWant           []string
	}{
		{
			name: "build failure, failed subtest, skip, no test files, stray stderr",
			in:   string(mixed), passed: 1, failed: 2, skipped: 1,
			want: []string{
				"b/b_test.go:3:28: undefined: undefined", "FAIL\ttj/b [build failed]",
				"a_test.go:5: boom", "--- FAIL: TestFail/sub", "?   \ttj/c\t[no test files]",
				"SKIP tj/a TestSkip: a_test.go:4: !!! loud skip",
				"go: warning: a line that is not JSON",
				"packages: 0 ok, 2 failed, 1 without tests",
				"\ntests: 1 passed, 2 failed, 1 skipped\n",
			},
			notWant: []string{"=== RUN", "a_test.go:3: hello"},
		},
		{
			name: "all pass", in: passingRun, passed: 1, ok: true,
			want:    []string{"ok  \tp\t0.01s", "tests: 1 passed, 0 failed, 0 skipped"},
			notWant: []string{"quiet log", "PASS\n", "=== RUN"},
		},
		{
			name: "timeout", in: timedOutRun,
			want: []string{"panic: test timed out after 1s", "FAIL\tp\t1.0s", "packages: 0 ok, 1 failed"},
		},
		{
			name: "nothing ran", in: "",
			want: []string{"no test passed", "tests: 0 passed, 0 failed, 0 skipped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			sum, err := report(strings.NewReader(tt.in), &out)
			if err != nil {
				t.Fatalf("report: %v", err)
			}
			if sum.passed != tt.passed || sum.failed != tt.failed || sum.skipped != tt.skipped {
				t.Errorf("got %d passed, %d failed, %d skipped; want %d, %d, %d",
					sum.passed, sum.failed, sum.skipped, tt.passed, tt.failed, tt.skipped)
			}
			if sum.ok() != tt.ok {
				t.Errorf("got ok() = %v, want %v", sum.ok(), tt.ok)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q; got:\n%s", w, out.String())
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(out.String(), nw) {
					t.Errorf("output contains %q, want it left out; got:\n%s", nw, out.String())
				}
			}
		})
	}
}
