#!/usr/bin/env bash
# Local runtime for development and tests: Apache Kafka (single KRaft node) and FerretDB
# (SQLite backend, MongoDB wire protocol), both on loopback only.
#
#   runtime.sh fetch                     download / build what is missing (cached)
#   runtime.sh start [kafka|ferretdb]    start (both by default); starting twice is harmless
#   runtime.sh stop  [kafka|ferretdb]    stop gracefully (both by default)
#   runtime.sh kill  kafka|ferretdb      SIGKILL, for fault tests
#   runtime.sh status                    one line per server
#   runtime.sh logs  kafka|ferretdb      follow a server's log
#   runtime.sh wipe                      stop both and delete their data
#   runtime.sh start kafka-secure        another Kafka, with production's logins and ACLs
#
# kafka-secure (also stop, kill, logs) runs on ports of its own ($QINGLIAN_KAFKA_SECURE_PORT,
# default 19094, and $QINGLIAN_KAFKA_SECURE_CONTROLLER_PORT, 19095) with SASL_PLAINTEXT
# SCRAM-SHA-512 and KRaft's StandardAuthorizer, as deploy/docker-compose.yml's Kafka: its users
# and ACLs are set by services/common/kafka_setup.py from the one plan production uses. The
# passwords (generated) are in $QINGLIAN_LOCAL_DIR/kafka-secure/secrets/kafka_<user>_password.
#
# Data, logs and pid files live in $QINGLIAN_LOCAL_DIR (default: <repo>/.local, git-ignored).
# Downloads and builds are cached in $QINGLIAN_CACHE_DIR (default: ~/.cache/qinglian), so a
# second start, even from another clone, takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local"
CACHE_DIR="${QINGLIAN_CACHE_DIR:-$HOME/.cache/qinglian}"

KAFKA_VERSION="4.4.0"
FERRETDB_VERSION="v1.24.2"

KAFKA_LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
KAFKA_SECURE_PORT="${QINGLIAN_KAFKA_SECURE_PORT:-19094}"
KAFKA_SECURE_CONTROLLER_PORT="${QINGLIAN_KAFKA_SECURE_CONTROLLER_PORT:-19095}"
FERRETDB_BIN="$CACHE_DIR/ferretdb-$FERRETDB_VERSION/ferretdb"

# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"

fetch_kafka() {
    [[ -f "$KAFKA_LIBS/.complete" ]] && return 0
    require java "a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
    require mvn "Apache Maven (Debian: apt-get install maven)"
    say "fetching Apache Kafka $KAFKA_VERSION from Maven Central (once)"
    rm -rf "$KAFKA_LIBS"
    mkdir -p "$KAFKA_LIBS"
    mvn -q -B -Dstyle.color=never -f "$HERE/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" \
        || die "Maven could not fetch Kafka $KAFKA_VERSION"
    touch "$KAFKA_LIBS/.complete"
}

fetch_ferretdb() {
    [[ -x "$FERRETDB_BIN" ]] && return 0
    require go "Go 1.24+ (Debian: apt-get install golang)"
    say "building FerretDB $FERRETDB_VERSION from the Go module proxy (once)"
    # `go install github.com/FerretDB/FerretDB/cmd/ferretdb@VERSION` yields a binary that panics
    # at start because the module ships an empty build/version/version.txt. So: download the
    # same module with the go command, fill that file in, and `go install` the same package.
    local module_dir src="$CACHE_DIR/ferretdb-$FERRETDB_VERSION/src"
    module_dir="$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -d "$module_dir" ]] || die "go could not download FerretDB $FERRETDB_VERSION"
    rm -rf "$src"
    mkdir -p "$(dirname "$src")"
    cp -R "$module_dir" "$src"
    chmod -R u+w "$src"
    echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
    (cd "$src" && GOBIN="$(dirname "$FERRETDB_BIN")" go install ./cmd/ferretdb) \
        || die "go could not build FerretDB $FERRETDB_VERSION"
    rm -rf "$src"
}

running() {  # running NAME: says so and succeeds when NAME already runs
    [[ -n "$(pid_of "$1")" ]] && say "$1 already running (pid $(pid_of "$1"))"
}

