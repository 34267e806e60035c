#!/usr/bin/env bash
# The whole platform on one machine, as local processes (no Docker): `make up` / `down` / `status` / `logs`.
#
#   scripts/stack.sh up        start what is not running, wait until each piece is ready, print the URLs
#   scripts/stack.sh down      stop exactly what `up` started (by pid file) and delete its data
#   scripts/stack.sh status    one line per component; exit 0 only when all of them run
#   scripts/stack.sh logs [component...]   follow the logs (all components by default; Ctrl-C stops)
#   scripts/stack.sh restart SERVICE...   stop these services and start them again, each with the caller's
#                              environment on top of its own (SIMULATE_WORKLOAD_DURATION_IN_SEC=0.5 scripts/stack.sh
#                              restart ingest-worker) and the binary it ran, and wait until they are ready
#   scripts/stack.sh stop SERVICE...      stop these services only (`restart` or `up` starts them again)
#   scripts/stack.sh env       print the stack's URLs as shell exports (for scripts and tests)
#   scripts/stack.sh prometheus-config   print the Prometheus config `up` generates from deploy/prometheus.yml
#   scripts/stack.sh rabbitmq-config     print the settings `up` adds to the broker's rabbitmq.conf (compose's
#                              deploy/rabbitmq/rabbitmq.conf: max_message_size)
#
# Started, in order: an S3 server (moto, from the repo venv .venv) with a bucket, RabbitMQ with the
# management plugin (its own epmd, node name and ports; max_message_size from deploy/rabbitmq/rabbitmq.conf,
# as compose and Kubernetes set it), Redis, intake (POST /events, publishing to
# RabbitMQ), pool-selector, compactor (a pass every STACK_COMPACTOR_EVERY, rolling up hours
# STACK_COMPACTOR_SETTLE after they close, into the same bucket pool-selector reads), ingest-worker,
# monitor, relay, Prometheus (scraping every service, config generated from deploy/prometheus.yml), and
# an event-generator streaming to RabbitMQ at STACK_GENERATOR_RATE events/s.
#
# State (pid files, data, logs) lives in STACK_DIR (default .stack/, git-ignored). Ports (defaults
# chosen away from the services' own defaults and from scripts/test-services.sh's 17100-18008):
#
#   STACK_RELAY_PORT 16080     STACK_SELECTOR_PORT 16050   STACK_MONITOR_PORT 16095
#   STACK_WORKER_PORT 16096    STACK_PROMETHEUS_PORT 16090 STACK_S3_PORT 16000
#   STACK_AMQP_PORT 16001      STACK_RABBITMQ_MGMT_PORT 16002   STACK_REDIS_PORT 16003
#   STACK_EPMD_PORT 16004      STACK_ERLANG_DIST_PORT 16005  STACK_COMPACTOR_PORT 16097
#   STACK_RELAY_ADMIN_PORT 16081 (the relay's /metrics, /docs, /openapi.json)
#   STACK_INTAKE_PORT 16098 (intake: POST /events)   STACK_LAUNCHER_PORT 16099 (launcher: POST /launch)
#
# The intake accepts POST /events with the bearer token STACK_INTAKE_TOKEN (its INTAKE_TOKENS; default
# dev-token). The launcher accepts its routes with the bearer token STACK_LAUNCHER_TOKEN (its
# LAUNCHER_TOKENS, as caller `dev`; default dev-launcher-token, poolctl's default too). pool-selector only
# reads the bucket: it gets no RabbitMQ or intake setting. The compactor signs rollups and pool-selector
# checks them with ROLLUP_HMAC_KEY, a random key kept in STACK_DIR/rollup-hmac-key (made on first use).
#
# Other settings: STACK_GENERATOR_RATE (50), STACK_BUCKET (pool-events), STACK_LOG_LEVEL (INFO),
# STACK_COMPACTOR_EVERY (1m), STACK_COMPACTOR_SETTLE (2m; short, so a closed hour is rolled up soon),
# STACK_BUILD (`missing`: build the binaries only when one is missing; `always`: run cargo build first;
# `never`), STACK_PROFILE (`release`, the default, for measurements; `debug`: the binaries of the test
# build, which is how `make test` runs the stack test without a release build), CARGO_TARGET_DIR
# (binaries are taken from $CARGO_TARGET_DIR/<profile>, default target/<profile>).
# The ports in force are recorded in STACK_DIR at `up` and reused by every later command until `down`.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SCRIPT")/.." && pwd)"
STATE="${STACK_DIR:-$ROOT/.stack}"
mkdir -p "$STATE" 2>/dev/null || true
STATE="$(cd "$STATE" 2>/dev/null && pwd || echo "$STATE")"
VENV="$ROOT/.venv"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case $TARGET in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
PROFILE="${STACK_PROFILE:-release}"
case $PROFILE in
release) BUILD_CMD=(cargo build --release --workspace --bins) ;;
debug) BUILD_CMD=(cargo build --workspace --bins) ;;
*)
    echo "stack: STACK_PROFILE must be release or debug (got $PROFILE)" >&2
    exit 1
    ;;
