#!/usr/bin/env bash
# Installs what the project needs on this machine: the Python environment (.venv), the Debian
# Installs what the project needs on this machine: the Python environment (.venv), the Debian
# packages the runtime and the tests use (apt, when missing: PostgreSQL among them), the local
# runtime (Kafka jars, FerretDB binary) and compose-check (Compose v2's loader). Quick when
# nothing changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local"
# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"

python_bin="${QINGLIAN_PYTHON:-}"
if [[ -z "$python_bin" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            python_bin="$candidate"; break
        fi
    done
fi
[[ -n "$python_bin" ]] || die "Python 3.11 not found: install it (Debian: apt-get install python3.11 python3.11-venv) or set QINGLIAN_PYTHON"

venv="$ROOT/.venv"
stamp="$venv/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
    say "installing the Python environment in .venv"
    "$python_bin" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -e "$ROOT[dev]"
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi

# Debian packages the runtime and the tests use, installed with apt when missing (one apt run
# for all): PostgreSQL, FerretDB's store (deploy/local/runtime.sh runs a cluster of its own;
# Debian's package may also set up its own "main" cluster, which Qinglian does not use) and
# procps (pgrep: `runtime.sh kill postgres` takes its server processes with it); kcat, a
# third-party Kafka client the tests publish to the raw topic with; Chromium, which the
# dashboard's browser test drives headless; promtool and prometheus, which check the alert
# rules and scrape the services in a test; a CJK font, so pages render Chinese; docker-compose 1.29,
# whose loader a test runs on deploy/docker-compose.yml.
# OpenLDAP's slapd, which a test starts on loopback (a throwaway directory) to sign in to the
# desk against.
missing=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || command -v postgres >/dev/null 2>&1 ||
    missing+=(postgresql)
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[[ -n "$(fc-list :lang=zh 2>/dev/null)" ]] || missing+=(fonts-wqy-microhei)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[[ -x /usr/sbin/slapd ]] || missing+=(slapd)
if ((${#missing[@]})); then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing ${missing[*]} (Debian packages)"
        # Debian's prometheus package would also start a server: policy-rc.d stops that where
        # present; --no-install-recommends keeps out prometheus-node-exporter and the like.
        # slapd's package would ask for an administrator password: noninteractive skips it
        # (the tests configure their own server), and policy-rc.d keeps it from starting one.
        apt-get update -qq >/dev/null &&
            DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        die "${missing[*]} not installed and apt-get unavailable (or not root): install them (Debian: apt-get install ${missing[*]})"
    fi
fi

"$HERE/runtime.sh" fetch
"$HERE/compose-check/build.sh" >/dev/null
