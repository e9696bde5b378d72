#!/usr/bin/env bash
# Builds the static wsgate binary that the Dockerfile ships, with the flags it
# ships with; deploy/packaging_test.go runs this same script, so what the image
# contains is what the test checked.
#
# Usage: scripts/build-static.sh OUTPUT [VERSION [COMMIT]]
#   VERSION and COMMIT are stamped into "wsgate version" when the build has no
#   module version or .git of its own (a Docker build context).
set -euo pipefail
out=${1:?usage: build-static.sh OUTPUT [VERSION [COMMIT]]}
version=${2:-}
commit=${3:-}
cd "$(dirname "$0")/.."
ldflags="-s -w"
[[ -n $version ]] && ldflags+=" -X main.version=$version"
[[ -n $commit ]] && ldflags+=" -X main.commit=$commit"
# CGO_ENABLED=0: no libc, so the binary runs on a distroless/static base
# (and the netgo/osusergo resolvers are used). -trimpath: no build paths.
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/wsgate
