#!/usr/bin/env bash
# Ingestion benchmark: event-generator --rate 0 → RabbitMQ (quorum queue, publisher confirms) → one
# ingest-worker → storage, and the time from publish to visible in pool-selector's GET /pools.
#
#   * Throughput (phase 1): BENCH_INGEST_EVENTS events (default 2,000,000) generated with --rate 0, as
#     fast as the broker confirms: a 24-hour backfill ending two days ago (so its hourly partitions are
#     not the markers'). The clock runs from the generator's start until the worker's
#     events_written_total reaches the count (every event durably written and acknowledged).
#   * Publish-to-visible (phase 2): a live stream at the target rate (BENCH_INGEST_RATE, 50,000 events/s,
#     for BENCH_INGEST_STREAM_SECONDS, 30) while load-test/ingest_probe.py POSTs one marker event every
#     250 ms to the intake (published behind the stream) and polls GET /pools until it is counted;
#     p50/p99 over every marker. The same probe runs during phase 1, where the flood outruns the worker
#     and builds a backlog: those figures are shown for information (latency = backlog / drain rate).
#   * Correctness and the cost of at-least-once: GET /pools over the whole history must count exactly the
#     events sent (each event once); its latency with deduplication (whole-event key) on and off is the price of
#     deduplicating at query time.
#
# Storage: both, one after the other in one run (BENCH_INGEST_STORAGE="local s3" by default): a local
# folder (written with fsync) and the moto S3 server of the test harness (a Python process competing for
# the same 2 cores, so slower than real S3). The worker's CPU (user + system seconds over the wall time of
# the run, in cores) and peak RSS are reported for each.
# Servers: a private instance of scripts/test-services.sh (own ports and state), stopped at the end.
# BENCH_SMOKE=1: tiny sizes (checks that the part runs and prints its table).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
bin="$TARGET_DIR/${BENCH_PROFILE_DIR:-release}"
if [[ ${BENCH_SMOKE:-0} == 1 ]]; then
  EVENTS=20000 RATE=2000 STREAM_S=3
else
  EVENTS=${BENCH_INGEST_EVENTS:-2000000}
  RATE=${BENCH_INGEST_RATE:-50000}
  STREAM_S=${BENCH_INGEST_STREAM_SECONDS:-30}
fi
STORAGES=${BENCH_INGEST_STORAGE:-local s3}
PY=$ROOT/.venv/bin/python
[ -x "$PY" ] || PY=python3

BENCH_PART=ingest
# shellcheck source=load-test/lib.sh
source load-test/lib.sh

for b in event-generator ingest-worker intake pool-selector; do
  [ -x "$bin/$b" ] || die "missing $bin/$b: run cargo build --release --workspace --bins"
done