esac
BIN="$TARGET/$PROFILE"
BINARIES=(pool-selector compactor ingest-worker relay monitor intake event-generator launcher pool-amqp)
# Start order; `down` stops the producers (event-generator, intake) first and storage last.
COMPONENTS=(s3 epmd rabbitmq redis intake pool-selector compactor ingest-worker monitor relay launcher prometheus event-generator)

# log, die, port_open, running, pid_alive, spawn, wait_for, stop_pid and the moto, Redis, epmd and
# RabbitMQ plumbing, shared with scripts/test-services.sh.
SUPERVISE_NAME=stack
SUPERVISE_PORT_HINT="; set STACK_*_PORT (see scripts/stack.sh)"
# shellcheck source=lib/supervise.sh source-path=SCRIPTDIR
source "$(dirname "$SCRIPT")/lib/supervise.sh"
# STACK_CHAOS=1: the chaos topology (faultproxy, a second pool-selector behind nginx); chaos/README.md.
# shellcheck source=lib/chaos-topology.sh source-path=SCRIPTDIR
source "$(dirname "$SCRIPT")/lib/chaos-topology.sh"

# A component's files in STATE: its pid file and its log.
pidfile() { echo "$STATE/run/$1.pid"; }
logfile() { echo "$STATE/logs/$1.log"; }
alive() { pid_alive "$(pidfile "$1")"; }
any_alive() {
    local c
    for c in "${COMPONENTS[@]}"; do alive "$c" && return 0; done
    return 1
}

# ---------------------------------------------------------------------------------------------------
# Settings

load_settings() {
    if [[ -f $STATE/settings ]]; then
        # shellcheck disable=SC1091
        source "$STATE/settings"
        # A stack started before the compactor (or the relay's admin port, or the intake) joined has no
        # port recorded.
        COMPACTOR_PORT=${COMPACTOR_PORT:-${STACK_COMPACTOR_PORT:-16097}}
        RELAY_ADMIN_PORT=${RELAY_ADMIN_PORT:-${STACK_RELAY_ADMIN_PORT:-16081}}
        INTAKE_PORT=${INTAKE_PORT:-${STACK_INTAKE_PORT:-16098}}
        INTAKE_TOKEN=${INTAKE_TOKEN:-${STACK_INTAKE_TOKEN:-dev-token}}
        LAUNCHER_PORT=${LAUNCHER_PORT:-${STACK_LAUNCHER_PORT:-16099}}
        LAUNCHER_TOKEN=${LAUNCHER_TOKEN:-${STACK_LAUNCHER_TOKEN:-dev-launcher-token}}
        SIMULATE_TRUTH=${SIMULATE_TRUTH:-${STACK_SIMULATE_TRUTH:-}}
    else
        load_fresh_settings
    fi
    chaos_components
    RABBIT_NODE="poolstack$AMQP_PORT@localhost"
}

load_fresh_settings() {
    RELAY_PORT=${STACK_RELAY_PORT:-16080}
    RELAY_ADMIN_PORT=${STACK_RELAY_ADMIN_PORT:-16081}
    INTAKE_PORT=${STACK_INTAKE_PORT:-16098}
    INTAKE_TOKEN=${STACK_INTAKE_TOKEN:-dev-token}
    LAUNCHER_PORT=${STACK_LAUNCHER_PORT:-16099}
    LAUNCHER_TOKEN=${STACK_LAUNCHER_TOKEN:-dev-launcher-token}
    SIMULATE_TRUTH=${STACK_SIMULATE_TRUTH:-}
    SELECTOR_PORT=${STACK_SELECTOR_PORT:-16050}
    MONITOR_PORT=${STACK_MONITOR_PORT:-16095}
    WORKER_PORT=${STACK_WORKER_PORT:-16096}
    COMPACTOR_PORT=${STACK_COMPACTOR_PORT:-16097}
    PROMETHEUS_PORT=${STACK_PROMETHEUS_PORT:-16090}
    S3_PORT=${STACK_S3_PORT:-16000}
    AMQP_PORT=${STACK_AMQP_PORT:-16001}
    MGMT_PORT=${STACK_RABBITMQ_MGMT_PORT:-16002}
    REDIS_PORT=${STACK_REDIS_PORT:-16003}
    EPMD_PORT=${STACK_EPMD_PORT:-16004}
    DIST_PORT=${STACK_ERLANG_DIST_PORT:-16005}
    GENERATOR_RATE=${STACK_GENERATOR_RATE:-50}
    BUCKET=${STACK_BUCKET:-pool-events}
    RABBIT_DIR=$(rabbit_dir "$STATE" pool-stack)
    chaos_fresh_settings
}

save_settings() {
    local v
    {
        for v in RELAY_PORT RELAY_ADMIN_PORT SELECTOR_PORT MONITOR_PORT WORKER_PORT COMPACTOR_PORT PROMETHEUS_PORT \
            S3_PORT AMQP_PORT MGMT_PORT REDIS_PORT EPMD_PORT DIST_PORT GENERATOR_RATE BUCKET RABBIT_DIR INTAKE_PORT \
            INTAKE_TOKEN LAUNCHER_PORT LAUNCHER_TOKEN SIMULATE_TRUTH "${CHAOS_SETTINGS[@]}"; do
            printf '%s=%q\n' "$v" "${!v}"
        done
    } >"$STATE/settings"
}

