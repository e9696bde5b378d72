#!/usr/bin/env bash
# bench/peer/run.sh — wsgate against Centrifugo v6, side by side: the same
# scenarios ("wsgate bench peer"), each server over its own protocol, with
# the same JWTs (one HS256 secret) and the same 64-byte JSON payload,
# interleaved for several rounds, a fresh server for every run.
#
#   bench/peer/run.sh                           # ROUNDS=5, every scenario (~25 min on 2 cores)
#   ROUNDS=1 QUICK=1 bench/peer/run.sh          # smoke test with small loads (~3 min)
#   SCENARIOS="fanout personal" bench/peer/run.sh
#
# Environment:
#   ROUNDS      rounds of every scenario on both servers (default 5)
#   SCENARIOS   any of: idle idle-lowmem connect personal personal-nohist multi
#               fanout busy (default: all, in that order); idle-lowmem is idle
#               with Centrifugo's documented memory options (websocket
#               read/write buffers of 512 bytes, a write buffer pool)
#   QUICK=1     small loads (for checking the script, not for numbers)
#   PROCS       worker processes that hold the client connections (default 2)
#   CENTRIFUGO  a centrifugo binary to use instead of installing v6.9.1
#   OUT         markdown report (default: $TMP/report.md, printed at the end)
#   KEEP=1      keep the temporary directory (binaries, configs, logs, JSON lines)
#   NO_FLOOR=1  skip the floor measurement at the end (bench/peer/floor)
#   FLOOR_SERVER=1  also run connect, personal and personal-nohist against a
#               third server, "floor" (bench/peer/floor/httpfloor: net/http,
#               the same JWT verification, one write(2) per push, nothing
#               else), the floor under those scenarios; the servers' order
#               then rotates every round
#
# Centrifugo is installed with "go install github.com/centrifugal/centrifugo/v6@v6.9.1"
# (through the Go module proxy) into a temporary GOBIN. Both servers run
# with the in-memory engine on 127.0.0.1; clients dial from their own
# loopback source addresses (127.1.x.y). Not run by CI. Everything this
# script starts is stopped when it exits, also on Ctrl-C; every run has a
# timeout.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-5}
SCENARIOS=${SCENARIOS:-idle idle-lowmem connect personal personal-nohist multi fanout busy}
PROCS=${PROCS:-2}
SECRET=peer-secret-$RANDOM$RANDOM$RANDOM$RANDOM
API_KEY=peer-key-$RANDOM$RANDOM

if [[ -n "${QUICK:-}" ]]; then
	N=1000 IDLE_N=1000 CONNECT_N=500 USERS=100 REPEATS=5 TOPICS=100 BUSY_RATE=200
else
	N=10000 IDLE_N=18000 CONNECT_N=5000 USERS=1000 REPEATS=30 TOPICS=1000 BUSY_RATE=1000
fi

