#!/usr/bin/env bash
# Benchmark: time from a backlog appearing in RabbitMQ to the monitor's desired scale changing in
# /metrics. Target: within one POLL_INTERVAL plus 1 s of the broker reporting the backlog.
#
# The broker's management API serves statistics it samples every collect_statistics_interval
# (5 s by default), so the end-to-end time is split into:
#   broker  = backlog published -> visible in GET /api/queues (the broker's sampling, not ours)
#   monitor = visible in the API -> pool_monitor_desired_replicas changed in /metrics (ours)
#
# The trials and the table: load-test/monitor_probe.py.
# Needs a broker with the management plugin: TEST_RABBITMQ_MANAGEMENT_URL (and nothing else), as
# exported by scripts/test-services.sh; started through it when unset. Release build.
#
# Env: BENCH_TRIALS (default 8), BENCH_POLL_INTERVAL (default 5s, the shipped default), BENCH_BACKLOG (default 50).
# The binary: $CARGO_TARGET_DIR/${BENCH_PROFILE_DIR:-release}/monitor (load-test/bench.sh builds it).
# BENCH_SMOKE=1: one trial with a 1 s poll (checks that the part runs and prints its table).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=$ROOT/.venv/bin/python
[[ -x $PY ]] || PY=python3

BENCH_PART=monitor
# shellcheck source=load-test/lib.sh
source load-test/lib.sh

STARTED_SERVICES=""
if [[ -z "${TEST_RABBITMQ_MANAGEMENT_URL:-}" && -x scripts/test-services.sh ]]; then
  eval "$(scripts/test-services.sh start)"
  STARTED_SERVICES=1
fi
[[ -n "${TEST_RABBITMQ_MANAGEMENT_URL:-}" ]] ||
  die "TEST_RABBITMQ_MANAGEMENT_URL is not set and scripts/test-services.sh could not start RabbitMQ"

TRIALS="${BENCH_TRIALS:-8}"
POLL="${BENCH_POLL_INTERVAL:-5s}"
BACKLOG="${BENCH_BACKLOG:-50}"
if [[ ${BENCH_SMOKE:-0} == 1 ]]; then
  TRIALS=1 POLL=1s BACKLOG=5
fi

BIN="${CARGO_TARGET_DIR:-$ROOT/target}/${BENCH_PROFILE_DIR:-release}/monitor"
[[ -x $BIN ]] || die "$BIN is missing: build the binaries first (load-test/bench.sh does)"

QUEUE="bench-monitor.$(date +%s).$$"
PORT="$(free_port)"
LOG="$(mktemp -t bench-monitor.XXXXXX.log)"

# The queue exists before the monitor's first poll (a missing queue would mean the fallback).
curl -fsS -X PUT -H 'content-type: application/json' \
  -d '{"durable":false,"auto_delete":false,"arguments":{"x-expires":600000}}' \
  "${TEST_RABBITMQ_MANAGEMENT_URL%/}/api/queues/%2F/$QUEUE" >/dev/null

RABBITMQ_MANAGEMENT_URL="$TEST_RABBITMQ_MANAGEMENT_URL" AMQP_QUEUE="$QUEUE" WORKLOAD_NAME=bench \
  POLL_INTERVAL="$POLL" TARGET_BACKLOG_PER_WORKER=10 MIN_REPLICAS=1 MAX_REPLICAS=100 \
  SCALE_DOWN_STABILIZATION=0 HOST=127.0.0.1 PORT="$PORT" LOG_LEVEL=warn \
  "$BIN" 2>"$LOG" &
MONITOR_PID=$!
cleanup() {
  kill "$MONITOR_PID" 2>/dev/null || true
  wait "$MONITOR_PID" 2>/dev/null || true
  if [[ -s "$LOG" ]]; then
    log "monitor log:"
    tail -n 20 "$LOG" >&2
  fi
  rm -f "$LOG"
  if [[ -n "$STARTED_SERVICES" ]]; then
    scripts/test-services.sh stop >&2 || true
  fi
}
trap cleanup EXIT

"$PY" load-test/monitor_probe.py "$TEST_RABBITMQ_MANAGEMENT_URL" "$QUEUE" "$PORT" "$TRIALS" "$POLL" "$BACKLOG"
