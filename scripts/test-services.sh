#!/usr/bin/env bash
# Real servers for the test suite, as local processes on private ports: an S3 server (moto), RabbitMQ
# with the management plugin, and Redis. RabbitMQ (AMQP and management) and Redis also listen with TLS,
# using a throwaway CA made here with openssl. The stack manager (crates/stack) runs them from
# deploy/test-services.toml (which says what each server runs and how it is checked).
#
#   eval "$(scripts/test-services.sh start)"   # start what is not running, wait until ready, print env
#   scripts/test-services.sh env               # print the env of the running services again
#   scripts/test-services.sh status
#   scripts/test-services.sh stop              # stop everything started here, delete its data
#   scripts/test-services.sh stop-rabbitmq | start-rabbitmq | restart-rabbitmq   (data is kept)
#   scripts/test-services.sh stop-redis | start-redis | stop-s3 | start-s3
#   scripts/test-services.sh ctl list_queues   # rabbitmqctl against the test node
#
# Exported to tests: TEST_S3_ENDPOINT, TEST_AMQP_URL, TEST_RABBITMQ_MANAGEMENT_URL, TEST_REDIS_URL,
# the TLS endpoints TEST_AMQPS_URL, TEST_RABBITMQ_MANAGEMENT_HTTPS_URL, TEST_REDISS_URL (host `localhost`,
# which the server certificate names) with TEST_TLS_CA_FILE (the CA that signed it, PEM),
# TEST_RABBITMQ_NODE, TEST_RABBITMQ_CTL (this script, for the broker subcommands above), TEST_SPARK_SUBMIT
# (the repo venv's PySpark spark-submit, when installed) and
# TEST_SERVICES_DIR; and one RabbitMQ user per role of deploy/rabbitmq/permissions.tsv (pool-producer,
# pool-worker, pool-replay with their permissions on the default names, pool-monitor with the monitoring
# tag and no right) as TEST_AMQP_PRODUCER_URL, TEST_AMQP_WORKER_URL, TEST_AMQP_REPLAY_URL and
# TEST_RABBITMQ_MONITOR_URL (tests of other names make users of their own, testkit::users). State (pid
# files, data, logs, the `env` file, the CA and server certificate in tls/, which `stop` keeps) lives in
# TEST_SERVICES_DIR, default target/test-services (git-ignored). Ports: the first block 17100+k*100
# (k = 0..9) whose nine ports are free, kept for as long as the state folder says the services run: +0
# S3, +1 AMQP, +2 management, +3 Redis, +4 AMQPS, +5 Redis TLS, +6 management HTTPS, +7 epmd, +8 Erlang
# distribution. Only stdout carries the exports; progress and errors go to stderr. The manager binary is
# found (and built when missing) as scripts/stack.sh finds it (STACK_PROFILE, STACK_BUILD,
# CARGO_TARGET_DIR), except that STACK_PROFILE defaults to debug here: the test build's, so `make test`
# builds nothing in release.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SCRIPT")/.." && pwd)"
STATE="${TEST_SERVICES_DIR:-$ROOT/target/test-services}"
TLS_DIR="$STATE/tls"

