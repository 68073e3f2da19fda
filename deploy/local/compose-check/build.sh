#!/usr/bin/env bash
# Builds compose-check (main.go: Compose v2's own loader, compose-go, from the Go module proxy)
# once per version of its sources into the cache, and prints the program's path.
# deploy/local/setup.sh runs it; so does tests/unit/test_compose_loaders.py (cached: instant).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${QINGLIAN_CACHE_DIR:-$HOME/.cache/qinglian}"
version="$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/main.go" | sha256sum | cut -c1-16)"
program="$CACHE_DIR/compose-check-$version/compose-check"
if [[ ! -x "$program" ]]; then
    command -v go >/dev/null 2>&1 || { echo "build.sh: go not found: install Go 1.24+ (Debian: apt-get install golang)" >&2; exit 1; }
    mkdir -p "$(dirname "$program")"
    (cd "$HERE" && GOFLAGS=-mod=readonly go build -o "$program.partial" .) >&2
    mv "$program.partial" "$program"
fi
echo "$program"
