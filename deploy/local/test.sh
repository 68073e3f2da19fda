#!/usr/bin/env bash
# Lint, type-check and run every test against a fresh local Kafka and FerretDB (on PostgreSQL)
# of its own (own data folder and ports, so a running `make up` system is left alone). Stops
# them after.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export QINGLIAN_LOCAL_DIR="${QINGLIAN_TEST_LOCAL_DIR:-$ROOT/.local/test}"
export QINGLIAN_KAFKA_PORT="${QINGLIAN_TEST_KAFKA_PORT:-29092}"
export QINGLIAN_KAFKA_CONTROLLER_PORT="${QINGLIAN_TEST_KAFKA_CONTROLLER_PORT:-29093}"
export QINGLIAN_FERRETDB_PORT="${QINGLIAN_TEST_FERRETDB_PORT:-27028}"
export QINGLIAN_FERRETDB_DEBUG_PORT="${QINGLIAN_TEST_FERRETDB_DEBUG_PORT:-18098}"
export QINGLIAN_POSTGRES_PORT="${QINGLIAN_TEST_POSTGRES_PORT:-25432}"
export QINGLIAN_KAFKA_BOOTSTRAP="127.0.0.1:$QINGLIAN_KAFKA_PORT"
export QINGLIAN_MONGO_URL="mongodb://127.0.0.1:$QINGLIAN_FERRETDB_PORT/"

cd "$ROOT"
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/mypy

runtime="$ROOT/deploy/local/runtime.sh"
"$runtime" wipe >/dev/null
trap '"$runtime" stop >/dev/null' EXIT
"$runtime" start

.venv/bin/python -m pytest "$@"