# launch_kafka NAME PORT CONTROLLER_PORT PORT-SETTINGS [FORMAT-OPTION...]: format NAME's storage
# when it is new, start the broker configured by render_NAME, wait until it serves.
launch_kafka() {
    local name="$1" port="$2" controller_port="$3" port_settings="$4"
    shift 4
    require java "a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
    local free
    for free in "$port" "$controller_port"; do
        port_in_use "$free" && die "port 127.0.0.1:$free is already in use by another program; set $port_settings"
    done
    fetch_kafka
    local data="$LOCAL_DIR/$name/data" conf="$LOCAL_DIR/$name/server.properties"
    local classpath="$KAFKA_LIBS/*"
    mkdir -p "$data" "$LOG_DIR" "$RUN_DIR"
    (umask 077 && "render_$name" "$port" "$controller_port" "$data" >"$conf")  # may hold a password
    if [[ ! -f "$data/meta.properties" ]]; then
        local cluster_id
        cluster_id="$(java -cp "$classpath" kafka.tools.StorageTool random-uuid)"
        # Its output lists the bootstrap records, SCRAM keys included: not for the log.
        java -cp "$classpath" kafka.tools.StorageTool format --standalone \
            -t "$cluster_id" -c "$conf" "$@" >/dev/null 2>>"$LOG_DIR/$name.log" \
            || die "could not format Kafka storage; see $LOG_DIR/$name.log"
    fi
    local log_offset
    log_offset="$(log_size "$name")"
    setsid java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
        -cp "$classpath" kafka.Kafka "$conf" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/$name.pid"
    wait_for "$name" "$port" 90 "$log_offset" "Kafka Server started"
}

render_kafka() {  # PORT CONTROLLER_PORT DATA
    sed -e "s|@KAFKA_PORT@|$1|g" -e "s|@CONTROLLER_PORT@|$2|g" -e "s|@DATA_DIR@|$3|g" \
        "$HERE/kafka/server.properties.in"
}

start_kafka() {
    running kafka && return 0
    launch_kafka kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" \
        "QINGLIAN_KAFKA_PORT / QINGLIAN_KAFKA_CONTROLLER_PORT"
    say "kafka $KAFKA_VERSION listening on 127.0.0.1:$KAFKA_PORT"
}

KAFKA_SECURE_SECRETS="$LOCAL_DIR/kafka-secure/secrets"

secure_password() {  # the password of a kafka-secure user, generated on first use
    local file="$KAFKA_SECURE_SECRETS/kafka_$1_password"
    [[ -s "$file" ]] || (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$file")
    cat "$file"
}

render_kafka-secure() {  # PORT CONTROLLER_PORT DATA
    local admin_password
    admin_password="$(secure_password admin)"
    { render_kafka "$@"; sed -e "s|@KAFKA_PORT@|$1|g" -e "s|@CONTROLLER_PORT@|$2|g" \
        -e "s|@ADMIN_PASSWORD@|$admin_password|g" "$HERE/kafka/secure.properties.in"; }
}

kafka_setup() {  # python -m services.common.kafka_setup as admin against kafka-secure
    env PYTHONPATH="$ROOT" QINGLIAN_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_SECURE_PORT" \
        QINGLIAN_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 QINGLIAN_KAFKA_SASL_USERNAME=admin \
        QINGLIAN_KAFKA_SASL_PASSWORD_FILE="$KAFKA_SECURE_SECRETS/kafka_admin_password" \
        QINGLIAN_KAFKA_PASSWORDS_DIR="$KAFKA_SECURE_SECRETS" \
        "$ROOT/.venv/bin/python" -m services.common.kafka_setup "$@"
}

start_kafka-secure() {
    running kafka-secure && return 0
    [[ -x "$ROOT/.venv/bin/python" ]] || die "kafka-secure needs the Python environment: run deploy/local/setup.sh"
    (umask 077 && mkdir -p "$KAFKA_SECURE_SECRETS")
    local admin_password users user
    admin_password="$(secure_password admin)"
    users="$(kafka_setup --users)" || die "could not read the Kafka access plan"
    for user in $users; do secure_password "$user" >/dev/null; done
    # The storage knows admin only; kafka_setup then adds every other user and the ACLs.
    launch_kafka kafka-secure "$KAFKA_SECURE_PORT" "$KAFKA_SECURE_CONTROLLER_PORT" \
        "QINGLIAN_KAFKA_SECURE_PORT / QINGLIAN_KAFKA_SECURE_CONTROLLER_PORT" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=$admin_password]"
    kafka_setup >>"$LOG_DIR/kafka-secure.log" 2>&1 \
        || die "could not set kafka-secure's users and ACLs; see $LOG_DIR/kafka-secure.log"
    say "kafka-secure $KAFKA_VERSION listening on 127.0.0.1:$KAFKA_SECURE_PORT (SASL_PLAINTEXT, SCRAM-SHA-512, ACLs; passwords in $KAFKA_SECURE_SECRETS)"
}