TMP=$(mktemp -d /tmp/wsgate-peer.XXXXXX)
OUT=${OUT:-$TMP/report.md}
SERVER_PID=""
cleanup() {
	if [[ -n "$SERVER_PID" ]]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	if [[ -z "${KEEP:-}" ]]; then rm -rf "$TMP"; else echo "kept $TMP" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

log "building wsgate into $TMP"
go build -o "$TMP/wsgate" ./cmd/wsgate
if [[ -n "${FLOOR_SERVER:-}" ]]; then
	go build -o "$TMP/httpfloor" ./bench/peer/floor/httpfloor
fi
if [[ -z "${CENTRIFUGO:-}" ]]; then
	log "installing centrifugo v6.9.1 into $TMP/gobin (go install; a few minutes the first time)"
	GOBIN="$TMP/gobin" GOFLAGS=-mod=mod go install github.com/centrifugal/centrifugo/v6@v6.9.1
	CENTRIFUGO=$TMP/gobin/centrifugo
fi
"$CENTRIFUGO" version >&2

# free_port prints a TCP port nobody listens on (Centrifugo needs a fixed one),
# below the ephemeral range (32768 and up by default): tens of thousands of
# client connections hold ports there without listening, and Centrifugo's
# bind to one of them failed ("address already in use").
free_port() {
	local p
	for ((;;)); do
		p=$((20000 + RANDOM % 12000))
		if ! ss -Hltn "sport = :$p" | grep -q .; then
			echo "$p"
			return
		fi
	done
}

# centrifugo_config HISTORY PORT [lowmem]: a config comparable to wsgate's defaults:
# memory engine; every user subscribed server-side to "personal:<user>"
# (wsgate: pushes to a user), with history like wsgate's (256 pushes, 24 h,
# recovery on reconnect) when HISTORY is "on"; any other channel open to
# authenticated clients (wsgate: topics); tokens with the same secret; the
# HTTP API with a key. "lowmem" adds the WebSocket options Centrifugo's
# documentation gives for less memory per connection.
centrifugo_config() {
	local personal='{"name": "personal"}' websocket='{}'
	if [[ ${3:-} == lowmem ]]; then
		websocket='{"read_buffer_size": 512, "write_buffer_size": 512, "use_write_buffer_pool": true}'
	fi
	if [[ $1 == on ]]; then
		personal='{"name": "personal", "history_size": 256, "history_ttl": "24h", "force_recovery": true}'
	fi
	cat <<EOF
{
  "http_server": {"address": "127.0.0.1", "port": $2},
  "log": {"level": "error"},
  "engine": {"type": "memory"},
  "usage_stats": {"disabled": true},
  "websocket": $websocket,
  "http_api": {"key": "$API_KEY"},
  "client": {
    "token": {"hmac_secret_key": "$SECRET"},
    "allowed_origins": ["*"],
    "subscribe_to_user_personal_channel": {"enabled": true, "personal_channel_namespace": "personal"}
  },
  "channel": {
    "without_namespace": {"allow_subscribe_for_client": true},
    "namespaces": [$personal]
  }
}
EOF
}

# listening_addr LOG: the 127.0.0.1:PORT that the server starting as
# $SERVER_PID logs it listens on ("listening on …"), waiting up to 10 s;
# empty if it exits or never says.
listening_addr() {
	local i addr
	for ((i = 0; i < 200; i++)); do
		addr=$(grep -s -o -m1 'listening on [a-z:/]*127\.0\.0\.1:[0-9]*' "$1" | grep -o '127\.0\.0\.1:[0-9]*' || true)
		if [[ -n "$addr" ]]; then
			echo "$addr"
			return
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || return 0
		sleep 0.05
	done
}

# start_server NAME HISTORY [VARIANT]: a fresh server; sets SERVER_PID, WS_URL, API_URL.
start_server() {
	local name=$1 history=$2 variant=${3:-} logf="$TMP/$1.$RANDOM.log" addr="" i
	case $name in
	wsgate)
		local hist=()
		[[ $history == off ]] && hist=(--history-size -1)
		"$TMP/wsgate" serve --addr 127.0.0.1:0 --jwt-secret "$SECRET" --api-key "$API_KEY" \
			--message-rate -1 --handshake-rate -1 --log-level warn "${hist[@]}" >"$logf" 2>&1 &
		SERVER_PID=$!
		addr=$(listening_addr "$logf")
		WS_URL=ws://$addr/ws
		;;
	floor)
		"$TMP/httpfloor" --jwt-secret "$SECRET" --api-key "$API_KEY" >"$logf" 2>&1 &
		SERVER_PID=$!
		addr=$(listening_addr "$logf")
		WS_URL=ws://$addr/ws
		;;
	centrifugo)
		local port
		port=$(free_port)
		centrifugo_config "$history" "$port" "$variant" >"$TMP/centrifugo-$history$variant.json"
		"$CENTRIFUGO" --config "$TMP/centrifugo-$history$variant.json" >"$logf" 2>&1 &
		SERVER_PID=$!
		for ((i = 0; i < 200; i++)); do
			if ss -Hltn "sport = :$port" | grep -q .; then
				addr=127.0.0.1:$port
				break
			fi
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.05
		done
		WS_URL=ws://$addr/connection/websocket
		;;
	esac
	if [[ -z "$addr" ]]; then
		echo "run.sh: $name did not start:" >&2
		cat "$logf" >&2
		exit 1
	fi
	API_URL=http://$addr
	sleep 1 # let the runtime settle before the first sample
}

# stop_server: SIGTERM, then SIGKILL if it has not exited within 15 s.
stop_server() {
	local i
	kill "$SERVER_PID" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}

# scenario_args NAME: the "wsgate bench peer" flags of a scenario.
scenario_args() {
	case $1 in
	idle | idle-lowmem) echo "--scenario idle --n $IDLE_N --procs $PROCS --settle 5s" ;;
	connect) echo "--scenario connect --n $CONNECT_N --conc 100" ;;
	personal | personal-nohist) echo "--scenario personal --n $N --procs $PROCS --users $USERS --push-conc 16 --repeats 10" ;;
	multi) echo "--scenario multi --n $N --procs $PROCS --users $USERS --repeats 10" ;;
	fanout) echo "--scenario fanout --n $N --procs $PROCS --repeats $REPEATS --size 64" ;;
	busy) echo "--scenario busy --n $N --procs $PROCS --repeats $REPEATS --topics $TOPICS --busy-rate $BUSY_RATE" ;;
	esac
}