# guest: the node's administrator, which declares the topology (pool-amqp declare) and nothing else.
amqp_url() { echo "amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f"; }
# A service's own least-privileged user (rabbit_users, deploy/rabbitmq/permissions.tsv): ROLE's URL.
amqp_url_as() {
    echo "amqp://pool-$1:$(rabbit_user_password "$STATE/amqp-users" "pool-$1")@127.0.0.1:$AMQP_PORT/%2f"
}
# The topology, declared once by the administrator; services only check that it exists.
declare_topology() {
    AMQP_URL="$(amqp_url)" "$BIN/pool-amqp" declare >>"$(logfile rabbitmq)" 2>&1 ||
        die "declaring the RabbitMQ topology failed (log: $(logfile rabbitmq))"
}
s3_env() {
    echo AWS_ENDPOINT_URL="http://127.0.0.1:$(s3_service_port)" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
        AWS_REGION=us-east-1 EVENTS_URL="s3://$BUCKET/events/"
}

exports() {
    cat <<EOF
export STACK_DIR='$STATE'
export STACK_RELAY_URL='http://127.0.0.1:$RELAY_PORT'
export STACK_RELAY_ADMIN_URL='http://127.0.0.1:$RELAY_ADMIN_PORT'
export STACK_INTAKE_URL='http://127.0.0.1:$INTAKE_PORT'
export STACK_LAUNCHER_URL='http://127.0.0.1:$LAUNCHER_PORT'
export STACK_INTAKE_TOKEN='$INTAKE_TOKEN'
export STACK_LAUNCHER_TOKEN='$LAUNCHER_TOKEN'
export STACK_SELECTOR_URL='http://127.0.0.1:$SELECTOR_PORT'
export STACK_MONITOR_URL='http://127.0.0.1:$MONITOR_PORT'
export STACK_WORKER_URL='http://127.0.0.1:$WORKER_PORT'
export STACK_COMPACTOR_URL='http://127.0.0.1:$COMPACTOR_PORT'
export STACK_PROMETHEUS_URL='http://127.0.0.1:$PROMETHEUS_PORT'
export STACK_S3_ENDPOINT='http://127.0.0.1:$S3_PORT'
export STACK_EVENTS_URL='s3://$BUCKET/events/'
export STACK_AMQP_URL='$(amqp_url)'
export STACK_RABBITMQ_MANAGEMENT_URL='http://guest:guest@127.0.0.1:$MGMT_PORT'
export STACK_REDIS_URL='redis://127.0.0.1:$REDIS_PORT'
EOF
    chaos_exports
}

# ---------------------------------------------------------------------------------------------------
# Process plumbing

# The library's spawn, wait_for and stop_pid for a component by name (its files: pidfile, logfile).
spawn_component() {
    local name=$1
    shift
    spawn "$(pidfile "$name")" "$(logfile "$name")" "$@"
}
wait_component() {
    local name=$1
    shift
    wait_for "$name" "$(pidfile "$name")" "$(logfile "$name")" "$@"
}
# Stop a component: SIGTERM, SIGKILL after `grace` seconds, then anything left in its session.
stop_component() { stop_pid "$1" "$(pidfile "$1")" "${2:-10}" session; }

# ---------------------------------------------------------------------------------------------------
# Prerequisites

