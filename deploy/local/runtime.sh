#!/usr/bin/env bash
# Local runtime for development and tests: Apache Kafka (single KRaft node) and FerretDB
# (MongoDB wire protocol) on PostgreSQL, all on loopback only.
#
#   runtime.sh fetch                    download / build what is missing (cached)
#   runtime.sh start [SERVER]           start (all by default); starting twice is harmless
#   runtime.sh stop  [SERVER]           stop gracefully (all by default)
#   runtime.sh kill  SERVER             SIGKILL, for fault tests
#   runtime.sh status                   one line per server
#   runtime.sh logs  SERVER             follow a server's log
#   runtime.sh wipe                     stop all and delete their data
#   runtime.sh start kafka-secure       another Kafka, with production's logins and ACLs
#
# kafka-secure (also stop, kill, logs) runs on ports of its own ($QINGLIAN_KAFKA_SECURE_PORT,
# default 19094, and $QINGLIAN_KAFKA_SECURE_CONTROLLER_PORT, 19095) with SASL_PLAINTEXT
# SCRAM-SHA-512 and KRaft's StandardAuthorizer, as deploy/docker-compose.yml's Kafka: its users
# and ACLs are set by services/common/kafka_setup.py from the one plan production uses. The
# passwords (generated) are in $QINGLIAN_LOCAL_DIR/kafka-secure/secrets/kafka_<user>_password.
#
# SERVER: kafka, postgres or ferretdb (FerretDB keeps its data in PostgreSQL; starting it
# starts PostgreSQL when that is not running).
# Data, logs and pid files live in $QINGLIAN_LOCAL_DIR (default: <repo>/.local, git-ignored).
# Downloads and builds are cached in $QINGLIAN_CACHE_DIR (default: ~/.cache/qinglian), so a
# second start, even from another clone, takes seconds. PostgreSQL comes from the machine's
# packages (Debian: postgresql; deploy/local/setup.sh installs it) and runs as the system
# user qinglian-pg when this script runs as root (created once), since it refuses root.
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

POSTGRES_OS_USER="qinglian-pg"
POSTGRES_ROLE="qinglian"
POSTGRES_DATABASE="ferretdb"

# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"
POSTGRES_DATA="$LOCAL_DIR/postgres"

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
    remember_pid "$name" $!
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

find_postgres() {  # sets POSTGRES_BIN: Debian's newest PostgreSQL server programs, or PATH's
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x "$dir/postgres" ]] && { POSTGRES_BIN="$dir"; return 0; }
    done
    dir="$(command -v postgres)" || die "PostgreSQL not found: install it (Debian: apt-get install postgresql)"
    POSTGRES_BIN="$(dirname "$dir")"
}

postgres_user() {  # sets AS_POSTGRES: how to run PostgreSQL's programs (never as root)
    AS_POSTGRES=()
    ((EUID == 0)) || return 0
    if ! id -u "$POSTGRES_OS_USER" >/dev/null 2>&1; then
        say "creating the system user $POSTGRES_OS_USER to run PostgreSQL (once)"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$POSTGRES_OS_USER" 2>/dev/null ||
            id -u "$POSTGRES_OS_USER" >/dev/null 2>&1 ||  # made meanwhile by another start
            die "could not create the system user $POSTGRES_OS_USER"
    fi
    AS_POSTGRES=(setpriv --reuid="$POSTGRES_OS_USER" --regid="$POSTGRES_OS_USER" --clear-groups --)
}

init_postgres() {  # a cluster of its own with FerretDB's database, once; built aside, then moved
    [[ -f "$POSTGRES_DATA/PG_VERSION" ]] && return 0
    local new="$POSTGRES_DATA.new" log="$LOG_DIR/postgres.log"
    rm -rf "$new"
    mkdir -p "$new"
    chmod 700 "$new"
    ((EUID == 0)) && chown "$POSTGRES_OS_USER:$POSTGRES_OS_USER" "$new"
    (cd / && "${AS_POSTGRES[@]}" test -w "$new") ||
        die "the user $POSTGRES_OS_USER cannot reach $new (PostgreSQL refuses to run as root): let every folder above it be traversed (chmod o+x) or set QINGLIAN_LOCAL_DIR to one that can"
    say "creating a PostgreSQL cluster in $POSTGRES_DATA (once)"
    # UTF-8 with a locale every glibc has; only loopback TCP is ever listened on (see below),
    # and PostgreSQL trusts it as FerretDB and Kafka here do: no password on this machine.
    (cd / && "${AS_POSTGRES[@]}" "$POSTGRES_BIN/initdb" --pgdata="$new" \
        --username="$POSTGRES_ROLE" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-host=trust --auth-local=peer --no-instructions) >>"$log" 2>&1 ||
        die "initdb failed; see $log"
    echo "CREATE DATABASE $POSTGRES_DATABASE" |
        (cd / && "${AS_POSTGRES[@]}" "$POSTGRES_BIN/postgres" --single -D "$new" template1) \
            >>"$log" 2>&1 || die "could not create FerretDB's database; see $log"
    mv "$new" "$POSTGRES_DATA"
}