RESULTS="$TMP/results.jsonl"
FAILED=()
START=$(date +%s)
for ((round = 1; round <= ROUNDS; round++)); do
	if [[ -n "${FLOOR_SERVER:-}" ]]; then
		all=(wsgate centrifugo floor)
		order=("${all[@]:(round - 1) % 3}" "${all[@]:0:(round - 1) % 3}")
	elif ((round % 2)); then order=(wsgate centrifugo); else order=(centrifugo wsgate); fi
	for scenario in $SCENARIOS; do
		history=on variant=""
		[[ $scenario == personal-nohist ]] && history=off
		[[ $scenario == idle-lowmem ]] && variant=lowmem
		for server in "${order[@]}"; do
			# The floor serves only the scenarios it is the floor of.
			[[ $server == floor && ! $scenario =~ ^(connect|personal|personal-nohist)$ ]] && continue
			start_server "$server" "$history" "$variant"
			log "round $round/$ROUNDS: $scenario on $server ($WS_URL, pid $SERVER_PID)"
			protocol=$server
			[[ $server == floor ]] && protocol=wsgate # the floor speaks wsgate's full form
			# shellcheck disable=SC2046 # word splitting of the scenario flags is intended
			if ! "$TMP/wsgate" bench peer $(scenario_args "$scenario") --name "peer-$scenario" \
				--peer "$protocol" --secret "$SECRET" --api-key "$API_KEY" --url "$WS_URL" --api "$API_URL" \
				--server-pid "$SERVER_PID" --label "$server" --round "$round" --json "$RESULTS" \
				--progress 10s --timeout 5m >"$TMP/last.txt"; then
				FAILED+=("round $round $scenario $server")
				log "FAILED: round $round $scenario on $server"
			fi
			stop_server
		done
	done
done
ELAPSED=$(($(date +%s) - START))
FLOOR=""
if [[ -z "${NO_FLOOR:-}" ]]; then
	log "floor: write(2) of 79 bytes to 10,000 loopback peers in 2 reader processes, from 2 writer threads (bench/peer/floor)"
	go build -o "$TMP/floor" ./bench/peer/floor
	FLOOR=$(timeout 300 "$TMP/floor" -n 10000 -rounds 30 -procs 2 -writers 2 -ws) || FLOOR="floor: failed"
fi

{
	echo "Written by \`bench/peer/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') ($ROUNDS rounds${QUICK:+, QUICK loads}, ${ELAPSED}s);"
	echo "$(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); $(go version | cut -d' ' -f3-)."
	echo "Medians over the rounds; (min–max) of the rounds; ratios are wsgate / centrifugo with"
	echo "(min–max) of the per-round ratios."
	echo
	if ((${#FAILED[@]})); then
		echo "**Failed runs (missing from the medians):** ${FAILED[*]}"
		echo
	fi
	if [[ -n "$FLOOR" ]]; then
		echo "Floor under a fanout's server cost (\`bench/peer/floor -n 10000 -rounds 30 -procs 2 -writers 2 -ws\`, after the rounds):"
		echo "$FLOOR"
		echo
	fi
	echo "| scenario | load (\`wsgate bench peer …\`) |"
	echo "|---|---|"
	for scenario in $SCENARIOS; do
		note=""
		[[ $scenario == personal-nohist ]] && note=" (servers without history: wsgate \`--history-size -1\`, Centrifugo's personal namespace without history_size)"
		[[ $scenario == idle-lowmem ]] && note=" (Centrifugo with \`websocket\` read_buffer_size 512, write_buffer_size 512, use_write_buffer_pool; wsgate unchanged)"
		echo "| peer-$scenario | \`$(scenario_args "$scenario")\`$note |"
	done
	echo
	if [[ -n "${FLOOR_SERVER:-}" ]]; then
		echo "The floor (\`bench/peer/floor/httpfloor\`) is a third server in connect, personal and personal-nohist:"
		echo "net/http, the same HS256 verification with golang-jwt, the 101 and the hello in one write(2),"
		echo "one write(2) per push, no registry beyond a map, no queue, no sequence, no history."
		echo
	fi
	"$TMP/wsgate" bench report --servers wsgate,centrifugo${FLOOR_SERVER:+,floor} --base centrifugo --spread "$RESULTS"
} >"$OUT"
cp "$RESULTS" "$OUT.jsonl" 2>/dev/null || true
log "wrote $OUT in ${ELAPSED}s"
cat "$OUT"
