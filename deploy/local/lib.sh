# Shell functions and local ports shared by runtime.sh and services.sh. Sourced, not run.

LOCAL_DIR="${QINGLIAN_LOCAL_DIR:-$ROOT/.local}"
LOG_DIR="$LOCAL_DIR/logs"
RUN_DIR="$LOCAL_DIR/run"
KAFKA_PORT="${QINGLIAN_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${QINGLIAN_KAFKA_CONTROLLER_PORT:-19093}"
FERRETDB_PORT="${QINGLIAN_FERRETDB_PORT:-27018}"
FERRETDB_DEBUG_PORT="${QINGLIAN_FERRETDB_DEBUG_PORT:-18088}"
POSTGRES_PORT="${QINGLIAN_POSTGRES_PORT:-15432}"

die() { echo "${0##*/}: $*" >&2; exit 1; }
say() { echo "${0##*/}: $*"; }

require() {  # require COMMAND WHAT-TO-INSTALL
    command -v "$1" >/dev/null 2>&1 || die "$1 not found: install $2"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

started_at() {  # a process's start time (clock ticks since boot), or nothing if it is gone
    local stat fields
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }"  # after the command name, which may hold spaces
    read -ra fields <<<"$stat"
    echo "${fields[19]}"  # field 22 of proc(5), counted from field 3
}

remember_pid() {  # remember_pid NAME PID: the pid with its start time, so a reused pid is not ours
    echo "$2 $(started_at "$2")" >"$RUN_DIR/$1.pid"
}

pid_of() {  # prints the pid of a running process started by us, or nothing
    local pid_file="$RUN_DIR/$1.pid" pid started
    [[ -f "$pid_file" ]] || return 0
    read -r pid started <"$pid_file"
    # A pid file from before a reboot may name a process another program runs now: the start
    # time tells. (A file written before start times were kept has none: trusted as it was.)
    if { [[ -n "$started" ]] && [[ "$(started_at "$pid")" == "$started" ]]; } ||
        { [[ -z "$started" ]] && kill -0 "$pid" 2>/dev/null; }; then
        echo "$pid"
    else
        rm -f "$pid_file"
    fi
}

stop_process() {  # stop_process NAME SIGNAL: signal it, wait, SIGKILL after 60 s
    local pid
    pid="$(pid_of "$1")"
    if [[ -z "$pid" ]]; then say "$1 not running"; return 0; fi
    local children=()
    # SIGKILL is a crash: the server processes PostgreSQL forked (each its own session) go too.
    [[ "$2" == KILL ]] && mapfile -t children < <(pgrep -P "$pid" || true)
    kill "-$2" "$pid" "${children[@]}" 2>/dev/null || true
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then kill -KILL "$pid" 2>/dev/null || true; fi
        sleep 0.2
    done
    rm -f "$RUN_DIR/$1.pid"
    say "$1 stopped"
}

log_size() {  # bytes already in a process's log, so a wait looks only at what follows
    stat -c %s "$LOG_DIR/$1.log" 2>/dev/null || echo 0
}

wait_for() {  # wait_for NAME PORT SECONDS LOG-OFFSET [LOG-PATTERN]
    local name="$1" port="$2" deadline=$((SECONDS + $3)) offset="$4" pattern="${5:-}"
    while ((SECONDS < deadline)); do
        [[ -n "$(pid_of "$name")" ]] || die "$name exited during start; see $LOG_DIR/$name.log"
        # grep -q stops reading at the first match, so tail may die of SIGPIPE on a long log:
        # under pipefail that would fail the wait, so tail's own status is not looked at.
        if port_in_use "$port" && { [[ -z "$pattern" ]] ||
            { tail -c "+$((offset + 1))" "$LOG_DIR/$name.log" || true; } | grep -q "$pattern"; }; then
            return 0
        fi
        sleep 0.5
    done
    die "$name did not become ready on 127.0.0.1:$port within $3 s; see $LOG_DIR/$name.log"
}