work=$(mktemp -d /tmp/bench-ingest.XXXXXX)
pids=()
own_services=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n $own_services ]]; then scripts/test-services.sh stop >/dev/null 2>&1 || true; fi
  if [[ -n ${BENCH_KEEP_WORK:-} || ${failed:-0} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
# The test servers already running (make test's), else a private instance (own ports and state).
if [[ -z ${TEST_AMQP_URL:-} || -z ${TEST_S3_ENDPOINT:-} ]]; then
  export TEST_SERVICES_DIR="$TARGET_DIR/bench-ingest-services"
  own_services=1
  eval "$(scripts/test-services.sh start 2>"$work/services.log")"
fi

run_storage() { # $STORAGE: local or s3; prints its table
suffix="bench-$$-$STORAGE"
export AMQP_URL="$TEST_AMQP_URL" AMQP_EXCHANGE="events.$suffix" AMQP_QUEUE="events.ingest.$suffix" \
  AMQP_DEAD_LETTER_EXCHANGE="events.dlx.$suffix" AMQP_DEAD_LETTER_QUEUE="events.dead.$suffix" LOG_LEVEL=warn \
  AMQP_DECLARE_TOPOLOGY=true  # the test broker's single admin user: the run's own topology is declared by its services
if [ "$STORAGE" = s3 ]; then
  bucket="bench-ingest-$$-$RANDOM"
  curl -fs -X PUT "$TEST_S3_ENDPOINT/$bucket" >/dev/null
  export EVENTS_URL="s3://$bucket/events/" AWS_ENDPOINT_URL="$TEST_S3_ENDPOINT" AWS_ACCESS_KEY_ID=test \
    AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  storage_desc="S3 (moto, local)"
else
  export EVENTS_URL="$ROOT/bench-data/ingest-events"
  unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
  rm -rf "$EVENTS_URL"; mkdir -p "$EVENTS_URL"
  storage_desc="local folder (fsync)"
fi

wport=$(free_port); sport=$(free_port); nport=$(free_port); iport=$(free_port)
METRICS_PORT=$wport METRICS_HOST=127.0.0.1 "$bin/ingest-worker" 2>"$work/worker.log" & worker=$!; pids+=("$worker")
RELIST_INTERVAL=2s PORT=$sport HOST=127.0.0.1 "$bin/pool-selector" 2>"$work/selector.log" & pids+=("$!")
INTAKE_TOKENS=bench-token INTAKE_RATE_PER_SECOND=1000 PORT=$iport HOST=127.0.0.1 "$bin/intake" 2>"$work/intake.log" & pids+=("$!")
wait_http "http://127.0.0.1:$wport/health" ingest-worker "$work/worker.log"
wait_http "http://127.0.0.1:$sport/ready" pool-selector "$work/selector.log"
wait_http "http://127.0.0.1:$iport/health" intake "$work/intake.log"
cpu0=$(benchstat cpu-seconds "$worker"); wall0=$(date +%s.%N)

# Each storage's probes have their own stop files and results: a stop file left by the previous storage
# would stop the next one's probe before its first marker.
probe() { "$PY" load-test/ingest_probe.py --intake "http://127.0.0.1:$iport" --token bench-token --selector "http://127.0.0.1:$sport" --stop-file "$work/stop-$STORAGE-$1" >"$work/probe-$STORAGE-$1.json"; }
wait_written() { # $1 = count → seconds waited for the worker to reach it
  local deadline=$((SECONDS + 600)) written
  while :; do
    written=$(metric "http://127.0.0.1:$wport" ingest_worker_events_written_total)
    [ "${written%.*}" -ge "$1" ] 2>/dev/null && return 0
    ((SECONDS < deadline)) || die "the worker wrote ${written:-0} of $1 events in 600 s"
    sleep 0.05
  done
}

# Phase 1, throughput: a flood as fast as the broker confirms; markers measure the backlog it builds.
probe flood & probe_pid=$!
sleep 2
end=$(date -u -d '-2 days' +%Y-%m-%dT%H:%M:%SZ)
t0=$(date +%s.%N)
"$bin/event-generator" --sink "$AMQP_URL" --events "$EVENTS" --hours 24 --end "$end" --seed 11 --pools 64 \
  >"$work/gen.json" 2>"$work/gen.log" || { log "event-generator failed:"; tail -n 20 "$work/gen.log" >&2; exit 1; }
t_pub=$(date +%s.%N)
wait_written "$EVENTS"
t1=$(date +%s.%N)
touch "$work/stop-$STORAGE-flood"; wait "$probe_pid"

# Phase 2, latency at the target rate: a live stream of RATE events/s stamped "now" for STREAM_S seconds
# (into the markers' own hourly partition, so each poll also scans the live data), markers all along.
probe live & probe_pid=$!
sleep 1
"$bin/event-generator" --sink "$AMQP_URL" --rate "$RATE" --events $((RATE * STREAM_S)) --seed 12 --pools 64 \
  >"$work/gen-live.json" 2>>"$work/gen.log"
touch "$work/stop-$STORAGE-live"; wait "$probe_pid"
live_rate=$(benchstat json "$work/gen-live.json" 'events_per_s|round')
wait_written $((EVENTS + RATE * STREAM_S))
worker_rss=$(benchstat rss-mb --digits 0 "$worker")
worker_cpu=$(benchstat calc --digits 2 '(cpu1 - cpu0) / (wall1 - wall0)' cpu0="$cpu0" wall0="$wall0" \
  cpu1="$(benchstat cpu-seconds "$worker")" wall1="$(date +%s.%N)")

objects=$(metric "http://127.0.0.1:$wport" ingest_worker_objects_written_total)
batches=$(metric "http://127.0.0.1:$wport" ingest_worker_batches_total)
gen_rate=$(benchstat json "$work/gen.json" 'events_per_s|round')
messages=$(benchstat json "$work/gen.json" objects)
e2e=$(benchstat calc --digits 0 'n / (t1 - t0)' n="$EVENTS" t0="$t0" t1="$t1")
secs=$(benchstat calc --digits 1 't1 - t0' t0="$t0" t1="$t1")
tail_s=$(benchstat calc --digits 2 't1 - t_pub' t_pub="$t_pub" t1="$t1")
markers_of() { # a probe's results: counts, then latencies in whole ms (n/a when no marker was seen)
  benchstat json "$1" markers visible 'p50_ms|fmt:0' 'p99_ms|fmt:0' 'max_ms|fmt:0' 'post_p50_ms|fmt:0' 'post_p99_ms|fmt:0'
}
read -r fmarkers fvisible fp50 fp99 _ _ _ <<<"$(markers_of "$work/probe-$STORAGE-flood.json")"
read -r markers visible p50 p99 pmax post50 post99 <<<"$(markers_of "$work/probe-$STORAGE-live.json")"

# Whole-history ranking: correctness (each event once) and the cost of deduplication.
jobs_in() { # $1 a /pools answer (file) → its jobs summed over every pool
  benchstat json "$1" 'pools[].jobs|sum'
}
time_pools() { # $1 base URL → "median_ms total_jobs"
  local ms=() total=0 t
  for _ in 1 2 3; do
    t=$(curl -s -o "$work/pools.json" -w '%{time_total}' "$1/pools?window=0&limit=10000")
    ms+=("$(benchstat calc --digits 0 't * 1000' t="$t")")
    total=$(jobs_in "$work/pools.json")
  done
  echo "$(median "${ms[@]}") $total"
}
# The view refreshes every second: the last objects written may not be counted yet when the worker's
# metric says they are written. Wait (at most 15 s) until the running pool-selector counts them all.
expected=$((EVENTS + RATE * STREAM_S + fmarkers + markers))
t_written=$(date +%s.%N)
count_deadline=$((SECONDS + 15))
while :; do
  counted=$(curl -s --max-time 10 -o "$work/pools.json" "http://127.0.0.1:$sport/pools?window=0&limit=10000" &&
    jobs_in "$work/pools.json" 2>/dev/null || echo 0)
  [ "$counted" = "$expected" ] && break
  ((SECONDS < count_deadline)) || break
  sleep 0.2
done
count_s=$(benchstat calc --digits 1 't1 - t0' t0="$t_written" t1="$(date +%s.%N)")
read -r dedup_ms dedup_total <<<"$(time_pools "http://127.0.0.1:$sport")"
DEDUP_JOB_IDS=false PORT=$nport HOST=127.0.0.1 "$bin/pool-selector" 2>>"$work/selector.log" & pids+=("$!")
wait_http "http://127.0.0.1:$nport/ready"
read -r nodedup_ms nodedup_total <<<"$(time_pools "http://127.0.0.1:$nport")"

for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
check() { benchstat met --words met,MISSED "$@"; } # VALUE TARGET: ≤ (≥ with --at-least); n/a stays n/a
cat <<TXT

#### Storage: $storage_desc

One ingest-worker; $EVENTS events (24 h backfill, 64 pools) in $messages messages; \
$batches batches, $objects objects; $(nproc) cores shared by RabbitMQ, generator, worker, pool-selector and the probe.

| measure | value | target |
|---|---:|---|
| end-to-end events/s, flood (generator start → last event written and acked, ${secs} s) | $e2e | ≥ 50,000: $(check --at-least "$e2e" 50000) |
| generator publish rate during the flood, events/s (confirmed by RabbitMQ) | $gen_rate | |
| worker lag after the flood's last publish confirm, s | $tail_s | |
| publish-to-visible during the flood (queue backlog), p50 / p99 ms ($fvisible/$fmarkers markers) | $fp50 / $fp99 | |
| live stream rate held by the generator, events/s (target $RATE, ${STREAM_S} s) | $live_rate | |
| publish-to-visible at $RATE events/s, p50 ms ($visible/$markers markers) | $p50 | |
| publish-to-visible at $RATE events/s, p99 ms | $p99 | ≤ 5,000: $(check "$([ "$visible" = "$markers" ] && echo "$p99")" 5000) |
| publish-to-visible at $RATE events/s, max ms | $pmax | |
| POST /events (publish + broker confirm) under load, p50 / p99 ms | $post50 / $post99 | |
| ingest-worker peak RSS, MB | $worker_rss | |
| ingest-worker CPU over the run, cores (user + system / wall) | $worker_cpu | |
| GET /pools whole history, redelivered copies counted once (median of 3), ms | $dedup_ms | jobs counted: $dedup_total (expected $expected: $([ "$dedup_total" = "$expected" ] && echo exact || echo WRONG)), all counted ${count_s} s after the last was written |
| GET /pools whole history, a fresh pool-selector with DEDUP_JOB_IDS=false, ms | $nodedup_ms | jobs counted: $nodedup_total |
TXT
# A probe that published no marker measured nothing, and a wrong count is a lost or doubled event: the
# table above says which; the part fails (so the smoke run in `make test` does too).
if [ "$fmarkers" = 0 ] || [ "$markers" = 0 ]; then
  log "$STORAGE: a probe published no marker (flood $fmarkers, live $markers; its log: $work)"
  failed=1
fi
# The p99 is over the markers that became visible: one that never did (within the probe's drain) is
# a lost or very late event, so the target is missed and the part fails.
if [ "$visible" != "$markers" ] || [ "$fvisible" != "$fmarkers" ]; then
  log "$STORAGE: markers that never became visible (flood $fvisible/$fmarkers, live $visible/$markers)"
  failed=1
fi
if [ "$dedup_total" != "$expected" ]; then
  log "$STORAGE: pool-selector counted $dedup_total jobs, expected $expected"
  failed=1
fi
}

failed=0
for STORAGE in $STORAGES; do run_storage; done
exit "$failed"
