package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json), including the
// build-output/build-fail events that go test emits for compile errors.
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
	Elapsed    float64
}

// skip is one skipped test and the lines it logged (its reason).
type skip struct {
	pkg, test string
	reason    []string
}

// summary is what the run amounted to.
type summary struct {
	passed, failed, skipped int
	pkgOK, pkgNoTests       int
	pkgFailed               []string
	skips                   []skip
}

// ok reports whether the run passed: nothing failed and some test passed
// (a run that tests nothing is not a green run).
func (s *summary) ok() bool {
	return s.failed == 0 && len(s.pkgFailed) == 0 && s.passed > 0
}

// reporter buffers each running test's output until its result is known.
type reporter struct {
	w       io.Writer
	sum     summary
	testOut map[string][]string // package + "\x00" + test → output lines
	pkgOut  map[string][]string // package-level output lines
}

// report reads `go test -json` from r, writes the human report to w and
// returns the totals. It fails only if r cannot be read.
func report(r io.Reader, w io.Writer) (*summary, error) {
	rp := &reporter{w: w, testOut: map[string][]string{}, pkgOut: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		rp.line(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		return &rp.sum, fmt.Errorf("read go test output: %w", err)
	}
	rp.finish()
	return &rp.sum, nil
}

func (rp *reporter) line(b []byte) {
	var ev event
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &ev) != nil {
		fmt.Fprintf(rp.w, "%s\n", b) // go's own stderr, merged into the stream
		return
	}
	switch {
	case ev.Action == "build-output":
		fmt.Fprint(rp.w, ev.Output)
	case ev.Action == "output" && ev.Test != "":
		k := key(ev.Package, ev.Test)
		rp.testOut[k] = append(rp.testOut[k], ev.Output)
	case ev.Action == "output":
		rp.pkgOut[ev.Package] = append(rp.pkgOut[ev.Package], ev.Output)
	case ev.Test != "":
		rp.testResult(ev)
	default:
		rp.pkgResult(ev)
	}
}

func key(pkg, test string) string { return pkg + "\x00" + test }

func (rp *reporter) testResult(ev event) {
	k := key(ev.Package, ev.Test)
	out := rp.testOut[k]
	switch ev.Action {
	case "pass":
		rp.sum.passed++
	case "fail":
		rp.sum.failed++
		rp.printTestOutput(out)
	case "skip":
		rp.sum.skipped++
		rp.sum.skips = append(rp.sum.skips, skip{pkg: ev.Package, test: ev.Test, reason: logged(out)})
	default:
		return // run, pause, cont: the test is still going
	}
	delete(rp.testOut, k)
}

// printTestOutput prints a failed test's output without the === RUN/PAUSE/CONT
// lines that only -v shows.
func (rp *reporter) printTestOutput(out []string) {
	for _, l := range out {
		if !strings.HasPrefix(l, "=== ") {
			fmt.Fprint(rp.w, l)
		}
	}
}

// logged returns what a test logged: its output minus the framing lines.
func logged(out []string) []string {
	var r []string
	for _, l := range out {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		r = append(r, t)
	}
	return r
}

func (rp *reporter) pkgResult(ev event) {
	switch ev.Action {
	case "pass":
		rp.sum.pkgOK++
	case "fail":
		rp.sum.pkgFailed = append(rp.sum.pkgFailed, ev.Package)
		rp.printUnfinished(ev.Package) // e.g. the test that was running at a panic or timeout
	case "skip":
		rp.sum.pkgNoTests++
	default:
		return // start
	}
	for _, l := range rp.pkgOut[ev.Package] {
		if t := strings.TrimSpace(l); t != "PASS" {
			fmt.Fprint(rp.w, l)
		}
	}
	delete(rp.pkgOut, ev.Package)
}

// printUnfinished prints the output of tests of pkg that never reported a result.
func (rp *reporter) printUnfinished(pkg string) {
	var keys []string
	for k := range rp.testOut {
		if strings.HasPrefix(k, pkg+"\x00") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		rp.printTestOutput(rp.testOut[k])
		delete(rp.testOut, k)
	}
}

// finish prints the skipped tests and the closing lines.
func (rp *reporter) finish() {
	for pkg := range rp.pkgOut { // output of a package that never reported (killed)
		for _, l := range rp.pkgOut[pkg] {
			fmt.Fprint(rp.w, l)
		}
	}
	s := &rp.sum
	fmt.Fprintf(rp.w, "\n==== go test summary ====\n")
	if len(s.skips) > 0 {
		fmt.Fprintf(rp.w, "skipped tests (%d):\n", len(s.skips))
		for _, sk := range s.skips {
			fmt.Fprintf(rp.w, "  SKIP %s %s: %s\n", sk.pkg, sk.test, strings.Join(sk.reason, " | "))
		}
	}
	fmt.Fprintf(rp.w, "packages: %d ok, %d failed, %d without tests\n", s.pkgOK, len(s.pkgFailed), s.pkgNoTests)
	for _, p := range s.pkgFailed {
		fmt.Fprintf(rp.w, "  FAIL %s\n", p)
	}
	if s.passed == 0 {
		fmt.Fprintf(rp.w, "no test passed: that is a failure, not a green run\n")
	}
	fmt.Fprintf(rp.w, "tests: %d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
}
