#!/usr/bin/env bash
# Installs what the project needs on this machine: the Python environment (.venv) and the
# local runtime (Kafka jars, FerretDB binary). Quick when nothing changed.
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

# kcat: a third-party Kafka client the tests publish to the raw topic with.
if ! command -v kcat >/dev/null 2>&1; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing kcat (Debian package)"
        apt-get update -qq >/dev/null && apt-get install -y -qq kcat >/dev/null
    else
        die "kcat not found: install it (Debian: apt-get install kcat)"
    fi
fi

"$HERE/runtime.sh" fetch