log() { echo "test-services: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# shellcheck source=lib/stack-manager.sh source-path=SCRIPTDIR
source "$ROOT/scripts/lib/stack-manager.sh"
STACK_PROFILE="${STACK_PROFILE:-debug}" stack_manager "$ROOT" "$([[ ${1:-} == start ]] && echo rebuild)"
# The manager over this script's stack file (stdout: what the subcommand prints).
manager() { "$MANAGER" --file "$ROOT/deploy/test-services.toml" "$@"; }
# The component runs (the manager's status line for it says so).
running() { { manager status 2>/dev/null || true; } | grep -q "^$1 *running "; }

# ---------------------------------------------------------------------------------------------------
# TLS: a throwaway CA and a server certificate for localhost signed by it

# Made once per state folder and kept across stop/start, so a shell that exported TEST_TLS_CA_FILE keeps
# working; made again only when a file is missing or broken or a certificate has less than two days
# left. EC P-256 keys, 30 days. The CA key stays (mode 600) in case a test wants to issue more.
TLS_DAYS=30

tls_valid() {
    local f
    for f in ca.pem ca.key server.pem server.key; do
        [[ -s $TLS_DIR/$f ]] || return 1
    done
    openssl x509 -noout -checkend 172800 -in "$TLS_DIR/ca.pem" >/dev/null 2>&1 &&
        openssl x509 -noout -checkend 172800 -in "$TLS_DIR/server.pem" >/dev/null 2>&1 &&
        openssl verify -CAfile "$TLS_DIR/ca.pem" -purpose sslserver -verify_hostname localhost \
            "$TLS_DIR/server.pem" >/dev/null 2>&1 &&
        openssl verify -CAfile "$TLS_DIR/ca.pem" -purpose sslserver -verify_ip 127.0.0.1 \
            "$TLS_DIR/server.pem" >/dev/null 2>&1 &&
        [[ $(openssl x509 -noout -pubkey -in "$TLS_DIR/server.pem" 2>/dev/null) == \
            "$(openssl pkey -pubout -in "$TLS_DIR/server.key" 2>/dev/null)" ]]
}

make_tls() {
    command -v openssl >/dev/null || die "openssl is missing: run scripts/install-deps.sh"
    local tmp
    tmp=$(mktemp -d "$STATE/tls.new.XXXXXX")
    cat >"$tmp/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    if ! (
        set -e
        cd "$tmp"
        umask 077
        openssl req -x509 -new -config openssl.cnf -extensions ca_ext -sha256 -days "$TLS_DAYS" \
            -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
            -subj "/CN=Pool Selector test CA $(openssl rand -hex 4)"
        openssl req -new -config openssl.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout server.key -out server.csr -subj "/CN=localhost"
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
            -sha256 -days "$TLS_DAYS" -extfile openssl.cnf -extensions server_ext -out server.pem
        rm -f server.csr openssl.cnf
        chmod 644 ca.pem server.pem
        chmod 755 .
    ) >"$STATE/openssl.log" 2>&1; then
        cat "$STATE/openssl.log" >&2
        rm -rf "$tmp"
        die "could not make the test CA and server certificate (log: $STATE/openssl.log)"
    fi
    rm -rf "$TLS_DIR"
    mv "$tmp" "$TLS_DIR"
}

ensure_tls() {
    mkdir -p "$STATE"
    tls_valid && return 0
    log "making a throwaway CA and a server certificate for localhost in $TLS_DIR"
    make_tls
    tls_valid || die "the certificates made in $TLS_DIR do not verify (log: $STATE/openssl.log)"
    # A server still running holds the previous certificate, which the new CA did not sign.
    local c
    for c in redis rabbitmq; do
        if running "$c"; then
            log "restarting $c for the new certificate"
            manager restart "$c" >&2
        fi
    done
}

case "${1:-}" in
start)
    ensure_tls
    manager up >&2
    manager env
    ;;
stop) manager down ;;
env) manager env ;;
status) manager status ;;
stop-rabbitmq) manager stop rabbitmq ;;
start-rabbitmq) ensure_tls && manager start rabbitmq ;;
restart-rabbitmq) ensure_tls && manager restart rabbitmq ;;
stop-redis) manager stop redis ;;
start-redis) ensure_tls && manager start redis ;;
stop-s3) manager stop moto ;;
start-s3) manager start moto ;;
ctl)
    shift
    exec "$MANAGER" --file "$ROOT/deploy/test-services.toml" run rabbitmq "$ROOT/scripts/lib/rabbitmq-node.sh" ctl "$@"
    ;;
*)
    sed -n '2,/^set -e/p' "$SCRIPT" | sed -n 's/^# \{0,1\}//p' >&2
    exit 2
    ;;
esac
