#!/usr/bin/env bash
# Real servers for the test suite, as local processes on private ports: an S3 server (moto), RabbitMQ
# with the management plugin, and Redis. RabbitMQ (AMQP and management) and Redis also listen with TLS,
# using a throwaway CA made here with openssl.
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
# TEST_SERVICES_DIR; and one RabbitMQ user per role of deploy/rabbitmq/permissions.tsv (made by
# rabbit_users: pool-producer, pool-worker, pool-replay with their permissions on the default names,
# pool-monitor with the monitoring tag and no right) as TEST_AMQP_PRODUCER_URL, TEST_AMQP_WORKER_URL,
# TEST_AMQP_REPLAY_URL and TEST_RABBITMQ_MONITOR_URL (tests of other names make users of their own,
# testkit::users). State (pid files, data, logs, the `env` file, the CA and server certificate in
# tls/, which `stop` keeps) lives in TEST_SERVICES_DIR, default target/test-services (git-ignored).
# Ports: the first block 17100+k*100 (k = 0..9) whose nine ports are free, kept for as long as the
# state folder says the services run: +0 S3, +1 AMQP, +2 management, +3 Redis, +4 AMQPS, +5 Redis TLS,
# +6 management HTTPS, +7 epmd, +8 Erlang distribution. Only stdout carries the exports; progress and
# errors go to stderr.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SCRIPT")/.." && pwd)"
STATE="${TEST_SERVICES_DIR:-$ROOT/target/test-services}"
TLS_DIR="$STATE/tls"
VENV="$ROOT/.venv"
RABBIT_NODE="pooltest@localhost"

# log, die, port_open, running, pid_alive, spawn, wait_for, stop_pid and the moto, Redis, epmd and
# RabbitMQ plumbing; `make up` uses the RabbitMQ part too (scripts/lib/rabbitmq-node.sh).
SUPERVISE_NAME=test-services
# shellcheck source=lib/supervise.sh source-path=SCRIPTDIR
source "$(dirname "$SCRIPT")/lib/supervise.sh"

# ---------------------------------------------------------------------------------------------------
# Ports and paths

load_ports() {
    if [[ -f $STATE/ports ]]; then
        # A ports file written before the TLS listeners existed lacks their ports (and put epmd and the
        # Erlang distribution where they now go); `stop` still works with it, `start` asks for a stop.
        AMQPS_PORT="" REDISS_PORT="" MGMTS_PORT=""
        # shellcheck disable=SC1091
        source "$STATE/ports"
        return
    fi
    local base
    for base in 17100 17200 17300 17400 17500 17600 17700 17800 17900 18000; do
        local p busy=""
        for p in $(seq "$base" $((base + 8))); do
            if port_open "$p"; then
                busy=1
                break
            fi
        done
        if [[ -z $busy ]]; then
            S3_PORT=$base AMQP_PORT=$((base + 1)) MGMT_PORT=$((base + 2)) REDIS_PORT=$((base + 3))
            AMQPS_PORT=$((base + 4)) REDISS_PORT=$((base + 5)) MGMTS_PORT=$((base + 6))
            EPMD_PORT=$((base + 7)) DIST_PORT=$((base + 8))
            mkdir -p "$STATE"
            cat >"$STATE/ports" <<EOF
S3_PORT=$S3_PORT AMQP_PORT=$AMQP_PORT MGMT_PORT=$MGMT_PORT REDIS_PORT=$REDIS_PORT
AMQPS_PORT=$AMQPS_PORT REDISS_PORT=$REDISS_PORT MGMTS_PORT=$MGMTS_PORT
EPMD_PORT=$EPMD_PORT DIST_PORT=$DIST_PORT
RABBIT_DIR=$(rabbit_dir "$STATE" pool-test-services)
EOF
            # shellcheck disable=SC1091
            source "$STATE/ports"
            return
        fi
    done
    die "no free block of ports found in 17100-18008"
}

