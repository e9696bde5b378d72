// Command testreport turns `go test -json` on stdin into the short output of a
// plain `go test` run, plus what plain output hides: every skipped test with
// its reason (interop and other real-component tests skip loudly when a tool
// is missing) and a closing count line, "tests: N passed, N failed, N skipped".
//
// It prints a package's "ok" line when the package finishes, the full output
// of every failed test at once, and build errors as they come. Lines on stdin
// that are not JSON (go's own stderr, merged in) are copied through. The exit
// status is 1 when any test or package failed, or when no test passed at all.
//
// Used by scripts/test.sh:
//
//	go test -json ./... 2>&1 | go run ./scripts/testreport
package main

import (
	"fmt"
	"os"
)

func main() {
	sum, err := report(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(2)
	}
	if !sum.ok() {
		os.Exit(1)
	}
}
