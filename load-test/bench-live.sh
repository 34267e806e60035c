#!/usr/bin/env bash
# Live: pool-selector answering from its in-memory view of the history, measured.
#   1. Over S3 (a local moto server): DAYS days of history (event-generator, one `compactor --once`
#      pass: closed hours are rollups) plus OPEN_OBJECTS small objects in the open hour, and a writer
#      adding one object a second while the measurements run. Today's pool-selector and the one built
#      from BENCH_LIVE_BASELINE_REV (6b084fc, the build before the view) read the same bucket, side by
#      side in one run: QUERIES distinct `/get-pool` queries (2–3 random instance types, windows 1 h to
#      30 d), one keep-alive connection each (the baseline gets BASELINE_QUERIES: each of its answers
#      re-reads the open hour); then objects written into the open hour one at a time, and the time
#      until `/pools` counts each (VISIBILITY for today's, BASELINE_VISIBILITY for the baseline).
#      Targets: p99 ≤ 20 ms; counted within 5 s (p99).
#   2. In process (crates/live-bench): YEAR_POOLS pools × 365 days in a folder (event-generator,
#      `compactor --once`), the view loaded from it (time, memory), then `/get-pool`'s own code path for
#      distinct windows (a fit per request), one window and the whole history. Targets: p99 ≤ 2 ms,
#      view memory ≤ 150 MB.
# BENCH_SMOKE=1: tiny sizes, no baseline (checks that the part runs and prints its tables; `make test`
# runs it so). BENCH_DATA (bench-data/live) holds logs; the histories are deleted at the end.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
PROFILE_DIR=${BENCH_PROFILE_DIR:-release}
bin="$TARGET_DIR/$PROFILE_DIR"
WORK=${BENCH_DATA:-bench-data/live}
PY=$PWD/.venv/bin/python
SMOKE=${BENCH_SMOKE:-0}
REV=${BENCH_LIVE_BASELINE_REV:-6b084fc}
if [[ $SMOKE == 1 ]]; then
    DAYS=2 EVENTS=20000 POOLS=24 OPEN_OBJECTS=20 QUERIES=10 VISIBILITY=2
    YEAR_POOLS=24 YEAR_DAYS=7 YEAR_EVENTS=20000 YEAR_QUERIES=10
else
    DAYS=30 EVENTS=2000000 POOLS=96 OPEN_OBJECTS=600 QUERIES=${BENCH_QUERIES:-200} VISIBILITY=20
    YEAR_POOLS=432 YEAR_DAYS=365 YEAR_EVENTS=${BENCH_LIVE_YEAR_EVENTS:-8000000} YEAR_QUERIES=${BENCH_QUERIES:-200}
fi
BASELINE_QUERIES=${BENCH_LIVE_BASELINE_QUERIES:-50}
BASELINE_VISIBILITY=5
S3_PORT=${BENCH_S3_PORT:-5411}
NEW_PORT=${BENCH_PORT:-5412}
OLD_PORT=$((NEW_PORT + 1))
BUCKET=bench-live
S3="http://127.0.0.1:$S3_PORT"

BENCH_PART=live
# shellcheck source=load-test/lib.sh
source load-test/lib.sh

[[ -x $PY ]] || die "$PY is missing (scripts/install-deps.sh creates the venv)"
for b in pool-selector event-generator compactor live-bench; do
    [[ -x $bin/$b ]] || die "$bin/$b is missing: build with cargo build --release --workspace --bins"
done

pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    baseline_cleanup
    rm -rf "$WORK/year" "$WORK/moto"
}
trap cleanup EXIT
mkdir -p "$WORK"