exports() {
    cat <<EOF
export TEST_SERVICES_DIR='$STATE'
export TEST_S3_ENDPOINT='http://127.0.0.1:$S3_PORT'
export TEST_AMQP_URL='amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f'
export TEST_RABBITMQ_MANAGEMENT_URL='http://guest:guest@127.0.0.1:$MGMT_PORT'
export TEST_REDIS_URL='redis://127.0.0.1:$REDIS_PORT'
export TEST_TLS_CA_FILE='$TLS_DIR/ca.pem'
export TEST_AMQPS_URL='amqps://guest:guest@localhost:$AMQPS_PORT/%2f'
export TEST_RABBITMQ_MANAGEMENT_HTTPS_URL='https://guest:guest@localhost:$MGMTS_PORT'
export TEST_REDISS_URL='rediss://localhost:$REDISS_PORT'
export TEST_RABBITMQ_NODE='$RABBIT_NODE'
export TEST_RABBITMQ_CTL='$SCRIPT'
export TEST_AMQP_PRODUCER_URL='amqp://pool-producer:$(rabbit_user_password "$STATE/amqp-users" pool-producer)@127.0.0.1:$AMQP_PORT/%2f'
export TEST_AMQP_WORKER_URL='amqp://pool-worker:$(rabbit_user_password "$STATE/amqp-users" pool-worker)@127.0.0.1:$AMQP_PORT/%2f'
export TEST_AMQP_REPLAY_URL='amqp://pool-replay:$(rabbit_user_password "$STATE/amqp-users" pool-replay)@127.0.0.1:$AMQP_PORT/%2f'
export TEST_RABBITMQ_MONITOR_URL='http://pool-monitor:$(rabbit_user_password "$STATE/amqp-users" pool-monitor)@127.0.0.1:$MGMT_PORT'
EOF
    # PySpark's spark-submit from the repo venv (scripts/install-deps.sh), for the launcher's real runs.
    if [[ -x $ROOT/.venv/bin/spark-submit ]]; then
        echo "export TEST_SPARK_SUBMIT='$ROOT/.venv/bin/spark-submit'"
    fi
}

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
    tls_valid && return 0
    log "making a throwaway CA and a server certificate for localhost in $TLS_DIR"
    make_tls
    tls_valid || die "the certificates made in $TLS_DIR do not verify (log: $STATE/openssl.log)"
    # A server still running holds the previous certificate, which the new CA did not sign.
    if pid_alive "$STATE/redis.pid"; then
        log "restarting Redis for the new certificate"
        stop_redis
        start_redis
        wait_redis
    fi
    if pid_alive "$STATE/rabbitmq.pid"; then
        log "restarting RabbitMQ for the new certificate"
        stop_rabbit
        start_rabbit
        wait_rabbit
    fi
}

# A TLS handshake with 127.0.0.1:port whose certificate verifies against the CA for the name localhost.
tls_handshake() {
    timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername localhost -verify_hostname localhost \
        -CAfile "$TLS_DIR/ca.pem" -verify_return_error -brief </dev/null
}

# ---------------------------------------------------------------------------------------------------
# S3 (moto)

start_s3() { moto_start "$STATE/moto.pid" "$STATE/moto.log" "$VENV/bin/moto_server" "$S3_PORT"; }
wait_s3() { wait_for "S3 (moto)" "$STATE/moto.pid" "$STATE/moto.log" 60 s3_answers "$S3_PORT"; }
stop_s3() { stop_pid "S3 (moto)" "$STATE/moto.pid" 10; }

# ---------------------------------------------------------------------------------------------------
# Redis

# One process, two ports: plain and TLS (server certificate only; clients need none).
start_redis() {
    pid_alive "$STATE/redis.pid" && return 0
    need_free_port "$REDIS_PORT" "Redis"
    need_free_port "$REDISS_PORT" "Redis TLS"
    ensure_tls
    redis_start "$STATE/redis.pid" "$STATE/redis.log" "$STATE/redis" "$REDIS_PORT" \
        --tls-port "$REDISS_PORT" --tls-cert-file "$TLS_DIR/server.pem" \
        --tls-key-file "$TLS_DIR/server.key" --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients no
}
redis_ready() {
    redis_answers "$REDIS_PORT" &&
        [[ $(redis-cli --tls --cacert "$TLS_DIR/ca.pem" --sni localhost -h 127.0.0.1 -p "$REDISS_PORT" \
            ping) == PONG ]]
}
wait_redis() { wait_for "Redis" "$STATE/redis.pid" "$STATE/redis.log" 20 redis_ready; }
stop_redis() { stop_pid "Redis" "$STATE/redis.pid" 10; }

# ---------------------------------------------------------------------------------------------------
# RabbitMQ, with a private epmd so nothing is shared with (or left in) the system's Erlang

# The node's configuration (rabbit_prepare) with TLS listeners next to the plain ones: AMQPS and HTTPS
# management, server certificate only. The certificates are copied where the rabbitmq user can read
# them (the state folder may be private).
prepare_rabbit() {
    local tls="$RABBIT_DIR/tls"
    mkdir -p "$tls"
    cp "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" "$TLS_DIR/server.key" "$tls/"
    chmod 644 "$tls/ca.pem" "$tls/server.pem"
    chmod 600 "$tls/server.key"
    rabbit_prepare \
        "listeners.ssl.default = 127.0.0.1:$AMQPS_PORT" \
        "ssl_options.cacertfile = $tls/ca.pem" \
        "ssl_options.certfile = $tls/server.pem" \
        "ssl_options.keyfile = $tls/server.key" \
        "ssl_options.verify = verify_none" \
        "ssl_options.fail_if_no_peer_cert = false" \
        "management.ssl.ip = 127.0.0.1" \
        "management.ssl.port = $MGMTS_PORT" \
        "management.ssl.cacertfile = $tls/ca.pem" \
        "management.ssl.certfile = $tls/server.pem" \
        "management.ssl.keyfile = $tls/server.key"
}

