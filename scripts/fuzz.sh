#!/usr/bin/env bash
# Schema-based fuzzing of every HTTP service (schemathesis against each service's /openapi.json), for
# `make test` (after the test suite, while the test servers run) and `make fuzz`.
#
#   eval "$(scripts/test-services.sh start)"; scripts/fuzz.sh     every service
#   scripts/fuzz.sh relay monitor                                 only these (all still start)
#   scripts/fuzz.sh install                                       only create the fuzzer's venv
#
# Started as local processes on free loopback ports, from the built binaries (nothing is built here):
#   * pool-selector over a small folder dataset written by event-generator (fixed seed); it only reads
#     (no broker, no intake settings);
#   * intake publishing POST /events to the test RabbitMQ (exchange and queues named fuzz.events*), with
#     the bearer token INTAKE_TOKENS=fuzz-token and per-token limits far above what the fuzzer sends;
#   * compactor `--every` over the same folder (SETTLE=0), so rollups appear while the fuzzer reads;
#   * ingest-worker draining fuzz.events.ingest into the same folder;
#   * the launcher picking pools through the relay and publishing its (simulated: SIMULATE_ONLY) runs'
#     outcomes to the intake, its launches in the test Redis, with one caller (LAUNCHER_TOKENS);
#   * relay in front of pool-selector, caching in the test Redis (a key prefix of its own per run);
#   * monitor polling the test RabbitMQ management API (two workloads: the fuzz queues).
# Each is ready once /health answers (and /ready where a service has one), within a deadline. Then
# every service that serves an OpenAPI document is fuzzed: `st run <schema URL> --url <base URL>`, the
# schema and the base URL taken separately (the relay's document comes from its admin listener when
# the binary has ADMIN_PORT). A service without a document (404) is listed as such. The fuzzer sends the
# intake's bearer header, so POST /events is exercised past authentication (events it accepts are
# published, and ingest-worker writes them into the folder pool-selector reads).
#
# The run fails when a check fails (default checks: no 5xx, and status code, content type, headers and
# body as the document declares them), when schemathesis reports an error, when a started process
# died or panicked, or when a required test server is missing. Failing requests are printed with
# their curl reproduction. Everything started is stopped on exit (by pid).
#
# Needs (make test and make fuzz provide them): TEST_REDIS_URL, TEST_AMQP_URL and
# TEST_RABBITMQ_MANAGEMENT_URL from scripts/test-services.sh; python3 with venv (the fuzzer's venv,
# .venv-fuzz, git-ignored, is created on first use from the Python package index).
#
# Settings (environment):
#   FUZZ_PROFILE        release | debug: binaries from $CARGO_TARGET_DIR/<profile> (default ./target).
#                       Default: of the profiles with all seven binaries, the one built last (make test
#                       sets debug: its test build has just made them).
#   FUZZ_MAX_EXAMPLES   examples per operation in the fuzzing phase (default 500; about 1 min in all)
#   FUZZ_SEED           schemathesis seed, for reproducible runs (default 20251126)
#   FUZZ_WORKERS        schemathesis workers (default 2)
#   FUZZ_CHECKS         schemathesis checks (default below, CHECKS)
#   FUZZ_DIR            logs, dataset, schemas and reports (default target/fuzz; emptied at start)
#   FUZZ_VENV           the fuzzer's venv (default .venv-fuzz)
#   FUZZ_VERBOSE=1      print schemathesis' whole output for every service, not only for failures
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${FUZZ_VENV:-$ROOT/.venv-fuzz}"
WORK="${FUZZ_DIR:-$ROOT/target/fuzz}"
ST_REQUIREMENT="schemathesis>=4,<5"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-500}"
SEED="${FUZZ_SEED:-20251126}"
WORKERS="${FUZZ_WORKERS:-2}"
# Every check of a response against the document: no 5xx, a declared status code, content type and
# headers, and a body matching the declared schema.
CHECKS="${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}"
BINARIES=(pool-selector intake relay monitor compactor ingest-worker event-generator launcher)
# The order services are fuzzed and summarised in.
SERVICES=(pool-selector intake relay monitor compactor ingest-worker launcher)
INTAKE_TOKEN="fuzz-token"
# The launcher's one caller (LAUNCHER_TOKENS fuzz:<this>): its routes are fuzzed past authentication.
LAUNCHER_TOKEN="fuzz-launcher-token"
START_DEADLINE=60

