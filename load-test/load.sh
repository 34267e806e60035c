#!/usr/bin/env bash
# `make load`: the locust scenarios of load-test/locustfile.py against the running local stack (`make up`),
# one after the other, each for LOAD_DURATION seconds, headless, printing locust's per-endpoint table every
# few seconds while it runs; then load-test/report.py writes LOAD_OUT/load-report.md (throughput,
# p50/p95/p99/max and errors per endpoint) and LOAD_OUT/latency-over-time.png.
#
#   LOAD_DURATION   seconds per scenario (default 60; not the ramp's, which its steps decide)
#   LOAD_SCENARIOS  default "read write mixed"; also `ramp` (seed 002's 0 → 500 requests/s through the relay
#                   in steps of 10: LOAD_RAMP_MAX_RPS, LOAD_RAMP_STEP_RPS, LOAD_RAMP_STEP_SECONDS (10),
#                   LOAD_RAMP_USER_RPS (5 per user); load-test/ramp_shape.py), e.g. LOAD_SCENARIOS=ramp
#   LOAD_READERS    relay users (default 12; each LOAD_READ_RPS=4 requests/s at most)
#   LOAD_WRITERS    intake users (default 2; each LOAD_WRITE_RPS=2 posts/s of LOAD_BATCH=20 events)
#   LOAD_OUT        where reports go (default reports/load, git-ignored; docs/resilience keeps the last
#                   measured copy, refreshed with LOAD_PUBLISH=1)
#
# Loopback only: the stack's URLs must be 127.0.0.1 or localhost (this is a load generator). Nothing is
# left running: locust stops at its run time (and is killed with a margin should it hang).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
LOCUST="$ROOT/.venv/bin/locust"
DURATION=${LOAD_DURATION:-60}
SCENARIOS=${LOAD_SCENARIOS:-read write mixed}
READERS=${LOAD_READERS:-12}
WRITERS=${LOAD_WRITERS:-2}
OUT=${LOAD_OUT:-$ROOT/reports/load}