start_epmd() { epmd_start "$STATE/epmd.pid" "$STATE/epmd.log"; }

start_rabbit() {
    pid_alive "$STATE/rabbitmq.pid" && return 0
    need_free_port "$AMQP_PORT" "AMQP"
    need_free_port "$MGMT_PORT" "RabbitMQ management"
    need_free_port "$AMQPS_PORT" "AMQPS"
    need_free_port "$MGMTS_PORT" "RabbitMQ management HTTPS"
    ensure_tls
    prepare_rabbit
    start_epmd
    rabbit_start "$STATE/rabbitmq.pid" "$STATE/rabbitmq.log"
}
rabbit_ready() {
    rabbit_answers &&
        tls_handshake "$AMQPS_PORT" &&
        curl -fsS -o /dev/null -u guest:guest --cacert "$TLS_DIR/ca.pem" \
            --resolve "localhost:$MGMTS_PORT:127.0.0.1" "https://localhost:$MGMTS_PORT/api/overview"
}
wait_rabbit() { wait_for "RabbitMQ" "$STATE/rabbitmq.pid" "$STATE/rabbitmq.log" 90 rabbit_ready; }
# Graceful (data kept) unless `fast`; see rabbit_stop.
stop_rabbit() { rabbit_stop "$STATE/rabbitmq.pid" "${1:-}"; }
stop_epmd() { stop_pid "epmd" "$STATE/epmd.pid" 5; }

# ---------------------------------------------------------------------------------------------------

write_env() {
    exports >"$STATE/env.tmp"
    mv "$STATE/env.tmp" "$STATE/env"
}

cmd_start() {
    local t0=$SECONDS
    mkdir -p "$STATE"
    load_ports
    [[ -n $AMQPS_PORT ]] ||
        die "$STATE/ports comes from an older version of this script (no TLS ports): run $SCRIPT stop, then start"
    ensure_tls
    start_s3
    start_redis
    start_rabbit
    wait_s3
    log "S3 ready after $((SECONDS - t0))s"
    wait_redis
    wait_rabbit
    rabbit_users "$MGMT_PORT" "$STATE/amqp-users"
    log "RabbitMQ ready after $((SECONDS - t0))s"
    write_env
    log "ready in $((SECONDS - t0))s: S3 :$S3_PORT, AMQP :$AMQP_PORT (TLS :$AMQPS_PORT), management :$MGMT_PORT (HTTPS :$MGMTS_PORT), Redis :$REDIS_PORT (TLS :$REDISS_PORT) (state: $STATE)"
    cat "$STATE/env"
}

cmd_stop() {
    if [[ ! -f $STATE/ports ]]; then
        log "nothing to stop in $STATE"
        return 0
    fi
    load_ports
    stop_rabbit fast
    stop_epmd
    stop_redis
    stop_s3
    rabbit_remove_dir "$STATE"
    rm -rf "$STATE/redis" "$STATE/env" "$STATE/ports" "$STATE/amqp-users"
}

cmd_status() {
    [[ -f $STATE/ports ]] || {
        log "not started ($STATE)"
        return 1
    }
    load_ports
    local rc=0 name
    for name in moto redis epmd rabbitmq; do
        if pid_alive "$STATE/$name.pid"; then
            echo "$name: running (pid $(cat "$STATE/$name.pid"))"
        else
            echo "$name: stopped"
            rc=1
        fi
    done
    return $rc
}

need_started() {
    [[ -f $STATE/ports ]] || die "services are not started (run: scripts/test-services.sh start)"
    load_ports
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
env)
    need_started
    [[ -f $STATE/env ]] || die "services are starting or failed to start; see $STATE/*.log"
    cat "$STATE/env"
    ;;
status) cmd_status ;;
stop-rabbitmq)
    need_started
    stop_rabbit
    ;;
start-rabbitmq)
    need_started
    start_rabbit
    wait_rabbit
    ;;
restart-rabbitmq)
    need_started
    stop_rabbit
    start_rabbit
    wait_rabbit
    ;;
stop-redis)
    need_started
    stop_redis
    ;;
start-redis)
    need_started
    start_redis
    wait_redis
    ;;
stop-s3)
    need_started
    stop_s3
    ;;
start-s3)
    need_started
    start_s3
    wait_s3
    ;;
ctl)
    need_started
    shift
    cd "$RABBIT_DIR"
    rabbit_cmd "$RABBIT_LIB/rabbitmqctl" "$@"
    exec "${RABBIT_CMD[@]}"
    ;;
*)
    sed -n '2,/^set -e/p' "$SCRIPT" | sed -n 's/^# \{0,1\}//p' >&2
    exit 2
    ;;
esac