start_ferretdb() {
    if [[ -n "$(pid_of ferretdb)" ]]; then say "ferretdb already running (pid $(pid_of ferretdb))"; return 0; fi
    local port
    for port in "$FERRETDB_PORT" "$FERRETDB_DEBUG_PORT"; do
        port_in_use "$port" && die "port 127.0.0.1:$port is already in use by another program; set QINGLIAN_FERRETDB_PORT / QINGLIAN_FERRETDB_DEBUG_PORT"
    done
    fetch_ferretdb
    local data="$LOCAL_DIR/ferretdb"
    mkdir -p "$data/sqlite" "$LOG_DIR" "$RUN_DIR"
    # Telemetry off and the debug listener on loopback: nothing may leave this machine.
    # synchronous(normal) with FerretDB's WAL journal: a write survives a process crash (what
    # the fault tests do) but not the loss of the machine's power; ~15x fewer fsyncs.
    # Production runs MongoDB (deploy/docker-compose.yml).
    DO_NOT_TRACK=1 setsid "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$data/sqlite/?_pragma=synchronous(normal)" \
        --state-dir="$data" --listen-addr="127.0.0.1:$FERRETDB_PORT" \
        --debug-addr="127.0.0.1:$FERRETDB_DEBUG_PORT" --telemetry=disable \
        --log-level=warn >>"$LOG_DIR/ferretdb.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/ferretdb.pid"
    wait_for ferretdb "$FERRETDB_PORT" 30 0
    say "ferretdb $FERRETDB_VERSION listening on 127.0.0.1:$FERRETDB_PORT"
}

status() {
    local name pid
    for name in kafka ferretdb; do
        pid="$(pid_of "$name")"
        if [[ -n "$pid" ]]; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
    done
    pid="$(pid_of kafka-secure)"
    if [[ -n "$pid" ]]; then echo "kafka-secure: running (pid $pid)"; fi
}

servers() {  # the servers a command applies to
    case "${1:-all}" in
        all) echo "kafka ferretdb" ;;
        kafka | ferretdb | kafka-secure) echo "$1" ;;
        *) die "unknown server '$1' (kafka, ferretdb or kafka-secure)" ;;
    esac
}

main() {
    local command="${1:-}" name
    shift || true
    case "$command" in
        fetch) fetch_kafka; fetch_ferretdb ;;
        start) for name in $(servers "${1:-all}"); do "start_$name"; done ;;
        stop) for name in $(servers "${1:-all}"); do stop_process "$name" TERM; done ;;
        kill) [[ -n "${1:-}" ]] || die "kill needs a server name"; stop_process "$(servers "$1")" KILL ;;
        status) status ;;
        logs) [[ -n "${1:-}" ]] || die "logs needs a server name"; tail -n 100 -F "$LOG_DIR/$(servers "$1").log" ;;
        wipe) for name in kafka ferretdb kafka-secure; do stop_process "$name" TERM; done
              rm -rf "$LOCAL_DIR/kafka" "$LOCAL_DIR/ferretdb" "$LOCAL_DIR/kafka-secure" ;;
        *) sed -n '4,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
}

main "$@"
