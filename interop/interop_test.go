//go:build unix

package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientTimeout bounds one client script; each script also has its own
// watchdog (150 s) and per-case timeouts (20 s).
const clientTimeout = 4 * time.Minute

// client is one third-party WebSocket client script.
type client struct {
	name    string
	require func(t *testing.T)
	argv    func(url string) []string
	// cases lists, per variant ("plain", "deflate"), the case names the
	// script must report as passed. A script that silently drops a case fails.
	cases map[string][]string
}

// commonCases are required of every client in every variant. The sizes are
// the ones the issue asks for: 0 B, both sides of the 7-bit and 16-bit length
// encodings, and 1 MiB.
func commonCases() []string {
	var c []string
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		c = append(c, fmt.Sprintf("text-%d", n), fmt.Sprintf("binary-%d", n))
	}
	return append(c, "text-utf8", "pipelined-200", "close-1000")
}

func with(base []string, extra ...string) []string {
	return append(append([]string(nil), base...), extra...)
}

func clients() []client {
	common := commonCases()
	return []client{
		{
			name:    "node-ws",
			require: func(t *testing.T) { requireNode(t, "ws") },
			argv:    func(url string) []string { return []string{"node", "node_ws_test.mjs", url} },
			cases: map[string][]string{
				"plain":   with(common, "extension-none", "fragmented", "fragmented-utf8-split", "ping-pong"),
				"deflate": with(common, "extension-negotiated", "fragmented", "fragmented-utf8-split", "ping-pong", "server-compresses"),
			},
		},
		{
			name:    "python-websockets",
			require: requirePythonWebsockets,
			argv:    func(url string) []string { return []string{pythonPath, "python_websockets.py", url} },
			cases: map[string][]string{
				"plain":   with(common, "extension-none", "fragmented", "ping-pong"),
				"deflate": with(common, "extension-negotiated", "fragmented", "ping-pong"),
			},
		},
		{
			name: "chromium",
			require: func(t *testing.T) {
				requireFile(t, chromiumPath, "Debian chromium")
				requireNode(t, "playwright-core")
			},
			argv: func(url string) []string { return []string{"node", "chromium.mjs", url} },
			// Chromium always offers permessage-deflate and cannot send pings.
			cases: map[string][]string{"deflate": with(common, "extension-negotiated")},
		},
	}
}

// TestInterop runs every client against the echo example in both engine
// modes. The server is built once and started once per mode; after the
// clients it must report no open connection and exit cleanly on SIGINT.
func TestInterop(t *testing.T) {
	bin := buildEcho(t)
	for _, mode := range []string{"reactor", "blocking"} {
		t.Run(mode, func(t *testing.T) {
			srv := startEcho(t, bin, mode)
			url := "ws://" + srv.addr + "/echo"
			for _, c := range clients() {
				t.Run(c.name, func(t *testing.T) {
					c.require(t)
					runClient(t, c, url)
				})
			}
			srv.waitNoConns(t)
			srv.shutdown(t)
		})
	}
}

// result is one line printed by a client script.
type result struct {
	Client  string `json:"client"`
	Variant string `json:"variant"`
	Case    string `json:"case"`
	OK      bool   `json:"ok"`
	Error   string `json:"error"`
	Detail  string `json:"detail"`
	Summary bool   `json:"summary"`
	Passed  int    `json:"passed"`
	Failed  int    `json:"failed"`
	Fatal   string `json:"fatal"`
}

func runClient(t *testing.T, c client, url string) {
	t.Helper()
	stdout, stderr, err := execClient(c.argv(url))
	if err != nil {
		t.Errorf("%s: got %v, want exit status 0", c.name, err)
	}
	results := parseResults(t, stdout)
	if len(results) == 0 {
		t.Errorf("%s: got no results on stdout:\n%s", c.name, stdout)
	}
	checkResults(t, c, results)
	if t.Failed() && len(stderr) > 0 {
		t.Logf("%s stderr (last 4 KiB):\n%s", c.name, tail(stderr, 4<<10))
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// execClient runs one script in its own process group, so that a timeout kills
// the browser it started too, not only node.
func execClient(argv []string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second // a leftover child holding the pipes must not hang us
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %v: %w", clientTimeout, err)
	}
	return out.Bytes(), errOut.Bytes(), err
}

// parseResults decodes the JSON lines of a script's stdout. Other lines are
// errors: the scripts print nothing else there.
func parseResults(t *testing.T, stdout []byte) []result {
	t.Helper()
	var rs []result
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Errorf("got non-JSON output line %q: %v", line, err)
			continue
		}
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		t.Errorf("reading client output: %v", err)
	}
	return rs
}

// checkResults asserts that every case passed (failures are reported one by
// one above), every required case was run, and the summary line agrees with
// the case lines.
func checkResults(t *testing.T, c client, rs []result) {
	t.Helper()
	reported := map[string]bool{} // variant/case with a result line, passed or not
	var cases, failed int
	var summary *result
	for i, r := range rs {
		switch {
		case r.Fatal != "":
			t.Errorf("%s: fatal: %s", c.name, r.Fatal)
		case r.Summary:
			summary = &rs[i]
		case !r.OK:
			reported[r.Variant+"/"+r.Case] = true
			cases++
			failed++
			t.Errorf("%s %s/%s: %s", c.name, r.Variant, r.Case, r.Error)
		default:
			reported[r.Variant+"/"+r.Case] = true
			cases++
		}
	}
	for variant, names := range c.cases {
		for _, name := range names {
			if !reported[variant+"/"+name] {
				t.Errorf("%s %s/%s: got no result, want one (the script skipped a required case)", c.name, variant, name)
			}
		}
	}
	if summary == nil {
		t.Errorf("%s: got no summary line, want one", c.name)
		return
	}
	if summary.Passed != cases-failed || summary.Failed != failed {
		t.Errorf("%s: got summary %d passed, %d failed; want %d passed, %d failed",
			c.name, summary.Passed, summary.Failed, cases-failed, failed)
	}
	t.Logf("%s: %d cases passed, %d failed", c.name, summary.Passed, summary.Failed)
}
