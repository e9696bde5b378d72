#!/usr/bin/env bash
# bench/run.sh — run every "wsgate bench" scenario against wsgate and the
# gorilla baseline (bench/baseline), interleaved, for several rounds, and
# write the medians and ratios to bench/RESULTS.md.
#
#   bench/run.sh                    # ROUNDS=7, about 7 minutes on 2 cores
#   ROUNDS=1 QUICK=1 bench/run.sh   # a smoke test with small loads, ~1 minute
#
# Environment:
#   ROUNDS   rounds of every scenario on both servers (default 7)
#   QUICK=1  small loads (for checking the script, not for numbers)
#   OUT      where to write the results (default bench/RESULTS.md); the part
#            of an existing file after the line "<!-- notes -->" is kept
#   KEEP=1   keep the temporary directory (binaries, logs, raw JSON lines)
#
# Every server runs fresh for each scenario (so idle memory starts from an
# empty process) as a child of this script; the load generator is a separate
# process. Each round alternates which server goes first. Everything this
# script starts is stopped when it exits, also on Ctrl-C.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
OUT=${OUT:-bench/RESULTS.md}
API_KEY=bench-$RANDOM$RANDOM

if [[ -n "${QUICK:-}" ]]; then
	IDLE_N=2000 FANOUT_N=1000 FANOUT_REPEATS=10 RPC_DURATION=2s CONNECT_N=2000
else
	IDLE_N=18000 FANOUT_N=10000 FANOUT_REPEATS=30 RPC_DURATION=10s CONNECT_N=15000
fi
RPC_CONNS=50

TMP=$(mktemp -d /tmp/wsgate-bench.XXXXXX)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]:-}"; do
		[[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]:-}"; do
		[[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
	done
	if [[ -z "${KEEP:-}" ]]; then rm -rf "$TMP"; else echo "kept $TMP" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

log "building into $TMP"
go build -o "$TMP/wsgate" ./cmd/wsgate
go build -o "$TMP/baseline" ./bench/baseline
if ! "$TMP/wsgate" bench help >/dev/null 2>&1; then
	echo "run.sh: this wsgate binary has no 'bench' command (cmd/wsgate/main.go must dispatch it to runBench)" >&2
	exit 1
fi

# start_server NAME: starts a fresh server on a free loopback port and sets
# SERVER_PID and SERVER_ADDR (host:port).
start_server() {
	local name=$1 logf="$TMP/$1.$RANDOM.log"
	case $name in
	wsgate)
		"$TMP/wsgate" serve --addr 127.0.0.1:0 --insecure-no-auth --demo --api-key "$API_KEY" \
			--message-rate -1 --handshake-rate -1 --log-level warn >"$logf" 2>&1 &
		;;
	baseline)
		"$TMP/baseline" -addr 127.0.0.1:0 >"$logf" 2>&1 &
		;;
	esac
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	SERVER_ADDR=""
	local i
	for ((i = 0; i < 200; i++)); do
		SERVER_ADDR=$(grep -s -o -m1 'listening on [a-z:/]*127\.0\.0\.1:[0-9]*' "$logf" | grep -o '127\.0\.0\.1:[0-9]*' || true)
		[[ -n "$SERVER_ADDR" ]] && break
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [[ -z "$SERVER_ADDR" ]]; then
		echo "run.sh: $name did not start:" >&2
		cat "$logf" >&2
		exit 1
	fi
	sleep 0.5 # let the runtime settle before the first sample
}

# stop_server: SIGTERM, then SIGKILL if it has not exited within 15 s.
stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	local i
	for ((i = 0; i < 150; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	PIDS=() # one server at a time: nothing else of ours is left to stop
}

# scenario_args SCENARIO: the load of one scenario.
scenario_args() {
	case $1 in
	idle) echo "--n $IDLE_N --conc 100 --settle 3s" ;;
	fanout) echo "--n $FANOUT_N --conc 100 --repeats $FANOUT_REPEATS --warmup 3 --size 64 --api-key $API_KEY" ;;
	rpc) echo "--conns $RPC_CONNS --window 1 --size 64 --warmup 1s --duration $RPC_DURATION" ;;
	connect) echo "--n $CONNECT_N --conc 32" ;;
	esac
}

