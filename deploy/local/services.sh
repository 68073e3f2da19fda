#!/usr/bin/env bash
# The five Qinglian services as local background processes, against the local runtime.
#
#   services.sh start     start intake, router, escalation, reporting, portal; wait until healthy
#   services.sh stop      SIGTERM (graceful: in-flight messages finish and commit)
#   services.sh status    one line per service
#
# Logs: $QINGLIAN_LOCAL_DIR/logs/<service>.log. Ports: 8101–8104 and 8106
# (QINGLIAN_<SERVICE>_PORT).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local"
# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"

SERVICES=(intake router escalation reporting portal)
declare -A DEFAULT_PORT=([intake]=8101 [router]=8102 [escalation]=8103 [reporting]=8104 [portal]=8106)
PYTHON="$ROOT/.venv/bin/python"

port_of() {
    local var="QINGLIAN_${1^^}_PORT"
    echo "${!var:-${DEFAULT_PORT[$1]}}"
}

start() {
    [[ -x "$PYTHON" ]] || die "no virtual environment: run deploy/local/setup.sh first"
    cd "$ROOT"
    mkdir -p "$LOG_DIR" "$RUN_DIR"
    local name port
    declare -A log_offset
    for name in "${SERVICES[@]}"; do
        log_offset[$name]="$(log_size "$name")"
        if [[ -n "$(pid_of "$name")" ]]; then say "$name already running"; log_offset[$name]=0; continue; fi
        port="$(port_of "$name")"
        port_in_use "$port" && die "port 127.0.0.1:$port is already in use; set QINGLIAN_${name^^}_PORT"
        # A simple command in the background, so $! is the service's own pid.
        QINGLIAN_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT" \
            QINGLIAN_MONGO_URL="mongodb://127.0.0.1:$FERRETDB_PORT/" QINGLIAN_HTTP_PORT="$port" \
            setsid "$PYTHON" -m "services.$name" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
        echo $! >"$RUN_DIR/$name.pid"
    done
    for name in "${SERVICES[@]}"; do
        wait_for "$name" "$(port_of "$name")" 60 "${log_offset[$name]}" "Application startup complete"
        say "$name healthy on http://127.0.0.1:$(port_of "$name")"
    done
}

stop() {
    local name
    for name in "${SERVICES[@]}"; do stop_process "$name" TERM; done
}

status() {
    local name
    for name in "${SERVICES[@]}"; do
        if [[ -n "$(pid_of "$name")" ]]; then
            echo "$name: running (pid $(pid_of "$name")) on http://127.0.0.1:$(port_of "$name")"
        else
            echo "$name: stopped"
        fi
    done
}

case "${1:-}" in
    start | stop | status) "$1" ;;
    *) sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