wait_for() { # $1 what, $2 url, $3 pid: until the URL answers 200
    local deadline=$((SECONDS + 600))
    until curl -fs -o /dev/null "$2"; do
        kill -0 "$3" 2>/dev/null || die "$1 exited (logs in $WORK)"
        ((SECONDS < deadline)) || die "$1 did not answer $2 within 600 s (logs in $WORK)"
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------------------------------
# 1. Over S3, today vs the baseline.
if [[ $SMOKE != 1 ]]; then
    baseline_selector "$REV" "$WORK/baseline-build.log"
fi
port_open "$S3_PORT" && die "port $S3_PORT is taken; set BENCH_S3_PORT"
"$PWD/.venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
pids+=($!)
wait_for "the S3 server" "$S3/" "${pids[-1]}"
curl -fs -X PUT "$S3/$BUCKET" >/dev/null || die "creating bucket $BUCKET failed"
export AWS_ENDPOINT_URL=$S3 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
EVENTS_URL="s3://$BUCKET/events/"

log "generating $DAYS days ($EVENTS events, $POOLS pools) into $EVENTS_URL"
"$bin/event-generator" --sink "$EVENTS_URL" --hours $((DAYS * 24)) --events "$EVENTS" --pools "$POOLS" \
    --seed 3 --truth "$WORK/truth.json" >"$WORK/generator.json" 2>"$WORK/generator.log" ||
    die "event-generator failed (log: $WORK/generator.log)"
log "compactor --once (SETTLE=0)"
EVENTS_URL=$EVENTS_URL SETTLE=0 LOG_LEVEL=warn "$bin/compactor" --once 2>"$WORK/compactor.log" ||
    die "compactor failed (log: $WORK/compactor.log)"
# The writer's pools, and the instance types the queries pick from: the generator's own.
read -r WRITER_POOLS TYPES <<<"$(benchstat json "$WORK/truth.json" 'pools[:48].pool_id' 'pools[].pool_id|split:-:1|uniq')"
log "putting $OPEN_OBJECTS objects into the open hour"
$PY load-test/live_probe.py --endpoint "$S3" --bucket "$BUCKET" --pools "$WRITER_POOLS" fill --objects "$OPEN_OBJECTS"

log "starting today's pool-selector on :$NEW_PORT"
EVENTS_URL=$EVENTS_URL HOST=127.0.0.1 PORT=$NEW_PORT LOG_LEVEL=warn "$bin/pool-selector" 2>"$WORK/pool-selector.log" &
pids+=($!)
started=$(date +%s%N)
wait_for "pool-selector" "http://127.0.0.1:$NEW_PORT/ready" "${pids[-1]}"
ready_ms=$(ms_since "$started")
old_args=()
if [[ $SMOKE != 1 ]]; then
    log "starting the baseline pool-selector ($BASELINE_REV) on :$OLD_PORT"
    EVENTS_URL=$EVENTS_URL HOST=127.0.0.1 PORT=$OLD_PORT LOG_LEVEL=warn "$BASELINE" 2>"$WORK/baseline.log" &
    pids+=($!)
    wait_for "the baseline pool-selector" "http://127.0.0.1:$OLD_PORT/health" "${pids[-1]}"
    old_args=(--old "http://127.0.0.1:$OLD_PORT" --old-queries "$BASELINE_QUERIES" --old-visibility "$BASELINE_VISIBILITY")
fi

echo
echo "### Over S3: $DAYS days compacted + an open hour of $OPEN_OBJECTS objects and growing"
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); today's pool-selector loaded the view and answered /ready in $(benchstat calc --digits 1 'ms / 1000' ms="$ready_ms") s."
echo
probe_rc=0
$PY load-test/live_probe.py --endpoint "$S3" --bucket "$BUCKET" --pools "$WRITER_POOLS" probe \
    --new "http://127.0.0.1:$NEW_PORT" "${old_args[@]}" --types "$TYPES" --queries "$QUERIES" \
    --visibility "$VISIBILITY" --open-objects "$OPEN_OBJECTS" --json "$WORK/probe.json" || probe_rc=$?
((probe_rc <= 1)) || die "live_probe.py failed (exit $probe_rc)"
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION

# ---------------------------------------------------------------------------------------------------
# 2. In process, a year of 432 pools.
YEAR="$WORK/year"
rm -rf "$YEAR"
mkdir -p "$YEAR"
log "generating $YEAR_DAYS days × $YEAR_POOLS pools ($YEAR_EVENTS events) into $YEAR"
"$bin/event-generator" --sink "$YEAR" --hours $((YEAR_DAYS * 24)) --events "$YEAR_EVENTS" --pools "$YEAR_POOLS" \
    --skew 0.3 --seed 5 >"$WORK/year-generator.json" 2>"$WORK/year-generator.log" ||
    die "event-generator failed (log: $WORK/year-generator.log)"
log "compactor --once (SETTLE=0) over the year"
EVENTS_URL=$YEAR SETTLE=0 LOG_LEVEL=warn "$bin/compactor" --once 2>"$WORK/year-compactor.log" ||
    die "compactor failed (log: $WORK/year-compactor.log)"
echo
echo "### In process: $YEAR_POOLS pools × $YEAR_DAYS days"
echo
live_rc=0
"$bin/live-bench" "$YEAR" "$YEAR_QUERIES" 2>"$WORK/live-bench.log" || live_rc=$?
((live_rc == 0)) || die "live-bench failed (log: $WORK/live-bench.log)"
if ((probe_rc != 0)); then
    echo
    echo "A target of the S3 part was NOT met (see above)."
fi
exit 0