check_prerequisites() {
    local missing=()
    local cmd
    for cmd in redis-server redis-cli prometheus epmd setsid curl; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    [[ -x $RABBIT_LIB/rabbitmq-server ]] || missing+=(rabbitmq-server)
    [[ -x $VENV/bin/moto_server ]] || missing+=(moto_server)
    if ((${#missing[@]})); then
        log "missing: ${missing[*]}; running scripts/install-deps.sh"
        "$ROOT/scripts/install-deps.sh" ||
            die "scripts/install-deps.sh failed (as a user other than root it prints the apt-get command to run)"
    fi
}

build_binaries() {
    local mode=${STACK_BUILD:-missing} b missing=()
    for b in "${BINARIES[@]}"; do
        [[ -x $BIN/$b ]] || missing+=("$b")
    done
    case $mode in
    always) ;;
    missing) ((${#missing[@]})) || return 0 ;;
    never)
        ((${#missing[@]} == 0)) || die "$PROFILE binaries missing in $BIN: ${missing[*]} (STACK_BUILD=never)"
        return 0
        ;;
    *) die "STACK_BUILD must be missing, always or never (got $mode)" ;;
    esac
    # The same command as make run and make bench: one feature set, so no script rebuilds DataFusion.
    log "building $PROFILE binaries into $BIN (${BUILD_CMD[*]})"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" "${BUILD_CMD[@]}") >&2 ||
        die "cargo build failed"
    for b in "${BINARIES[@]}"; do
        [[ -x $BIN/$b ]] || die "cargo build did not produce $BIN/$b"
    done
}

# ---------------------------------------------------------------------------------------------------
# Components

start_s3() { moto_start "$(pidfile s3)" "$(logfile s3)" "$VENV/bin/moto_server" "$S3_PORT"; }
make_bucket() {
    # Idempotent: moto answers 200 for a bucket this account already owns.
    curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$S3_PORT/$BUCKET" ||
        die "could not create bucket $BUCKET on the S3 server"
}

start_epmd() { epmd_start "$(pidfile epmd)" "$(logfile epmd)"; }

# The broker settings compose mounts (deploy/rabbitmq/rabbitmq.conf, its lines but comments and blanks):
# max_message_size, ingest-worker's MAX_MESSAGE_BYTES, as in every deploy. `stack.sh rabbitmq-config`
# prints them (scripts/check_artifacts.py checks the value).
RABBIT_SETTINGS="$ROOT/deploy/rabbitmq/rabbitmq.conf"
rabbit_settings() {
    [[ -r $RABBIT_SETTINGS ]] || die "$RABBIT_SETTINGS is missing"
    grep -Ev '^[[:space:]]*(#|$)' "$RABBIT_SETTINGS" || true
}
start_rabbitmq() {
    alive rabbitmq && return 0
    need_free_port "$AMQP_PORT" "RabbitMQ AMQP"
    need_free_port "$MGMT_PORT" "RabbitMQ management"
    local settings=()
    mapfile -t settings < <(rabbit_settings)
    ((${#settings[@]})) || die "no broker settings in $RABBIT_SETTINGS"
    rabbit_prepare "${settings[@]}"
    rabbit_start "$(pidfile rabbitmq)" "$(logfile rabbitmq)"
}
# `down` deletes the broker's data, so there is nothing to flush: the VM is killed at once.
stop_rabbitmq() { rabbit_stop "$(pidfile rabbitmq)" fast session; }

start_redis() { redis_start "$(pidfile redis)" "$(logfile redis)" "$STATE/data/redis" "$REDIS_PORT"; }

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# The services that sign (compactor) or check (pool-selector, and the chaos topology's second replica)
# rollups: start_service gives each ROLLUP_HMAC_KEY, the stack's one key (rollup_key).
ROLLUP_KEY_HOLDERS=(pool-selector pool-selector-2 compactor)
# ROLLUP_HMAC_KEY: random, one per state folder (STATE/rollup-hmac-key, owner-only), made at first use
# and reused by every later start, so the compactor, pool-selector and any restart hold the same key.
rollup_key() {
    local f="$STATE/rollup-hmac-key"
    if [[ ! -s $f ]]; then
        (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$f") || die "could not write $f"
    fi
    cat "$f"
}

start_service() {
    local name=$1 port=$2 h key=()
    shift 2
    alive "$name" && return 0
    need_free_port "$port" "$name"
    for h in "${ROLLUP_KEY_HOLDERS[@]}"; do
        [[ $name == "$h" ]] && key=(ROLLUP_HMAC_KEY="$(rollup_key)")
    done
    spawn_component "$name" env LOG_LEVEL="${STACK_LOG_LEVEL:-INFO}" "${key[@]}" "$@"
}

# The intake takes POST /events from producers and publishes to RabbitMQ (the queue ingest-worker
# drains); it is ready once the broker answers.
start_intake() {
    start_service intake "$INTAKE_PORT" HOST=127.0.0.1 PORT="$INTAKE_PORT" HTTP_WORKERS=2 \
        AMQP_URL="$(amqp_url_as producer)" INTAKE_TOKENS="$INTAKE_TOKEN" "$BIN/intake"
}
# pool-selector only reads the bucket: no broker, no intake. It uses a rollup only when signed with the
# compactor's ROLLUP_HMAC_KEY (start_service gives both the stack's key).
start_pool_selector() {
    # shellcheck disable=SC2046
    start_service pool-selector "$SELECTOR_PORT" HOST=127.0.0.1 PORT="$SELECTOR_PORT" HTTP_WORKERS=2 \
        $(s3_env) "$BIN/pool-selector"
}
# The compactor reads and writes the bucket pool-selector reads (rollups under events/_rollups/, signed
# with ROLLUP_HMAC_KEY, which start_service gives it). A short settle time, so an hour the generator
# filled is rolled up a few minutes after it closes.
start_compactor() {
    # shellcheck disable=SC2046
    start_service compactor "$COMPACTOR_PORT" HOST=127.0.0.1 PORT="$COMPACTOR_PORT" \
        SETTLE="${STACK_COMPACTOR_SETTLE:-2m}" $(s3_env) "$BIN/compactor" --every "${STACK_COMPACTOR_EVERY:-1m}"
}
start_ingest_worker() {
    # shellcheck disable=SC2046
    start_service ingest-worker "$WORKER_PORT" METRICS_HOST=127.0.0.1 METRICS_PORT="$WORKER_PORT" \
        $(s3_env) AMQP_URL="$(amqp_url_as worker)" "$BIN/ingest-worker"
}
start_monitor() {
    start_service monitor "$MONITOR_PORT" HOST=127.0.0.1 PORT="$MONITOR_PORT" HTTP_WORKERS=1 \
        RABBITMQ_MANAGEMENT_URL="http://pool-monitor:$(rabbit_user_password "$STATE/amqp-users" pool-monitor)@127.0.0.1:$(mgmt_service_port)" \
        "$BIN/monitor"
}
# No per-client miss limit by default (STACK_MISS_RATE_PER_CLIENT): every local client, the load
# tests' included, comes from 127.0.0.1.
start_relay() {
    start_service relay "$RELAY_PORT" HOST=127.0.0.1 PORT="$RELAY_PORT" ADMIN_PORT="$RELAY_ADMIN_PORT" HTTP_WORKERS=2 \
        UPSTREAM_URL="http://127.0.0.1:$(selector_upstream_port)" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
        MISS_RATE_PER_CLIENT="${STACK_MISS_RATE_PER_CLIENT:-0}" "$BIN/relay"
}
# The launcher asks the relay for pools and sends outcomes to the intake; its launches live in Redis, its
# runs are real `spark-submit --master local[*]` jobs (PySpark from the repo venv) with their folders in
# the stack's state. Its one caller is `dev` (LAUNCHER_TOKENS dev:STACK_LAUNCHER_TOKEN).
# STACK_SIMULATE_TRUTH=FILE (a generator truth file) makes runs end as spot terminations with their
# pool's true probability.
start_launcher() {
    local simulate=()
    [[ -n $SIMULATE_TRUTH ]] && simulate=(SIMULATE_TRUTH="$SIMULATE_TRUTH")
    start_service launcher "$LAUNCHER_PORT" HOST=127.0.0.1 PORT="$LAUNCHER_PORT" HTTP_WORKERS=2 \
        LAUNCHER_TOKENS="dev:$LAUNCHER_TOKEN" \
        LAUNCH_TEMPLATES="$ROOT/deploy/launch-templates" RELAY_URL="http://127.0.0.1:$RELAY_PORT" \
        INTAKE_URL="http://127.0.0.1:$INTAKE_PORT" INTAKE_TOKEN="$INTAKE_TOKEN" \
        REDIS_URL="redis://127.0.0.1:$REDIS_PORT" SPARK_SUBMIT="$VENV/bin/spark-submit" \
        SPARK_WORK_DIR="$STATE/data/launcher" "${simulate[@]}" "$BIN/launcher"
}
start_event_generator() {
    alive event-generator && return 0
    spawn_component event-generator env LOG_LEVEL="${STACK_LOG_LEVEL:-INFO}" "$BIN/event-generator" \
        --sink "$(amqp_url_as producer)" --rate "$GENERATOR_RATE" --events 0
}
# The generator has no port: it is "ready" once it has run for two seconds without exiting.
generator_settled() {
    local t0=$SECONDS
    while ((SECONDS - t0 < 2)); do
        alive event-generator || {
            tail -n 30 "$(logfile event-generator)" >&2 || true
            die "event-generator exited during start-up (log: $(logfile event-generator))"
        }
        sleep 0.2
    done
}

# Prometheus scrapes with deploy/prometheus.yml, the file docker compose uses, with the compose
# service addresses rewritten to this stack's local ports (the only differences).
# The compactor's target is rewritten like the others when the shared file lists one (any port); when
# it does not, a compactor job is added as the first scrape config, so the local stack scrapes it either
# way and never twice.
prometheus_config() {
    local config
    config=$(sed -E -e "s#pool-selector-1:5050#127.0.0.1:$SELECTOR_PORT#" \
        -e "/pool-selector-2:5050/d" \
        -e "s#intake:8000#127.0.0.1:$INTAKE_PORT#" \
        -e "s#relay:9108#127.0.0.1:$RELAY_ADMIN_PORT#" \
        -e "s#monitor:8090#127.0.0.1:$MONITOR_PORT#" \
        -e "s#ingest-worker:9091#127.0.0.1:$WORKER_PORT#" \
        -e "s#- compactor:[0-9]+#- 127.0.0.1:$COMPACTOR_PORT#" \
        -e "s#launcher:8100#127.0.0.1:$LAUNCHER_PORT#" \
        -e "s#localhost:9090#127.0.0.1:$PROMETHEUS_PORT#" \
        -e "s#environment: compose#environment: local#" \
        "$ROOT/deploy/prometheus.yml")
    if grep -qF -- "- 127.0.0.1:$COMPACTOR_PORT" <<<"$config"; then
        echo "$config"
        return
    fi
    awk -v target="127.0.0.1:$COMPACTOR_PORT" '
        { print }
        /^scrape_configs:/ {
            print "  - job_name: compactor"
            print "    metrics_path: /metrics"
            print "    static_configs:"
            print "      - targets:"
            print "          - " target
            print ""
        }' <<<"$config"
}
start_prometheus() {
    alive prometheus && return 0
    need_free_port "$PROMETHEUS_PORT" Prometheus
    mkdir -p "$STATE/data/prometheus"
    prometheus_config >"$STATE/prometheus.yml"
    spawn_component prometheus prometheus --config.file="$STATE/prometheus.yml" \
        --storage.tsdb.path="$STATE/data/prometheus" --storage.tsdb.retention.time=1d \
        --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
}

# Before starting anything: the ports of every component that is not running yet must be free, so a
# clash stops `up` with nothing half started.
preflight_ports() {
    local c p
    for c in "${COMPONENTS[@]}"; do
        alive "$c" && continue
        for p in $(component_ports "$c"); do
            need_free_port "$p" "$c"
        done
    done
}
component_ports() {
    case $1 in
    s3) echo "$S3_PORT" ;;
    epmd) echo "$EPMD_PORT" ;;
    rabbitmq) echo "$AMQP_PORT $MGMT_PORT $DIST_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
    intake) echo "$INTAKE_PORT" ;;
    pool-selector) echo "$SELECTOR_PORT" ;;
    compactor) echo "$COMPACTOR_PORT" ;;
    ingest-worker) echo "$WORKER_PORT" ;;
    monitor) echo "$MONITOR_PORT" ;;
    relay) echo "$RELAY_PORT $RELAY_ADMIN_PORT" ;;
    launcher) echo "$LAUNCHER_PORT" ;;
    prometheus) echo "$PROMETHEUS_PORT" ;;
    *) chaos_ports "$1" ;;
    esac
}