log() { echo "load: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# "name cpu-seconds" for every process of the stack and its children (utime + stime from /proc): taken
# before and after a scenario, the difference over its length is how many cores each component kept busy.
stack_cpu() { "$PY" "$ROOT/load-test/cpu.py" snapshot "$STACK_DIR/run"; }

if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION == 0)); then die "LOAD_DURATION must be a positive number of seconds"; fi
[[ -x $LOCUST ]] || "$ROOT/scripts/install-deps.sh"
env_text=$("$ROOT/scripts/stack.sh" env 2>/dev/null) || die "the stack is not up: run \`make up\` first"
eval "$env_text"
for url in "$STACK_RELAY_URL" "$STACK_INTAKE_URL" "$STACK_SELECTOR_URL"; do
    [[ $url =~ ^http://(127\.0\.0\.1|localhost)(:[0-9]+)?$ ]] || die "not a loopback URL: $url (load runs on loopback only)"
done
curl -fsS -o /dev/null --max-time 5 "$STACK_RELAY_URL/ready" || die "the relay does not answer ($STACK_RELAY_URL)"

# The ramp: its own locustfile (a LoadTestShape decides the users and the length), the same request records.
run_ramp() {
    local seconds run_id started
    seconds=$("$PY" "$ROOT/load-test/ramp_shape.py" --duration) || die "bad LOAD_RAMP_* settings"
    run_id=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
    rm -f "$OUT"/ramp-requests.csv "$OUT"/ramp_*.csv "$OUT"/ramp-start
    log "scenario ramp: up to ${LOAD_RAMP_MAX_RPS:-500} requests/s through the relay in steps of ${LOAD_RAMP_STEP_RPS:-10} every ${LOAD_RAMP_STEP_SECONDS:-10}s (${seconds}s, run $run_id)"
    started=$(date +%s.%N)
    stack_cpu >"$OUT/ramp-cpu-before"
    LOAD_RUN_ID=$run_id LOAD_RECORDS="$OUT/ramp-requests.csv" LOAD_RAMP_START="$OUT/ramp-start" \
        /usr/bin/time -f '%U %S' -o "$OUT/ramp-locust-cpu" timeout --kill-after=10 $((seconds + 60)) "$LOCUST" -f "$ROOT/load-test/ramp_locustfile.py" --headless \
        --stop-timeout 5 --csv "$OUT/ramp" --csv-full-history 2>&1 |
        grep -v -E '^\[.*(INFO|WARNING)/locust\.(main|runners)' || true
    stack_cpu >"$OUT/ramp-cpu-after"
    "$PY" "$ROOT/load-test/ramp_shape.py" --meta "$OUT/ramp.json" "$started" "$seconds" "$LOCUST_VERSION" "$OUT/ramp-start"
    "$PY" "$ROOT/load-test/cpu.py" "$OUT/ramp.json" "$OUT/ramp-locust-cpu" "$OUT/ramp-cpu-before" "$OUT/ramp-cpu-after"
}

mkdir -p "$OUT"
LOCUST_VERSION=$("$LOCUST" --version 2>/dev/null | cut -d' ' -f2)
for sc in $SCENARIOS; do
    case $sc in
    read) users=$READERS classes=ReadUser desc="$READERS relay users" ;;
    write) users=$WRITERS classes=WriteUser desc="$WRITERS intake users" ;;
    mixed) users=$((READERS + WRITERS)) classes="ReadUser WriteUser" desc="$READERS relay + $WRITERS intake users" ;;
    ramp)
        run_ramp
        continue
        ;;
    *) die "unknown scenario $sc (read, write, mixed, ramp)" ;;
    esac
    run_id=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
    rm -f "$OUT/$sc"-requests.csv "$OUT/$sc"-acked.csv "$OUT/$sc"_*.csv
    log "scenario $sc: $desc for ${DURATION}s (run $run_id)"
    started=$(date +%s.%N)
    stack_cpu >"$OUT/$sc-cpu-before"
    # LOAD_WRITE_WEIGHT/LOAD_READ_WEIGHT with fixed user counts: exactly READERS readers and WRITERS writers.
    # shellcheck disable=SC2086 # $classes: one or two class names
    LOAD_RUN_ID=$run_id LOAD_RECORDS="$OUT/$sc-requests.csv" LOAD_ACKED="$OUT/$sc-acked.csv" \
        LOAD_READ_WEIGHT="$READERS" LOAD_WRITE_WEIGHT="$WRITERS" \
        /usr/bin/time -f '%U %S' -o "$OUT/$sc-locust-cpu" timeout --kill-after=10 $((DURATION + 30)) "$LOCUST" -f "$ROOT/load-test/locustfile.py" --headless \
        -u "$users" -r "$users" -t "${DURATION}s" --stop-timeout 5 --csv "$OUT/$sc" --csv-full-history \
        $classes 2>&1 | grep -v -E '^\[.*(INFO|WARNING)/locust\.(main|runners)' || true
    stack_cpu >"$OUT/$sc-cpu-after"
    acked="" counted=""
    if [[ $sc != read ]]; then
        log "waiting for the acknowledged events to be counted by pool-selector"
        res=$("$PY" "$ROOT/load-test/acked.py" "$STACK_SELECTOR_URL" "$OUT/$sc-acked.csv" 120) || true
        acked=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["acked"])' "$res")
        counted=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["counted"])' "$res")
        log "acknowledged $acked, counted $counted"
    fi
    "$PY" - "$OUT/$sc.json" "$started" "$DURATION" "$desc" "$LOCUST_VERSION" "$acked" "$counted" <<'EOF'
import json, os, sys, datetime
path, started, dur, users, ver, acked, counted = sys.argv[1:]
meta = {"started": float(started), "duration": int(dur), "users": users, "locust": ver, "cores": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
if acked:
    meta["acked"], meta["counted"] = int(acked), int(counted)
json.dump(meta, open(path, "w"))
EOF
    "$PY" "$ROOT/load-test/cpu.py" "$OUT/$sc.json" "$OUT/$sc-locust-cpu" "$OUT/$sc-cpu-before" "$OUT/$sc-cpu-after"
done
# shellcheck disable=SC2086 # one argument per scenario
"$PY" "$ROOT/load-test/report.py" "$OUT" $SCENARIOS
if [[ ${LOAD_PUBLISH:-0} == 1 ]]; then
    mkdir -p "$ROOT/docs/resilience"
    cp "$OUT/load-report.md" "$OUT/latency-over-time.png" "$ROOT/docs/resilience/"
    if [[ -f $OUT/ramp.png && " $SCENARIOS " == *" ramp "* ]]; then cp "$OUT/ramp.png" "$ROOT/docs/resilience/"; fi
    log "copied the report to docs/resilience/"
fi
cat "$OUT/load-report.md"
