#!/usr/bin/env bash
# The Qinglian services as local background processes, against the local runtime.
#
#   services.sh start     start intake, router, escalation, reporting, desk, portal, notifier;
#                         wait until healthy
#   services.sh stop      SIGTERM (graceful: in-flight messages finish and commit)
#   services.sh status    one line per service
#
# Logs: $QINGLIAN_LOCAL_DIR/logs/<service>.log. Ports: 8101–8107 (QINGLIAN_<SERVICE>_PORT).
# The notifier sends to an SMTP server on 127.0.0.1:${QINGLIAN_SMTP_PORT:-25} (none runs by default:
# its notifications wait in the outbox, retried, then marked failed) and links to the local desk.
# The desk sends its people's actions to intake with an API key of its own (source system desk),
# and the portal its complaints and ratings (source system portal), each made with intake's keys
# command at the first start (again once the store no longer knows it) and kept in
# $QINGLIAN_LOCAL_DIR/secrets/desk_intake_api_key and …/portal_intake_api_key.
# One sign-in serves the desk and the reports: reporting asks the desk who a browser is with a
# key both are given, made at the first start and kept in $QINGLIAN_LOCAL_DIR/secrets/session_reader_key.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local"
# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"

SERVICES=(intake router escalation reporting desk portal notifier)
declare -A DEFAULT_PORT=([intake]=8101 [router]=8102 [escalation]=8103 [reporting]=8104 [desk]=8105 [portal]=8106 [notifier]=8107)
PYTHON="$ROOT/.venv/bin/python"
DESK_KEY="$LOCAL_DIR/secrets/desk_intake_api_key"
PORTAL_KEY="$LOCAL_DIR/secrets/portal_intake_api_key"
READER_KEY="$LOCAL_DIR/secrets/session_reader_key"

port_of() {
    local var="QINGLIAN_${1^^}_PORT"
    echo "${!var:-${DEFAULT_PORT[$1]}}"
}

store_env() {
    echo "QINGLIAN_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT" \
        "QINGLIAN_MONGO_URL=mongodb://127.0.0.1:$FERRETDB_PORT/"
}

api_key() {  # FILE SOURCE SCOPES: an intake API key, kept while intake's store knows it with these scopes, else made anew
    local file="$1" source="$2" scopes="$3" key_id sorted
    sorted="$(tr , '\n' <<<"$scopes" | LC_ALL=C sort | paste -sd, -)"  # as `keys list` prints them
    if [[ -s "$file" ]]; then
        key_id="$(cut -d_ -f2 "$file")"
        env $(store_env) "$PYTHON" -m services.intake.keys list 2>/dev/null |
            grep -Eq "^$key_id .* active .*scopes $sorted( |$)" && return 0
    fi
    mkdir -p "$(dirname "$file")"
    (umask 077 && env $(store_env) "$PYTHON" -m services.intake.keys create --source "$source" \
        --scopes "$scopes" --label "$source (local)" >"$file" 2>/dev/null) ||
        die "could not make the $source's API key for intake"
}

reader_key() {  # the key reporting asks the desk with (GET /v1/session): made once
    [[ -s "$READER_KEY" ]] && return 0
    mkdir -p "$(dirname "$READER_KEY")"
    (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$READER_KEY") ||
        die "could not make the session reader key"
}

extra_env() {  # settings one service needs beyond the store and broker
    case "$1" in
        desk)
            echo "QINGLIAN_INTAKE_API_KEY_FILE=$DESK_KEY" \
                "QINGLIAN_INTAKE_URL=http://127.0.0.1:$(port_of intake)" \
                "QINGLIAN_REPORTING_URL=http://127.0.0.1:$(port_of reporting)" \
                "QINGLIAN_SESSION_READER_KEY_FILE=$READER_KEY" ;;
        portal)
            echo "QINGLIAN_INTAKE_API_KEY_FILE=$PORTAL_KEY" \
                "QINGLIAN_INTAKE_URL=http://127.0.0.1:$(port_of intake)" \
                "QINGLIAN_PUBLIC_URL=http://127.0.0.1:$(port_of portal)" ;;
        notifier)
            echo "QINGLIAN_DESK_URL=http://127.0.0.1:$(port_of desk)" ;;
        reporting)
            echo "QINGLIAN_DESK_URL=http://127.0.0.1:$(port_of desk)" \
                "QINGLIAN_DESK_PUBLIC_URL=http://127.0.0.1:$(port_of desk)" \
                "QINGLIAN_SESSION_READER_KEY_FILE=$READER_KEY" ;;
    esac
}

start() {
    [[ -x "$PYTHON" ]] || die "no virtual environment: run deploy/local/setup.sh first"
    cd "$ROOT"
    mkdir -p "$LOG_DIR" "$RUN_DIR"
    api_key "$DESK_KEY" desk case_action,investigation_finding,follow_up_reply,attachment_read
    api_key "$PORTAL_KEY" portal complaint,satisfaction,attachment_write
    reader_key
    local name port
    declare -A log_offset
    for name in "${SERVICES[@]}"; do
        log_offset[$name]="$(log_size "$name")"
        if [[ -n "$(pid_of "$name")" ]]; then say "$name already running"; log_offset[$name]=0; continue; fi
        port="$(port_of "$name")"
        port_in_use "$port" && die "port 127.0.0.1:$port is already in use; set QINGLIAN_${name^^}_PORT"
        # A simple command in the background, so $! is the service's own pid.
        # shellcheck disable=SC2046 # each word of store_env and extra_env is one setting
        env $(store_env) $(extra_env "$name") QINGLIAN_HTTP_PORT="$port" \
            setsid "$PYTHON" -m "services.$name" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
        remember_pid "$name" $!
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
