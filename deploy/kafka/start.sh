#!/usr/bin/env bash
# Starts the apache/kafka image's broker with SASL/SCRAM-SHA-512 authentication; the admin
# password comes from a container secret file, never from the compose file or the
# environment `docker inspect` shows. docker-compose.yml runs it as the kafka service's command.
#
# - Listener CLIENT (SASL_PLAINTEXT, SCRAM-SHA-512) is the only one other containers reach:
#   the services and raw senders log in on it each as its own user, and the broker itself as
#   "admin" (inter-broker). The controller listener, on localhost inside this container only,
#   takes a PLAIN login as admin (KRaft's controllers cannot use SCRAM).
# - First start (empty data volume): the storage is formatted with admin's SCRAM credential
#   (`kafka-storage.sh format --add-scram`, the KRaft way: no listener is open without a
#   login, so admin could not be added later by a client that has none). Every other user,
#   and the ACLs, are set by the kafka-setup service (services/common/kafka_setup.py) as admin.
# - Then the image's own start script runs: it renders the KAFKA_* environment into
#   server.properties, finds the storage formatted, and starts the broker.
set -euo pipefail

# Where things are in the apache/kafka image (QINGLIAN_* overrides are for the tests only:
# a KAFKA_* variable would become a broker property).
SECRETS=${QINGLIAN_SECRETS_DIR:-/run/secrets}
KAFKA_BIN=${QINGLIAN_KAFKA_BIN:-/opt/kafka/bin}
IMAGE_RUN=${QINGLIAN_KAFKA_IMAGE_RUN:-/etc/kafka/docker/run}
# Files holding credentials, readable by this container's user only. admin.properties is the
# healthcheck's and operators' --command-config.
STATE=${QINGLIAN_KAFKA_STATE:-/tmp/qinglian-kafka}
ADMIN_USER=admin
umask 077
mkdir -p "$STATE"

# A password from its secret file: one line of at least 16 letters, digits, - _ . or ~ (what
# the --add-scram and JAAS syntaxes carry without quoting). Never echoed.
secret() {
	local name=$1 value
	if [[ ! -r $SECRETS/$name ]]; then
		echo "kafka: secret $name is missing or unreadable ($SECRETS/$name)" >&2
		return 1
	fi
	value=$(<"$SECRETS/$name")
	value=${value%$'\r'}
	if [[ ! $value =~ ^[A-Za-z0-9._~-]{16,}$ ]]; then
		echo "kafka: secret $name must be one line of at least 16 letters, digits, - _ . or ~" >&2
		return 1
	fi
	printf '%s' "$value"
}

scram_login() {
	printf 'org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";' "$1" "$2"
}

# KAFKA_FOO_BAR=x as the image renders it (foo.bar=x; ___ is -, __ is _), for the format step.
render_server_properties() {
	local name key
	for name in $(compgen -e); do
		case $name in
		KAFKA_VERSION | KAFKA_HEAP_OPTS | KAFKA_LOG4J_OPTS | KAFKA_OPTS | KAFKA_JMX_OPTS | \
			KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS | KAFKA_LOG4J_ROOT_LOGLEVEL | \
			KAFKA_LOG4J_LOGGERS | KAFKA_TOOLS_LOG4J_LOGLEVEL | KAFKA_JMX_HOSTNAME) continue ;;
		KAFKA_*) ;;
		*) continue ;;
		esac
		key=${name#KAFKA_}
		key=${key,,}
		key=${key//_/.}
		key=${key//.../-}
		key=${key//../_}
		printf '%s=%s\n' "$key" "${!name}"
	done
}

admin_password=$(secret kafka_admin_password)

# The broker's side of the CLIENT listener, and its own login there (inter-broker).
KAFKA_LISTENER_NAME_CLIENT_SCRAM___SHA___512_SASL_JAAS_CONFIG=$(scram_login "$ADMIN_USER" "$admin_password")
export KAFKA_LISTENER_NAME_CLIENT_SCRAM___SHA___512_SASL_JAAS_CONFIG
# The controller listener: admin is its only user, and the broker logs in to it as admin.
KAFKA_LISTENER_NAME_CONTROLLER_PLAIN_SASL_JAAS_CONFIG=$(printf 'org.apache.kafka.common.security.plain.PlainLoginModule required username="%s" password="%s" user_%s="%s";' "$ADMIN_USER" "$admin_password" "$ADMIN_USER" "$admin_password")
export KAFKA_LISTENER_NAME_CONTROLLER_PLAIN_SASL_JAAS_CONFIG

cat >"$STATE/admin.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$(scram_login "$ADMIN_USER" "$admin_password")
EOF

if [[ ! -e ${KAFKA_LOG_DIRS:?}/meta.properties ]]; then
	echo "kafka: first start: formatting $KAFKA_LOG_DIRS with the SCRAM user $ADMIN_USER"
	render_server_properties >"$STATE/format.properties"
	# Its output lists the bootstrap records, the SCRAM keys among them: not for the log.
	"$KAFKA_BIN/kafka-storage.sh" format \
		--cluster-id "${CLUSTER_ID:?}" \
		--config "$STATE/format.properties" \
		--add-scram "SCRAM-SHA-512=[name=$ADMIN_USER,password=$admin_password]" >/dev/null
	rm -f "$STATE/format.properties"
fi
unset admin_password

exec "$IMAGE_RUN"