log() { echo "fuzz: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# ---------------------------------------------------------------------------------------------------
# The fuzzer's venv (created once, reused while it holds a schemathesis 4)

venv_ok() {
    [[ -x $VENV/bin/st ]] && "$VENV/bin/python" -c '
import sys
from importlib.metadata import version
sys.exit(0 if version("schemathesis").split(".")[0] == "4" else 1)' 2>/dev/null
}

install_venv() {
    if venv_ok; then
        log "schemathesis $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("schemathesis"))') present in $VENV"
        return 0
    fi
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        die "python3 with the venv module is required to create $VENV (scripts/install-deps.sh installs it)"
    fi
    log "creating $VENV with $ST_REQUIREMENT"
    [[ -x $VENV/bin/pip ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "$ST_REQUIREMENT"
    venv_ok || die "$VENV still lacks $ST_REQUIREMENT"
}

if [[ ${1:-} == install ]]; then
    install_venv
    exit 0
fi

# ---------------------------------------------------------------------------------------------------
# What to fuzz, with what

selected=("${SERVICES[@]}")
if (($#)); then
    for s in "$@"; do
        [[ " ${SERVICES[*]} " == *" $s "* ]] || die "unknown service '$s' (one of: ${SERVICES[*]})"
    done
    selected=("$@")
fi
is_selected() { [[ " ${selected[*]} " == *" $1 "* ]]; }

for v in TEST_REDIS_URL TEST_AMQP_URL TEST_RABBITMQ_MANAGEMENT_URL; do
    [[ -n ${!v:-} ]] || die "$v is not set: run under the test servers, e.g.
    eval \"\$(scripts/test-services.sh start)\"; scripts/fuzz.sh
(make test and make fuzz do this)"
done

# host:port of a URL such as redis://127.0.0.1:17103 or amqp://guest:guest@127.0.0.1:17101/%2f
url_hostport() { sed -E 's#^[a-z]+://([^@/]*@)?([^/?]+).*#\2#' <<<"$1"; }
port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
port_open "$(url_hostport "$TEST_REDIS_URL")" || die "Redis at TEST_REDIS_URL ($TEST_REDIS_URL) does not answer"
port_open "$(url_hostport "$TEST_AMQP_URL")" || die "RabbitMQ at TEST_AMQP_URL does not answer ($(url_hostport "$TEST_AMQP_URL"))"
curl -fsS -o /dev/null --max-time 5 "$TEST_RABBITMQ_MANAGEMENT_URL/api/overview" ||
    die "the RabbitMQ management API at TEST_RABBITMQ_MANAGEMENT_URL does not answer"

# The profile: FUZZ_PROFILE, else the one whose binaries are all there and newest.
profile_complete() {
    local b
    for b in "${BINARIES[@]}"; do [[ -x $TARGET_DIR/$1/$b ]] || return 1; done
}
if [[ -n ${FUZZ_PROFILE:-} ]]; then
    [[ $FUZZ_PROFILE == release || $FUZZ_PROFILE == debug ]] || die "FUZZ_PROFILE must be release or debug"
    PROFILE=$FUZZ_PROFILE
    profile_complete "$PROFILE" || die "binaries missing in $TARGET_DIR/$PROFILE (need ${BINARIES[*]}): run cargo build$([[ $PROFILE == release ]] && echo ' --release') --workspace --bins"
else
    # The profile built last: the one holding the most recently built binary.
    newest_binary() {
        local b n=""
        for b in "${BINARIES[@]}"; do
            if [[ -z $n || $TARGET_DIR/$1/$b -nt $n ]]; then n=$TARGET_DIR/$1/$b; fi
        done
        echo "$n"
    }
    PROFILE=""
    for p in release debug; do
        profile_complete "$p" || continue
        if [[ -z $PROFILE || $(newest_binary "$p") -nt $(newest_binary "$PROFILE") ]]; then
            PROFILE=$p
        fi
    done
    [[ -n $PROFILE ]] || die "no complete set of binaries (${BINARIES[*]}) in $TARGET_DIR/release or $TARGET_DIR/debug: run cargo build --workspace --bins (or make test, whose test build makes them)"
fi
BIN="$TARGET_DIR/$PROFILE"
stale=()
for b in "${BINARIES[@]}"; do
    newer=$(find "$ROOT/crates" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$BIN/$b" \( -name '*.rs' -o -name 'Cargo.*' \) -print -quit 2>/dev/null || true)
    [[ -z $newer ]] || stale+=("$b (older than ${newer#"$ROOT"/})")
done
((${#stale[@]} == 0)) || log "warning: binaries older than the sources, fuzzed as built: ${stale[*]}"

install_venv
PY="$VENV/bin/python"
ST="$VENV/bin/st"

# ---------------------------------------------------------------------------------------------------
# Processes

rm -rf "$WORK"
mkdir -p "$WORK/logs" "$WORK/reports" "$WORK/schemas"
WORK="$(cd "$WORK" && pwd)"
DATA="$WORK/events"

declare -A PID=()
STARTED=()
cleanup() {
    local rc=$? name pid deadline
    trap - EXIT INT TERM
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        name=${STARTED[i]}
        pid=${PID[$name]}
        kill -TERM "$pid" 2>/dev/null || continue
    done
    deadline=$((SECONDS + 15))
    for name in "${STARTED[@]}"; do
        pid=${PID[$name]}
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) did not stop after SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# has_setting BINARY VAR: the binary's --help names the environment variable VAR.
declare -A HELP=()
has_setting() {
    [[ -n ${HELP[$1]:-} ]] || HELP[$1]=$("$BIN/$1" --help 2>/dev/null)
    grep -qE "env: $2[]=]" <<<"${HELP[$1]}"
}

# start NAME VAR=VALUE... ARGS...: run the binary NAME in the background with these settings, output to
# $WORK/logs/NAME.log. A setting the binary does not read (per its --help) is an error, so a renamed
# variable cannot silently leave a service on its defaults (another broker queue, a slow poll, ...).
start() {
    local name=$1 settings=() s
    shift
    while (($#)) && [[ $1 == [A-Z]*=* ]]; do
        settings+=("$1")
        shift
    done
    for s in "${settings[@]}"; do
        has_setting "$name" "${s%%=*}" || die "$name does not read ${s%%=*} (not in $BIN/$name --help)"
    done
    env LOG_FORMAT=text "${settings[@]}" "$BIN/$name" "$@" </dev/null >"$WORK/logs/$name.log" 2>&1 &
    PID[$name]=$!
    STARTED+=("$name")
}

alive() { kill -0 "${PID[$1]}" 2>/dev/null; }

# wait_ok NAME URL...: until one of the URLs answers 2xx; fails when NAME exits or the deadline passes.
wait_ok() {
    local name=$1 deadline=$((SECONDS + START_DEADLINE)) url
    shift
    while :; do
        for url in "$@"; do
            curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        done
        if ! alive "$name"; then
            tail -n 40 "$WORK/logs/$name.log" >&2 || true
            die "$name exited during start-up (log: $WORK/logs/$name.log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 40 "$WORK/logs/$name.log" >&2 || true
            die "$name: no answer from $* within ${START_DEADLINE}s (log: $WORK/logs/$name.log)"
        fi
        sleep 0.1
    done
}

# Free loopback ports, bound together so they are distinct.
read -r SELECTOR_PORT INTAKE_PORT RELAY_PORT RELAY_ADMIN_PORT MONITOR_PORT COMPACTOR_PORT WORKER_PORT LAUNCHER_PORT < <("$PY" -c '
import socket
socks = [socket.socket() for _ in range(8)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()')

t0=$SECONDS
log "binaries: $BIN ($PROFILE); work folder: $WORK"

# A small history: 6,000 jobs over the last 48 hours in 12 pools (3 instance types x 4 zones).
pools=()
for it in c6a.xlarge m6a.xlarge r6a.large; do
    for az in us-east-1a us-east-1b us-west-2a us-west-2b; do pools+=("pool-$it-$az"); done
done
"$BIN/event-generator" --sink "$DATA" --events 6000 --hours 48 --seed 42 \
    --pool-list "$(IFS=,; echo "${pools[*]}")" >"$WORK/logs/event-generator.log" 2>&1 ||
    { cat "$WORK/logs/event-generator.log" >&2; die "event-generator failed"; }

# As the broker's administrator (TEST_AMQP_URL), on names of the fuzzer's own, which the services
# declare themselves (a single-user development broker: AMQP_DECLARE_TOPOLOGY).
AMQP_ENV=(AMQP_URL="$TEST_AMQP_URL" AMQP_EXCHANGE=fuzz.events AMQP_QUEUE=fuzz.events.ingest
    AMQP_DEAD_LETTER_EXCHANGE=fuzz.events.dlx AMQP_DEAD_LETTER_QUEUE=fuzz.events.dead
    AMQP_CONFIRM_TIMEOUT=5s AMQP_CONNECT_TIMEOUT=5s AMQP_DECLARE_TOPOLOGY=true)

start pool-selector HOST=127.0.0.1 PORT="$SELECTOR_PORT" HTTP_WORKERS=2 EVENTS_URL="$DATA" ROLLUP_RECHECK=2s

# The bearer token the fuzzer presents, and a per-token rate limit and a failed-attempt limit far
# above what it sends, so its requests reach the handler; a 1 MiB body bound keeps the largest
# generated bodies cheap.
start intake HOST=127.0.0.1 PORT="$INTAKE_PORT" HTTP_WORKERS=2 INTAKE_TOKENS="$INTAKE_TOKEN" \
    INTAKE_RATE_PER_SECOND=100000 INTAKE_BURST=100000 INTAKE_AUTH_FAILURES=1000000 \
    MAX_BODY_BYTES=1048576 "${AMQP_ENV[@]}"

start compactor HOST=127.0.0.1 PORT="$COMPACTOR_PORT" HTTP_WORKERS=1 EVENTS_URL="$DATA" SETTLE=0 \
    COMPACTOR_CONCURRENCY=1 --every 5s

start ingest-worker METRICS_HOST=127.0.0.1 METRICS_PORT="$WORKER_PORT" EVENTS_URL="$DATA" \
    BATCH_MAX_AGE=500ms PREFETCH=200 WRITE_CONCURRENCY=2 SHUTDOWN_GRACE=5s "${AMQP_ENV[@]}"

start monitor HOST=127.0.0.1 PORT="$MONITOR_PORT" HTTP_WORKERS=1 \
    RABBITMQ_MANAGEMENT_URL="$TEST_RABBITMQ_MANAGEMENT_URL" POLL_INTERVAL=1s SOURCE_TIMEOUT=2s \
    WORKLOADS='[{"name":"ingest-worker","queue":"fuzz.events.ingest","max_replicas":8},{"name":"dead-letters","queue":"fuzz.events.dead","min_replicas":0}]'

relay_env=()
relay_admin=""
if has_setting relay ADMIN_PORT; then
    relay_admin="http://127.0.0.1:$RELAY_ADMIN_PORT"
    relay_env+=(ADMIN_PORT="$RELAY_ADMIN_PORT")
    has_setting relay ADMIN_HOST && relay_env+=(ADMIN_HOST=127.0.0.1)
fi
wait_ok pool-selector "http://127.0.0.1:$SELECTOR_PORT/health"
# No per-client miss limit: every fuzzed request comes from this one address.
start relay HOST=127.0.0.1 PORT="$RELAY_PORT" HTTP_WORKERS=2 UPSTREAM_URL="http://127.0.0.1:$SELECTOR_PORT" \
    REDIS_URL="$TEST_REDIS_URL" REDIS_KEY_PREFIX="fuzz:$$:$(date +%s):" MISS_RATE_PER_CLIENT=0 "${relay_env[@]}"

# The launcher asks the relay for pools and sends outcomes to the intake; its runs are simulated from a
# truth file (no Spark: SIMULATE_ONLY), so every accepted launch ends within a poll and the fuzzer's
# launches never pile up; its state is in the test Redis under a prefix of its own.
echo '{"pools":[{"pool_id":"pool-c6a.xlarge-us-east-1a","termination_probability":0.5}]}' >"$WORK/truth.json"
start launcher HOST=127.0.0.1 PORT="$LAUNCHER_PORT" HTTP_WORKERS=2 LAUNCHER_TOKENS="fuzz:$LAUNCHER_TOKEN" \
    LAUNCH_TEMPLATES="$ROOT/deploy/launch-templates" \
    RELAY_URL="http://127.0.0.1:$RELAY_PORT" INTAKE_URL="http://127.0.0.1:$INTAKE_PORT" INTAKE_TOKEN="$INTAKE_TOKEN" \
    REDIS_URL="$TEST_REDIS_URL" REDIS_KEY_PREFIX="fuzz-launcher:$$:$(date +%s):" SIMULATE_TRUTH="$WORK/truth.json" \
    SIMULATE_ONLY=true SPARK_WORK_DIR="$WORK/launcher" POLL_INTERVAL=200ms MAX_ACTIVE_LAUNCHES=1000

wait_ok pool-selector "http://127.0.0.1:$SELECTOR_PORT/ready"
# /ready: the broker answers, so POST /events publishes instead of answering 503.
wait_ok intake "http://127.0.0.1:$INTAKE_PORT/ready"
wait_ok compactor "http://127.0.0.1:$COMPACTOR_PORT/health"
wait_ok ingest-worker "http://127.0.0.1:$WORKER_PORT/health"
wait_ok monitor "http://127.0.0.1:$MONITOR_PORT/health"
# /desired-worker-scale and /workloads answer 503 until the first poll round: wait for it.
wait_ok monitor "http://127.0.0.1:$MONITOR_PORT/ready"
wait_ok launcher "http://127.0.0.1:$LAUNCHER_PORT/ready"
if [[ -n $relay_admin ]]; then
    wait_ok relay "http://127.0.0.1:$RELAY_PORT/health" "$relay_admin/health"
else
    wait_ok relay "http://127.0.0.1:$RELAY_PORT/health"
fi
log "services ready in $((SECONDS - t0))s: pool-selector :$SELECTOR_PORT, intake :$INTAKE_PORT, relay :$RELAY_PORT${relay_admin:+ (admin :$RELAY_ADMIN_PORT)}, monitor :$MONITOR_PORT, compactor :$COMPACTOR_PORT, ingest-worker :$WORKER_PORT, launcher :$LAUNCHER_PORT"

# schema URL and base URL of each service
declare -A SCHEMA_URL=(
    [pool-selector]="http://127.0.0.1:$SELECTOR_PORT/openapi.json"
    [intake]="http://127.0.0.1:$INTAKE_PORT/openapi.json"
    [relay]="${relay_admin:-http://127.0.0.1:$RELAY_PORT}/openapi.json"
    [monitor]="http://127.0.0.1:$MONITOR_PORT/openapi.json"
    [compactor]="http://127.0.0.1:$COMPACTOR_PORT/openapi.json"
    [ingest-worker]="http://127.0.0.1:$WORKER_PORT/openapi.json"
    [launcher]="http://127.0.0.1:$LAUNCHER_PORT/openapi.json"
)
declare -A BASE_URL=(
    [pool-selector]="http://127.0.0.1:$SELECTOR_PORT"
    [intake]="http://127.0.0.1:$INTAKE_PORT"
    [relay]="http://127.0.0.1:$RELAY_PORT"
    [monitor]="http://127.0.0.1:$MONITOR_PORT"
    [compactor]="http://127.0.0.1:$COMPACTOR_PORT"
    [ingest-worker]="http://127.0.0.1:$WORKER_PORT"
    [launcher]="http://127.0.0.1:$LAUNCHER_PORT"
)

# ---------------------------------------------------------------------------------------------------
# Fuzzing

failed=()
NOTES=()
declare -A ROW=()

# The summary row of one schemathesis run, from its JSON report.
report_row() {
    "$PY" - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ops, tc = r["operations"], r["test_cases"]
print(f'{ops["tested"]}/{ops["total"]}', tc["generated"], tc["unique_failures"], len(r["errors"]),
      "ok" if r["exit_code"] == 0 and not r["failures"] and not r["errors"] else "FAILED")
# schemathesis' warnings (e.g. an operation whose generated requests are nearly all rejected, which
# the fuzzer then barely gets past validation), on a second line.
print("; ".join(f'{kind}: {", ".join(map(str, items))}' for kind, items in r.get("warnings", {}).items() if items))
PY
}

fuzz_service() {
    local name=$1 schema_url=${SCHEMA_URL[$1]} base=${BASE_URL[$1]} code
    local schema="$WORK/schemas/$name.openapi.json" out="$WORK/logs/$name.schemathesis.log"
    local report="$WORK/reports/$name.json" t=$SECONDS
    code=$(curl -sS -o "$schema" -w '%{http_code}' --max-time 10 "$schema_url") || code=000
    if [[ $code == 404 ]]; then
        ROW[$name]="-|-|-|-|no OpenAPI document (${schema_url##*/} answers 404)"
        log "$name: no OpenAPI document at $schema_url (404), not fuzzed"
        return 0
    fi
    if [[ $code != 200 ]] || ! "$PY" -c 'import json,sys; assert "openapi" in json.load(open(sys.argv[1]))' "$schema" 2>/dev/null; then
        ROW[$name]="-|-|-|1|FAILED (schema: HTTP $code)"
        failed+=("$name")
        log "$name: $schema_url answered $code, not an OpenAPI document"
        head -c 2000 "$schema" >&2 || true
        return 0
    fi
    local args=(run "$schema_url" --url "$base"
        --checks "$CHECKS"
        --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers "$WORKERS"
        --request-timeout 30
        --generation-database none
        --report json --report-json-path "$report"
        --no-color)
    # Swagger UI is not an API: leave it out should a document ever list it.
    if "$PY" -c 'import json,sys; sys.exit(0 if any(p == "/docs" or p.startswith("/docs/") for p in json.load(open(sys.argv[1])).get("paths", {})) else 1)' "$schema"; then
        args+=(--exclude-path-regex '^/docs(/|$)')
    fi
    # POST /events needs the intake's bearer token (without it every request is a 401).
    [[ $name == intake ]] && args+=(--header "Authorization: Bearer $INTAKE_TOKEN")
    # Every launch route needs a caller's token (without it every request is a 401).
    [[ $name == launcher ]] && args+=(--header "Authorization: Bearer $LAUNCHER_TOKEN")
    log "$name: fuzzing $base (schema $schema_url)"
    local rc=0
    (cd "$WORK" && "$ST" "${args[@]}") >"$out" 2>&1 || rc=$?
    local ops examples failures errors result warnings
    if [[ -f $report ]] && { read -r ops examples failures errors result && read -r warnings; } < <(report_row "$report"); then
        [[ -z $warnings ]] || NOTES+=("$name: $warnings")
        if ((rc != 0)) && [[ $result == ok ]]; then result="FAILED (exit $rc)"; fi
        ROW[$name]="$ops|$examples|$failures|$errors|$result"
    else
        ROW[$name]="-|-|-|-|FAILED (exit $rc, no readable report)"
    fi
    if ((rc != 0)) || [[ ${ROW[$name]} != *"|ok" ]]; then
        failed+=("$name")
        echo >&2
        log "$name: schemathesis exited $rc after $((SECONDS - t))s; its output ($out):"
        cat "$out" >&2
    else
        log "$name: passed in $((SECONDS - t))s (${ROW[$name]//|/ })"
        [[ ${FUZZ_VERBOSE:-} == 1 ]] && cat "$out" >&2
    fi
    return 0
}

t1=$SECONDS
for name in "${SERVICES[@]}"; do
    is_selected "$name" || continue
    fuzz_service "$name"
done

# Every process must have survived the fuzzing, and none may have panicked.
for name in "${STARTED[@]}"; do
    if ! alive "$name"; then
        log "$name (pid ${PID[$name]}) died during the run; the end of its log:"
        tail -n 40 "$WORK/logs/$name.log" >&2 || true
        failed+=("$name")
        ROW[$name]="${ROW[$name]:--|-|-|-|}"
        ROW[$name]="${ROW[$name]%|*}|FAILED (process died)"
    elif grep -q 'panicked at' "$WORK/logs/$name.log"; then
        log "$name panicked during the run:"
        grep -A5 'panicked at' "$WORK/logs/$name.log" | head -n 40 >&2
        failed+=("$name")
        ROW[$name]="${ROW[$name]:--|-|-|-|}"
        ROW[$name]="${ROW[$name]%|*}|FAILED (panic in its log)"
    fi
done

echo >&2
{
    printf '%-14s %-11s %-9s %-9s %-7s %s\n' service operations examples failures errors result
    for name in "${SERVICES[@]}"; do
        [[ -n ${ROW[$name]:-} ]] || continue
        IFS='|' read -r ops examples failures errors result <<<"${ROW[$name]}"
        printf '%-14s %-11s %-9s %-9s %-7s %s\n' "$name" "$ops" "$examples" "$failures" "$errors" "$result"
    done
} >&2
if ((${#NOTES[@]})); then
    log "schemathesis warnings (not failures; see the logs in $WORK/logs):"
    printf '  %s\n' "${NOTES[@]}" >&2
fi
log "fuzzing took $((SECONDS - t1))s, $((SECONDS - t0))s with start-up ($PROFILE binaries; seed $SEED, max $MAX_EXAMPLES examples per operation, checks $CHECKS; logs and reports in $WORK)"
if ((${#failed[@]})); then
    mapfile -t failed < <(printf '%s\n' "${failed[@]}" | sort -u)
    die "failed: ${failed[*]} (reproduce a run with FUZZ_SEED=$SEED scripts/fuzz.sh ${failed[*]})"
fi
log "passed"