RESULTS="$TMP/results.jsonl"
FAILED=()
START=$(date +%s)
for ((round = 1; round <= ROUNDS; round++)); do
	if ((round % 2)); then order=(wsgate baseline); else order=(baseline wsgate); fi
	for scenario in idle fanout rpc connect; do
		for server in "${order[@]}"; do
			start_server "$server"
			log "round $round/$ROUNDS: $scenario on $server ($SERVER_ADDR, pid $SERVER_PID)"
			# shellcheck disable=SC2046 # word splitting of the scenario flags is intended
			if ! "$TMP/wsgate" bench "$scenario" $(scenario_args "$scenario") \
				--url "ws://$SERVER_ADDR/ws" --server-pid "$SERVER_PID" --label "$server" \
				--round "$round" --json "$RESULTS" --progress 5s --timeout 5m >"$TMP/last.txt"; then
				FAILED+=("round $round $scenario $server")
				log "FAILED: round $round $scenario on $server"
			fi
			stop_server
		done
	done
done
log "pushallocs (in-process)"
"$TMP/wsgate" bench pushallocs --json "$RESULTS" --progress 0 >"$TMP/last.txt" || FAILED+=("pushallocs")
ELAPSED=$(($(date +%s) - START))

NOTES=""
if [[ -f "$OUT" ]] && grep -q '^<!-- notes -->' "$OUT"; then
	NOTES=$(sed -n '/^<!-- notes -->/,$p' "$OUT")
fi
{
	echo "# wsgate bench results"
	echo
	echo "Written by \`bench/run.sh\` on $(date -u +%Y-%m-%d) ($ROUNDS rounds${QUICK:+, QUICK loads}, ${ELAPSED}s)."
	echo "Every figure is the median over the rounds; ratios are wsgate / baseline, measured in the same run."
	echo
	echo "## Machine"
	echo
	echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores (shared by server and load generator)"
	echo "- memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); kernel $(uname -r); $(go version | cut -d' ' -f3-)"
	echo "- open files per process: $(ulimit -n); loopback only"
	echo
	echo "## Setup"
	echo
	echo "- wsgate: \`wsgate serve --insecure-no-auth --demo --api-key K --message-rate -1 --handshake-rate -1\`"
	echo "  (reactor mode, the default on Linux). **Authentication is off** for the benchmark: every"
	echo "  connection is anonymous; with JWT auth each handshake would also verify a token."
	echo "  The rate limits are off because the load comes from one IP at rates no single client"
	echo "  should have; everything else (ping every 30 s, send queues, MaxHandlers) is the default."
	echo "- baseline: \`go run ./bench/baseline\` — the gorilla/websocket hub (see bench/README.md)."
	echo "- load: \`wsgate bench\` in its own process, event-mode client connections on one"
	echo "  \`websocket.Dialer\` (epoll reactor). Simple form on \`/ws\` for both servers: binary"
	echo "  \`uint32 action\` + payload; requests use action 100 (echo), pushes action 120."
	echo "- a fresh server process for every scenario and round; server RSS from \`/proc/PID/status\`"
	echo "  (VmRSS), server CPU from \`/proc/PID/stat\` (utime+stime, all threads)."
	echo
	echo "| scenario | load |"
	echo "|---|---|"
	for scenario in idle fanout rpc connect; do
		echo "| $scenario | \`wsgate bench $scenario $(scenario_args "$scenario" | sed "s/$API_KEY/K/")\` |"
	done
	echo "| pushallocs | \`wsgate bench pushallocs\`: the gateway library in-process, raw clients that never read; allocations per broadcast at 100 and 2,000 recipients, the slope is per recipient |"
	echo
	if ((${#FAILED[@]})); then
		echo "**Failed runs (missing from the medians):** ${FAILED[*]}"
		echo
	fi
	echo "## Reading the figures"
	echo
	echo "- idle \`rss_per_conn\`: (RSS with N idle connections − RSS before the first) / N, sampled 3 s"
	echo "  after every connection sent one request; \`alive\` counts the connections that still answer"
	echo "  a second request after the sample."
	echo "- fanout \`p50/p99/max\`: from just before the HTTP push request to the arrival of the push at"
	echo "  the last of N connections (arrivals are time-stamped as they happen); \`api_call_p50\` is"
	echo "  the HTTP call alone; \`missed\` counts pushes that never arrived."
	echo "- rpc: one request in flight per connection; \`msgs_per_cpu_s\` = replies / server CPU seconds"
	echo "  over the same window — the fair figure when client and server share two cores."
	echo "- connect: each connection is dropped as soon as its handshake completes."
	echo
	"$TMP/wsgate" bench report --servers wsgate,baseline --base baseline "$RESULTS"
	if [[ -n "$NOTES" ]]; then echo "$NOTES"; fi
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT in ${ELAPSED}s"
