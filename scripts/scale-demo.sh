#!/usr/bin/env bash
# `make scale-demo`: on the running `make up` stack, the monitor's desired worker scale rising under a
# backlog and falling as it drains (seed 003's demo, with its SIMULATE_WORKLOAD_DURATION_IN_SEC).
#
#   1. Stops the stack's event-generator (its steady stream would keep the queue busy), restarts
#      ingest-worker with SIMULATE_WORKLOAD_DURATION_IN_SEC=SCALE_DEMO_WORK (0.2 s a message) and
#      PREFETCH=2 (so the backlog waits in the queue, where the monitor counts it as ready), and the
#      monitor with POLL_INTERVAL=1s and SCALE_DOWN_STABILIZATION=SCALE_DEMO_STABILIZATION (20s), so the
#      fall shows within minutes rather than after the production 300 s.
#   2. Posts SCALE_DEMO_MESSAGES (600) batches of 5 events to the intake, one RabbitMQ message each, at
#      most SCALE_DEMO_RATE (40) a second (the intake allows 50 per token), and prints the monitor's
#      GET /desired-worker-scale every second until the queue has drained and the desired scale is back
#      at its minimum (or SCALE_DEMO_TIMEOUT, 900 s): scripts/scale_demo.py.
#   3. Restores the stack, also on failure or Ctrl-C: ingest-worker and the monitor restarted with their
#      usual settings, the event-generator started again.
#
# One worker runs throughout (no Kubernetes here): the desired scale is what the HPA would be told. With
# a worker taking 0.2 s a message (5 messages/s) and 40 arriving a second, the monitor's throughput rule
# asks for 40 / 5 = 8 workers while the posting lasts; the drain-time rule then brings it down as the
# backlog shrinks (ready / 60 s / 5 per worker), to 1 once it is gone.
#
# Output: the table on stdout; reports/scale-demo/<time>/ keeps samples.csv, summary.md and scale.png.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="$ROOT/scripts/stack.sh"
PY="$ROOT/.venv/bin/python"
[[ -x $PY ]] || PY=python3
WORK=${SCALE_DEMO_WORK:-0.2}
STABILIZATION=${SCALE_DEMO_STABILIZATION:-20s}
OUT="${SCALE_DEMO_OUT:-$ROOT/reports/scale-demo}/$(date -u +%Y%m%dT%H%M%SZ)"

log() { echo "scale-demo: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

"$STACK" status >/dev/null 2>&1 || die "the local stack is not running (all of it): make up"
eval "$("$STACK" env)"
curl -fsS -o /dev/null --max-time 5 "$STACK_INTAKE_URL/ready" || die "the intake is not ready at $STACK_INTAKE_URL"

restore() {
    local rc=$?
    trap - EXIT INT TERM
    log "restoring the stack: ingest-worker and the monitor with their usual settings, the event-generator"
    env -u SIMULATE_WORKLOAD_DURATION_IN_SEC -u PREFETCH -u POLL_INTERVAL -u SCALE_DOWN_STABILIZATION \
        "$STACK" restart ingest-worker monitor event-generator >&2 || log "restoring failed: make down && make up"
    exit "$rc"
}
trap restore EXIT
trap 'exit 130' INT TERM

log "stopping the event-generator; restarting ingest-worker with ${WORK}s of simulated work a message"
"$STACK" stop event-generator >&2
SIMULATE_WORKLOAD_DURATION_IN_SEC=$WORK PREFETCH=2 POLL_INTERVAL=1s SCALE_DOWN_STABILIZATION=$STABILIZATION \
    "$STACK" restart ingest-worker monitor >&2
# Read the whole page first: `curl | grep -q` fails under pipefail when grep stops reading early.
worker_metrics=$(curl -fsS "$STACK_WORKER_URL/metrics" || true)
grep -q '^ingest_worker_simulating ' <<<"$worker_metrics" ||
    die "the restarted ingest-worker does not export ingest_worker_simulating: an older build? (cargo build --release --workspace --bins)"

"$PY" "$ROOT/scripts/scale_demo.py" run --intake "$STACK_INTAKE_URL" --token "$STACK_INTAKE_TOKEN" \
    --monitor "$STACK_MONITOR_URL" --out "$OUT" --messages "${SCALE_DEMO_MESSAGES:-600}" \
    --rate "${SCALE_DEMO_RATE:-40}" --timeout "${SCALE_DEMO_TIMEOUT:-900}"
log "samples and summary in $OUT"
