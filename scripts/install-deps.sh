#!/usr/bin/env bash
# Installs what the tests need beyond Go, and only what is missing:
#   Debian: chromium (interop: headless browser), python3-websockets (interop:
#           Python client, used through /usr/bin/python3), redis-server and
#           nginx (broker and proxy tests start their own on loopback ports),
#           util-linux (prlimit: the hostile suite runs a gateway under a small
#           open-files limit), nodejs/npm when node is absent.
#   npm:    interop/package.json (ws, playwright-core) and client/js/package.json
#           (typescript, to type-check the JS client's .d.ts), each pinned by its
#           committed package-lock.json; `npm ci` runs only when node_modules is
#           missing or older than the lock file.
# Safe to run again: when everything is present it changes nothing and does not
# touch the network. Needs root (or sudo) only when a Debian package is missing.
set -euo pipefail

cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
# playwright-core never downloads a browser, but say so anyway: the tests drive
# Debian's /usr/bin/chromium and the machine cannot reach a browser CDN.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: ERROR: %s\n' "$*" >&2; exit 1; }

# retry N CMD...: run CMD up to N times, 5 s apart (registries hiccup).
retry() {
	local n=$1 i
	shift
	for ((i = 1; i <= n; i++)); do
		"$@" && return 0
		((i < n)) && { log "attempt $i/$n failed: $*; retrying in 5 s"; sleep 5; }
	done
	return 1
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing_debs() {
	local pkg
	for pkg in chromium python3-websockets redis-server nginx util-linux systemd; do
		installed "$pkg" || printf '%s\n' "$pkg"
	done
	command -v node >/dev/null || printf '%s\n' nodejs
	command -v npm >/dev/null || printf '%s\n' npm
}

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo -n "$@"
	else
		die "need root to run: $*"
	fi
}

# install_debs installs the given Debian packages without starting their
# services: the tests run their own redis-server and nginx on free loopback
# ports, and a daemon left on :80 or :6379 helps nobody. A policy-rc.d that
# answers 101 is Debian's documented way to say "do not start services"; we
# only add one when the machine has none, and remove it afterwards.
install_debs() {
	local policy=/usr/sbin/policy-rc.d added=0
	if [[ ! -e $policy ]]; then
		as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
		added=1
	fi
	local rc=0
	retry 3 as_root apt-get update -q || rc=$?
	if ((rc == 0)); then
		retry 3 as_root apt-get install -y -q --no-install-recommends \
			-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" || rc=$?
	fi
	((added)) && as_root rm -f "$policy"
	return "$rc"
}

debian_deps() {
	command -v dpkg-query >/dev/null || die "not a Debian system (no dpkg-query); install chromium, python3-websockets, redis-server, nginx and node by hand"
	local missing
	mapfile -t missing < <(missing_debs)
	if ((${#missing[@]} == 0)); then
		log "Debian packages: all present"
		return
	fi
	log "Debian packages: installing ${missing[*]}"
	install_debs "${missing[@]}" || die "apt-get install ${missing[*]} failed"
}

# npm_deps DIR PACKAGE...: runs `npm ci` in DIR when node_modules is absent,
# lacks one of the packages, or was installed from a different lock file (a
# stamp holding the lock file's hash is written after every successful install).
npm_deps() {
	local dir=$1 stamp=$1/node_modules/.wsgate-lock.sha256 want pkg ok=1
	shift
	want=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)
	for pkg in "$@"; do
		[[ -f $dir/node_modules/$pkg/package.json ]] || ok=0
	done
	if ((ok)) && [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
		log "npm packages ($dir/): up to date"
		return
	fi
	log "npm packages ($dir/): npm ci"
	(cd "$dir" && retry 3 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) || die "npm ci in $dir failed"
	printf '%s\n' "$want" >"$stamp"
}

check() {
	local v
	v=$(/usr/bin/chromium --version 2>/dev/null) || die "/usr/bin/chromium does not run"
	log "  $v"
	v=$(/usr/bin/python3 -c 'import websockets; print(websockets.__version__)') || die "/usr/bin/python3 cannot import websockets"
	log "  python3-websockets $v"
	log "  node $(node --version), npm $(npm --version 2>/dev/null)"
	log "  $(redis-server --version | cut -d' ' -f1-3)"
	log "  $(nginx -v 2>&1)"
	log "  $(systemd-analyze --version | head -1) (systemd-analyze verify: deploy/systemd)"
}

main() {
	command -v go >/dev/null || die "go is not on PATH (the one thing this script expects)"
	debian_deps
	npm_deps interop ws playwright-core
	npm_deps client/js typescript
	check
	log "done"
}

main "$@"