# ---------------------------------------------------------------------------------------------------
# Commands

cmd_up() {
    local t0=$SECONDS
    # A failed start leaves what did start running (its logs say why the rest did not): say how to stop it.
    trap 'rc=$?; if ((rc != 0)) && any_alive; then log "up failed; what started is still running: scripts/stack.sh status, make down"; fi' EXIT
    check_prerequisites
    build_binaries
    if [[ ! -f $STATE/settings ]]; then
        # A fresh start: the previous run's logs and stale pid files go.
        rm -rf "$STATE/logs" "$STATE/run"
    fi
    mkdir -p "$STATE/run" "$STATE/logs"
    load_settings
    local already=() c
    for c in "${COMPONENTS[@]}"; do alive "$c" && already+=("$c"); done
    if ((${#already[@]} == ${#COMPONENTS[@]})); then
        log "already running (nothing started): ${already[*]}"
    elif ((${#already[@]})); then
        log "already running, left alone: ${already[*]}"
    fi
    preflight_ports
    save_settings

    start_s3
    start_epmd
    start_rabbitmq
    start_redis
    wait_component s3 60 s3_answers "$S3_PORT"
    make_bucket
    wait_component redis 20 redis_answers "$REDIS_PORT"
    wait_component rabbitmq 120 rabbit_answers
    declare_topology
    rabbit_users "$MGMT_PORT" "$STATE/amqp-users"
    log "S3, RabbitMQ and Redis ready ($((SECONDS - t0))s)"
    start_faultproxy

    start_intake
    start_pool_selector
    start_compactor
    start_ingest_worker
    start_monitor
    # /ready: the broker is reachable, so a POST /events from now on is published.
    wait_component intake 60 http_ok "http://127.0.0.1:$INTAKE_PORT/ready"
    wait_component pool-selector 60 http_ok "http://127.0.0.1:$SELECTOR_PORT/ready"
    wait_component compactor 60 http_ok "http://127.0.0.1:$COMPACTOR_PORT/health"
    wait_component ingest-worker 60 http_ok "http://127.0.0.1:$WORKER_PORT/health"
    wait_component monitor 60 http_ok "http://127.0.0.1:$MONITOR_PORT/ready"
    start_selector_replica
    start_relay
    wait_component relay 60 http_ok "http://127.0.0.1:$RELAY_PORT/ready"
    start_launcher
    wait_component launcher 60 http_ok "http://127.0.0.1:$LAUNCHER_PORT/ready"
    start_prometheus
    wait_component prometheus 60 http_ok "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
    start_event_generator
    generator_settled
    exports >"$STATE/env"

    # The printed curl must answer: wait until events streamed by the generator are stored and ranked.
    local url="http://127.0.0.1:$RELAY_PORT/get-pool" deadline=$((SECONDS + 90))
    until curl -fs -o /dev/null --max-time 5 "$url"; do
        ((SECONDS < deadline)) || die "no ranking through the relay after 90s ($url); see $STATE/logs/"
        local c
        for c in "${COMPONENTS[@]}"; do
            alive "$c" || die "$c stopped; see $(logfile "$c")"
        done
        sleep 1
    done
    log "up in $((SECONDS - t0))s"
    cat <<TXT

Pool Selector stack is running (state: $STATE; stop it with: make down)

  relay (the front door)  http://127.0.0.1:$RELAY_PORT
  relay admin             http://127.0.0.1:$RELAY_ADMIN_PORT/docs/ (Swagger UI), /metrics   (pool-selector: http://127.0.0.1:$SELECTOR_PORT/docs/)
  intake (POST /events)   http://127.0.0.1:$INTAKE_PORT/docs/ (Swagger UI), /metrics   (Authorization: Bearer $INTAKE_TOKEN)
  launcher (POST /launch) http://127.0.0.1:$LAUNCHER_PORT/docs/ (Swagger UI), /launches, /metrics   (Authorization: Bearer $LAUNCHER_TOKEN)
  Prometheus              http://127.0.0.1:$PROMETHEUS_PORT/   (scrape targets: /classic/targets with Debian's build)
  monitor                 http://127.0.0.1:$MONITOR_PORT/desired-worker-scale   (Swagger UI: /docs/)
  ingest-worker metrics   http://127.0.0.1:$WORKER_PORT/metrics
  compactor metrics       http://127.0.0.1:$COMPACTOR_PORT/metrics   (rollups in s3://$BUCKET/events/_rollups/)
  RabbitMQ management     http://127.0.0.1:$MGMT_PORT   (guest / guest)
  S3 (moto)               http://127.0.0.1:$S3_PORT   bucket s3://$BUCKET/events/ (keys test / test)
  Redis                   redis://127.0.0.1:$REDIS_PORT

  event-generator streams $GENERATOR_RATE events/s into RabbitMQ; ingest-worker stores them in S3. Producers
  post theirs to the intake, which publishes them to RabbitMQ the same way.

  curl -s 'http://127.0.0.1:$RELAY_PORT/get-pool?window=1h'
  curl -s 'http://127.0.0.1:$RELAY_PORT/pools?limit=3' -D - -o /dev/null | grep -i x-cache
  curl -s http://127.0.0.1:$MONITOR_PORT/desired-worker-scale
  curl -s -XPOST 'http://127.0.0.1:$INTAKE_PORT/events' -H 'Authorization: Bearer $INTAKE_TOKEN' \\
      -H 'content-type: application/x-ndjson' --data-binary @events.ndjson
  # the seed's launch (no body): the astronaut job on the best pool of the default instance types
  curl -s -X POST 'http://127.0.0.1:$LAUNCHER_PORT/launch' -H 'Authorization: Bearer $LAUNCHER_TOKEN'
  curl -s -XPOST 'http://127.0.0.1:$LAUNCHER_PORT/launch' -H 'Authorization: Bearer $LAUNCHER_TOKEN' \\
      -H 'content-type: application/json' -d '{"application":"astronauts","instance_types":["c6a.xlarge","m6a.xlarge"]}'
  curl -s 'http://127.0.0.1:$LAUNCHER_PORT/launches' -H 'Authorization: Bearer $LAUNCHER_TOKEN'
  poolctl launches   (poolctl sends LAUNCHER_TOKEN, default $LAUNCHER_TOKEN)

Logs: make logs (or $STATE/logs/); status: make status
TXT
}

# Spark runs the launcher started live in process groups of their own (so they survive a launcher
# restart); `down` stops them too, so nothing keeps running.
stop_launcher_runs() {
    local f pid
    for f in "$STATE"/data/launcher/*/pid; do
        [[ -f $f ]] || continue
        pid=$(cat "$f")
        [[ -n $pid ]] && kill -TERM -- "-$pid" 2>/dev/null || true
    done
}

cmd_down() {
    if [[ ! -f $STATE/settings ]]; then
        log "nothing to stop in $STATE"
        return 0
    fi
    load_settings
    stop_component event-generator 10
    # The launcher first (its runs go on and are picked up by the next launcher; stopped below), then
    # the producers: the intake answers what it is receiving (SIGTERM drains its requests).
    stop_component launcher 15
    stop_launcher_runs
    stop_component intake 15
    stop_component relay 15
    stop_component monitor 10
    # The worker flushes and acknowledges its open batch on SIGTERM (SHUTDOWN_GRACE, 25 s by default).
    stop_component ingest-worker 30
    # On SIGTERM the compactor finishes the pass in progress (seconds for this stack's history).
    stop_component compactor 30
    stop_component pool-selector 15
    stop_chaos_topology
    stop_component prometheus 15
    stop_component redis 10
    stop_rabbitmq
    stop_component epmd 5
    stop_component s3 10
    rabbit_remove_dir "$STATE"
    rm -rf "$STATE/data" "$STATE/settings" "$STATE/env" "$STATE/prometheus.yml"
    log "down (logs kept in $STATE/logs)"
}

component_url() {
    case $1 in
    s3) echo "http://127.0.0.1:$S3_PORT" ;;
    epmd) echo "127.0.0.1:$EPMD_PORT" ;;
    rabbitmq) echo "amqp 127.0.0.1:$AMQP_PORT, management http://127.0.0.1:$MGMT_PORT" ;;
    redis) echo "redis://127.0.0.1:$REDIS_PORT" ;;
    intake) echo "http://127.0.0.1:$INTAKE_PORT (POST /events)" ;;
    pool-selector) echo "http://127.0.0.1:$SELECTOR_PORT" ;;
    compactor) echo "http://127.0.0.1:$COMPACTOR_PORT/metrics" ;;
    ingest-worker) echo "http://127.0.0.1:$WORKER_PORT/metrics" ;;
    monitor) echo "http://127.0.0.1:$MONITOR_PORT" ;;
    relay) echo "http://127.0.0.1:$RELAY_PORT, admin http://127.0.0.1:$RELAY_ADMIN_PORT" ;;
    launcher) echo "http://127.0.0.1:$LAUNCHER_PORT (POST /launch)" ;;
    prometheus) echo "http://127.0.0.1:$PROMETHEUS_PORT" ;;
    event-generator) echo "$GENERATOR_RATE events/s to amqp 127.0.0.1:$AMQP_PORT" ;;
    esac
}

cmd_status() {
    if [[ ! -f $STATE/settings ]]; then
        echo "stack: not started ($STATE)"
        return 3
    fi
    load_settings
    local c up=0
    for c in "${COMPONENTS[@]}"; do
        if alive "$c"; then
            printf '%-16s running  pid %-8s %s\n' "$c" "$(cat "$(pidfile "$c")")" "$(component_url "$c")"
            up=$((up + 1))
        else
            printf '%-16s STOPPED  %-12s %s\n' "$c" "" "log: $(logfile "$c")"
        fi
    done
    ((up == ${#COMPONENTS[@]})) && return 0
    ((up == 0)) && return 3
    return 1
}

# The services `restart` and `stop` take (storage, the broker, Redis and Prometheus go with `up`/`down`).
SERVICES=(intake pool-selector compactor ingest-worker monitor relay launcher event-generator)

# Start one service and wait until it is ready, as `up` does.
start_and_wait() {
    case $1 in
    intake) start_intake && wait_component intake 60 http_ok "http://127.0.0.1:$INTAKE_PORT/ready" ;;
    pool-selector) start_pool_selector && wait_component pool-selector 60 http_ok "http://127.0.0.1:$SELECTOR_PORT/ready" ;;
    compactor) start_compactor && wait_component compactor 60 http_ok "http://127.0.0.1:$COMPACTOR_PORT/health" ;;
    ingest-worker) start_ingest_worker && wait_component ingest-worker 60 http_ok "http://127.0.0.1:$WORKER_PORT/health" ;;
    monitor) start_monitor && wait_component monitor 60 http_ok "http://127.0.0.1:$MONITOR_PORT/ready" ;;
    relay) start_relay && wait_component relay 60 http_ok "http://127.0.0.1:$RELAY_PORT/ready" ;;
    launcher) start_launcher && wait_component launcher 60 http_ok "http://127.0.0.1:$LAUNCHER_PORT/ready" ;;
    event-generator) start_event_generator && generator_settled ;;
    esac
}
# How long a service may take to stop on SIGTERM (as `down` allows).
stop_grace() {
    case $1 in
    ingest-worker | compactor) echo 30 ;;
    intake | relay | pool-selector | launcher) echo 15 ;;
    *) echo 10 ;;
    esac
}
# Check the SERVICE... arguments of `restart`/`stop` before touching anything.
check_services() {
    local verb=$1 c s ok
    shift
    (($#)) || die "$verb: name the services (${SERVICES[*]})"
    [[ -f $STATE/settings ]] || die "the stack is not up ($STATE): make up"
    for c in "$@"; do
        ok=""
        for s in "${SERVICES[@]}"; do [[ $c == "$s" ]] && ok=1; done
        [[ -n $ok ]] || die "$verb: $c is not a service of the stack (${SERVICES[*]})"
    done
}

cmd_stop_services() {
    shift
    check_services stop "$@"
    load_settings
    local c
    for c in "$@"; do stop_component "$c" "$(stop_grace "$c")"; done
}

cmd_restart() {
    shift
    check_services restart "$@"
    load_settings
    local c exe
    for c in "$@"; do
        # The binary it runs, so a shell with another CARGO_TARGET_DIR restarts the same build.
        if alive "$c" && exe=$(readlink "/proc/$(cat "$(pidfile "$c")")/exe" 2>/dev/null); then
            BIN=$(dirname "$exe")
        fi
        stop_component "$c" "$(stop_grace "$c")"
    done
    mkdir -p "$STATE/run" "$STATE/logs"
    for c in "$@"; do start_and_wait "$c"; done
    log "restarted: $*"
}

cmd_logs() {
    shift
    local names=("$@") files=() n
    ((${#names[@]})) || names=("${COMPONENTS[@]}")
    for n in "${names[@]}"; do
        [[ -f $(logfile "$n") ]] && files+=("$(logfile "$n")")
    done
    ((${#files[@]})) || die "no logs in $STATE/logs (components: ${COMPONENTS[*]})"
    exec tail -n 20 -F "${files[@]}"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
logs) cmd_logs "$@" ;;
restart) cmd_restart "$@" ;;
stop) cmd_stop_services "$@" ;;
prometheus-config)
    # The Prometheus configuration `up` uses (for scripts/check-artifacts.sh to check with promtool).
    load_settings
    prometheus_config
    ;;
rabbitmq-config)
    # The lines `up` adds to the broker's rabbitmq.conf (for scripts/check_artifacts.py: max_message_size).
    rabbit_settings
    ;;
env)
    [[ -f $STATE/env ]] || die "the stack is not up ($STATE)"
    cat "$STATE/env"
    ;;
*)
    sed -n '2,/^set -euo/p' "$SCRIPT" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
