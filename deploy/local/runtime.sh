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

start_kafka() {
    if [[ -n "$(pid_of kafka)" ]]; then say "kafka already running (pid $(pid_of kafka))"; return 0; fi
    require java "a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
    local port
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        port_in_use "$port" && die "port 127.0.0.1:$port is already in use by another program; set QINGLIAN_KAFKA_PORT / QINGLIAN_KAFKA_CONTROLLER_PORT"
    done
    fetch_kafka
    local data="$LOCAL_DIR/kafka/data" conf="$LOCAL_DIR/kafka/server.properties"
    local classpath="$KAFKA_LIBS/*"
    mkdir -p "$data" "$LOG_DIR" "$RUN_DIR"
    sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$data|g" "$HERE/kafka/server.properties.in" >"$conf"
    if [[ ! -f "$data/meta.properties" ]]; then
        local cluster_id
        cluster_id="$(java -cp "$classpath" kafka.tools.StorageTool random-uuid)"
        java -cp "$classpath" kafka.tools.StorageTool format --standalone \
            -t "$cluster_id" -c "$conf" >>"$LOG_DIR/kafka.log" 2>&1 \
            || die "could not format Kafka storage; see $LOG_DIR/kafka.log"
    fi
    local log_offset
    log_offset="$(log_size kafka)"
    setsid java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
        -cp "$classpath" kafka.Kafka "$conf" >>"$LOG_DIR/kafka.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/kafka.pid"
    wait_for kafka "$KAFKA_PORT" 90 "$log_offset" "Kafka Server started"
    say "kafka $KAFKA_VERSION listening on 127.0.0.1:$KAFKA_PORT"
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
}

servers() {  # the servers a command applies to
    case "${1:-all}" in
        all) echo "kafka ferretdb" ;;
        kafka | ferretdb) echo "$1" ;;
        *) die "unknown server '$1' (kafka or ferretdb)" ;;
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
        wipe) for name in kafka ferretdb; do stop_process "$name" TERM; done
              rm -rf "$LOCAL_DIR/kafka" "$LOCAL_DIR/ferretdb" ;;
        *) sed -n '4,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
}

main "$@"
