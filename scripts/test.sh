#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need
# beyond Go (scripts/install-deps.sh), then runs gofmt, `go vet ./...`, staticcheck and
# `go test -race -count=1 -timeout 25m ./...`, and ends with a summary. Exit status is
# non-zero when any step failed.
#
# With CI=true, tests that need an external program (Chromium, node, Python
# websockets, redis-server, nginx) fail when it is missing; without it they
# skip, and the summary lists every skipped test with its reason.
#
# Extra arguments go to `go test`, e.g. ./scripts/test.sh -run TestInterop
set -uo pipefail

cd "$(dirname "$0")/.."

declare -A status
steps=()
work=$(mktemp -d "${TMPDIR:-/tmp}/wsgate-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

banner() { printf '\n==== %s ====\n' "$*"; }

# run NAME CMD...: run a step, record ok/FAILED.
run() {
	local name=$1
	shift
	banner "$name"
	steps+=("$name")
	if "$@"; then
		status[$name]=ok
	else
		status[$name]="FAILED (exit $?)"
	fi
}

go_test() {
	# The reporter is built first so that a broken reporter is not mistaken
	# for failing tests.
	go build -o "$work/testreport" ./scripts/testreport || return
	# -count=1: never report a cached result. The cache cannot see what tests
	# run outside their own binary (interop builds examples/echo and runs node,
	# Python and Chromium), so a cached "ok" could hide a broken engine.
	go test -json -race -count=1 -timeout 25m "$@" ./... 2>&1 | tee "$work/test.json" | "$work/testreport" | tee "$work/report.txt"
	local codes=("${PIPESTATUS[@]}")
	((codes[0] == 0 && codes[2] == 0))
}

# gofmt is part of the house style: an unformatted file fails the run.
gofmt_check() {
	local files
	files=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './interop/node_modules/*'))
	if [[ -n $files ]]; then
		printf 'not gofmt-ed (run gofmt -w on them):\n%s\n' "$files"
		return 1
	else
		echo "all files gofmt-ed"
	fi
}

main() {
	echo "wsgate tests: $(go version), CI=${CI:-unset}"
	run "install-deps" bash ./scripts/install-deps.sh
	if [[ ${status[install-deps]} != ok ]]; then
		echo "install-deps failed: tests that need external programs will skip (or fail under CI=true)"
	fi
	run "gofmt" gofmt_check
	run "go vet" go vet ./...
	# Pinned, fetched through the Go module proxy on first use, then cached.
	run "staticcheck" go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	run "go test" go_test "$@"
	# Without -race: the zero-allocation checks of the hot paths (the race
	# detector makes sync.Pool drop items, so they skip under it) and the
	# slow-consumer test at its full size (2,000 pushes; 500 under -race).
	run "no-race checks" go test -count=1 -run 'Alloc|BufPool|SlowConsumerIsolation' ./...

	banner "scripts/test.sh summary"
	local failed=0 name
	for name in "${steps[@]}"; do
		printf '%-16s %s\n' "$name:" "${status[$name]}"
		[[ ${status[$name]} == ok ]] || failed=1
	done
	if ((failed)); then
		echo "RESULT: FAIL"
	else
		echo "RESULT: PASS"
	fi
	# The count line comes last: CI reads a run's closing line.
	grep -E '^tests: [0-9]+ passed, [0-9]+ failed' "$work/report.txt" 2>/dev/null | tail -n 1
	return "$failed"
}

main "$@"