start_postgres() {
    if [[ -n "$(pid_of postgres)" ]]; then say "postgres already running (pid $(pid_of postgres))"; return 0; fi
    port_in_use "$POSTGRES_PORT" && die "port 127.0.0.1:$POSTGRES_PORT is already in use by another program; set QINGLIAN_POSTGRES_PORT"
    find_postgres
    postgres_user
    mkdir -p "$LOG_DIR" "$RUN_DIR"
    init_postgres
    local log_offset
    log_offset="$(log_size postgres)"
    # Loopback TCP only, no Unix socket. Every commit is flushed to disk before it is
    # acknowledged (PostgreSQL's default synchronous_commit=on): a write FerretDB acknowledged
    # survives PostgreSQL's crash and the machine's. No JIT: it costs more than it saves on
    # the short queries FerretDB sends. Errors are logged in one line, without the statement
    # or the values involved (a refused duplicate _id is routine for the services, and
    # documents may hold what no log may).
    (cd / && exec setsid "${AS_POSTGRES[@]}" "$POSTGRES_BIN/postgres" -D "$POSTGRES_DATA" \
        -c listen_addresses=127.0.0.1 -c port="$POSTGRES_PORT" -c unix_socket_directories= \
        -c jit=off -c log_error_verbosity=terse -c log_min_error_statement=panic) \
        >>"$LOG_DIR/postgres.log" 2>&1 </dev/null &
    remember_pid postgres $!
    wait_for postgres "$POSTGRES_PORT" 120 "$log_offset" "database system is ready to accept connections"
    # Indexes FerretDB's equality filters can use (the file says why); at every start, so a
    # cluster made before it gets them too.
    (cd / && "${AS_POSTGRES[@]}" "$POSTGRES_BIN/psql" --quiet --no-psqlrc -v ON_ERROR_STOP=1 \
        --host=127.0.0.1 --port="$POSTGRES_PORT" --username="$POSTGRES_ROLE" \
        --dbname="$POSTGRES_DATABASE") <"$HERE/postgres/ferretdb-indexes.sql" \
        >>"$LOG_DIR/postgres.log" 2>&1 || die "could not set FerretDB's indexes up; see $LOG_DIR/postgres.log"
    say "postgres $("$POSTGRES_BIN/postgres" --version | sed 's/^postgres (PostgreSQL) //') listening on 127.0.0.1:$POSTGRES_PORT"
}

start_ferretdb() {
    if [[ -n "$(pid_of ferretdb)" ]]; then say "ferretdb already running (pid $(pid_of ferretdb))"; return 0; fi
    local port
    for port in "$FERRETDB_PORT" "$FERRETDB_DEBUG_PORT"; do
        port_in_use "$port" && die "port 127.0.0.1:$port is already in use by another program; set QINGLIAN_FERRETDB_PORT / QINGLIAN_FERRETDB_DEBUG_PORT"
    done
    fetch_ferretdb
    [[ -n "$(pid_of postgres)" ]] || start_postgres
    local data="$LOCAL_DIR/ferretdb"
    mkdir -p "$data" "$LOG_DIR" "$RUN_DIR"
    # Telemetry off and the debug listener on loopback: nothing may leave this machine.
    # 90 connections to PostgreSQL (FerretDB's default: 50), within PostgreSQL's 100: an update
    # statement holds two at once, a bulk update one more per statement until it ends, and
    # FerretDB waits forever for one it cannot get (services/common/store.py: BULK_CHUNK).
    # Production runs MongoDB (deploy/docker-compose.yml).
    local url="postgres://$POSTGRES_ROLE@127.0.0.1:$POSTGRES_PORT/$POSTGRES_DATABASE?pool_max_conns=90"
    DO_NOT_TRACK=1 setsid "$FERRETDB_BIN" --handler=postgresql --postgresql-url="$url" \
        --state-dir="$data" --listen-addr="127.0.0.1:$FERRETDB_PORT" \
        --debug-addr="127.0.0.1:$FERRETDB_DEBUG_PORT" --telemetry=disable \
        --log-level=warn >>"$LOG_DIR/ferretdb.log" 2>&1 </dev/null &
    remember_pid ferretdb $!
    wait_for ferretdb "$FERRETDB_PORT" 30 0
    say "ferretdb $FERRETDB_VERSION listening on 127.0.0.1:$FERRETDB_PORT"
}

status() {
    local name pid
    for name in $(servers all); do
        pid="$(pid_of "$name")"
        if [[ -n "$pid" ]]; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
    done
    pid="$(pid_of kafka-secure)"
    if [[ -n "$pid" ]]; then echo "kafka-secure: running (pid $pid)"; fi
}

servers() {  # the servers a command applies to, in the order they start
    case "${1:-all}" in
        all) echo "kafka postgres ferretdb" ;;
        kafka | postgres | ferretdb | kafka-secure) echo "$1" ;;
        *) die "unknown server '$1' (kafka, postgres, ferretdb or kafka-secure)" ;;
    esac
}

# Stops in the reverse order. PostgreSQL gets SIGINT, its fast shutdown: SIGTERM would wait
# for every client, FerretDB's pooled connections included, to leave by itself.
stop_servers() {
    local names name
    names="$(servers "${1:-all}")"
    for name in $(tr ' ' '\n' <<<"$names" | tac); do
        if [[ "$name" == postgres ]]; then stop_process postgres INT; else stop_process "$name" TERM; fi
    done
}

main() {
    local command="${1:-}" names name
    shift || true
    case "$command" in
        fetch) fetch_kafka; fetch_ferretdb ;;
        start) names="$(servers "${1:-all}")"; for name in $names; do "start_$name"; done ;;
        stop) stop_servers "${1:-all}" ;;
        kill) [[ -n "${1:-}" ]] || die "kill needs a server name"
              names="$(servers "$1")"; stop_process "$names" KILL ;;
        status) status ;;
        logs) [[ -n "${1:-}" ]] || die "logs needs a server name"
              names="$(servers "$1")"; tail -n 100 -F "$LOG_DIR/$names.log" ;;
        wipe) stop_servers all; stop_process kafka-secure TERM
              rm -rf "$LOCAL_DIR/kafka" "$LOCAL_DIR/ferretdb" "$LOCAL_DIR/kafka-secure" \
                  "$POSTGRES_DATA" "$POSTGRES_DATA.new" ;;
        *) sed -n '4,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
}

main "$@"
