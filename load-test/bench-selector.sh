#!/usr/bin/env bash
# pool-selector against DuckDB running the seed's query, side by side on the same files.
# 2M events over 30 days (720 hourly partitions). Every figure is the median of REPEAT fresh starts
# (a new process per measurement); the page cache is warm for both. pool-selector reads the history once
# into its live view (its start: until /ready) and then answers from memory (its request); DuckDB reads
# the files for every query. This part reads raw events only: the compactor is not run here and
# pool-selector gets USE_ROLLUPS=false, so every hour is read from NDJSON like DuckDB reads it. Rollups are
# measured by bench-rollups.sh. BENCH_SMOKE=1: tiny sizes (checks that the part runs).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
bin="$TARGET_DIR/${BENCH_PROFILE_DIR:-release}"
if [[ ${BENCH_SMOKE:-0} == 1 ]]; then
  EVENTS=20000 HOURS=48 REPEAT=1
else
  EVENTS=${BENCH_EVENTS:-2000000}
  HOURS=${BENCH_HOURS:-720}
  REPEAT=${BENCH_REPEAT:-3}
fi
PORT=${BENCH_PORT:-5391}
DATA=${BENCH_DATA:-bench-data/selector-events}
WORK=$(dirname "$DATA") # pool-selector.log
BASE="http://127.0.0.1:$PORT"
PY=.venv/bin/python

BENCH_PART=selector
# shellcheck source=load-test/lib.sh
source load-test/lib.sh

rm -rf "$DATA"; mkdir -p "$DATA"
"$bin/event-generator" --sink "$DATA" --events "$EVENTS" --hours "$HOURS" --seed 7 --truth "$DATA/../selector-truth.json" >/dev/null 2>&1
objects=$(find "$DATA" -name '*.json' | wc -l)
bytes=$(du -sb "$DATA" | cut -f1)
partitions=$(find "$DATA" -mindepth 2 -maxdepth 2 -type d -name 'hr=*' | wc -l)
cat "$DATA"/*/*/*.json > /dev/null   # same warm page cache for both engines
sync                                 # and no writeback of the fresh files competing with the first runs

# One fresh pool-selector: start, time until /ready (the view loaded), time one request, read peak RSS,
# stop. → "request_ms rss_mb winner load_ms"
selector_once() { # $1 = query string, extra NAME=VALUE environment in $2
  local extra=() t
  [ -n "${2:-}" ] && extra=("$2")
  trap stop_selector EXIT # this runs in $(...): its own trap stops the server if anything fails
  start_selector "$bin/pool-selector" USE_ROLLUPS=false "${extra[@]}"
  t=$(curl -s -o "$WORK/selector-body.json" -w '%{time_total}' "$BASE/get-pool?$1")
  echo "$(benchstat calc 't * 1000' t="$t") $(selector_rss_mb) $(benchstat json "$WORK/selector-body.json" pool_id) $SELECTOR_READY_MS"
  stop_selector
}

selector() { # $1 query, $2 env → "median_ms max_rss winner median_load_ms"
  local ms=() rss=() load=() run m r winner l
  for _ in $(seq 1 "$REPEAT"); do
    run=$(selector_once "$1" "${2:-}")
    read -r m r winner l <<<"$run"
    ms+=("$m") rss+=("$r") load+=("$l")
  done
  echo "$(median "${ms[@]}") $(maximum "${rss[@]}") $winner $(median "${load[@]}")"
}

duck() { # $1 window seconds, $2 extra flag → "median_ms max_rss winner"
  local ms=() rss=() run m r winner
  for _ in $(seq 1 "$REPEAT"); do
    # shellcheck disable=SC2086 # $2 is an optional flag: absent means no argument at all
    run=$($PY load-test/duckdb_seed.py --glob "$DATA/*/*/*.json" --window "$1" ${2:-})
    run=$(benchstat json - ms peak_rss_mb pool_id <<<"$run")
    read -r m r winner <<<"$run"
    ms+=("$m") rss+=("$r")
  done
  echo "$(median "${ms[@]}") $(maximum "${rss[@]}") $winner"
}

read -r s24 r24 _ load <<<"$(selector 'window=24h')"
read -r sall rall _ _ <<<"$(selector 'window=0')"
read -r _ _ wn24 _ <<<"$(selector 'window=24h&strategy=naive')"
read -r snall rnall wnall _ <<<"$(selector 'window=0&strategy=naive')"
read -r snd rnd _ loadnd <<<"$(selector 'window=0' 'DEDUP_JOB_IDS=false')"
read -r d24 dr24 dw24 <<<"$(duck 86400)"
read -r dp24 dpr24 _ <<<"$(duck 86400 --prune)"
read -r dall drall dwall <<<"$(duck 0)"

same() { [ "$1" = "$2" ] && echo "yes" || echo "NO ($1 vs $2)"; }

cat <<TXT

Dataset: $EVENTS events over $HOURS h, $partitions hourly partitions, $objects objects, $((bytes / 1048576)) MiB NDJSON. Median of $REPEAT fresh starts each. pool-selector reads raw events here (USE_ROLLUPS=false; no compactor run; rollups: see the rollups part): its start reads the whole history once into its view (median $load ms until /ready; $loadnd ms with DEDUP_JOB_IDS=false), then each request is answered from memory. DuckDB reads the files for every query.

| query (first request after the start, fresh process) | pool-selector ms | DuckDB seed query ms | ratio (selector/DuckDB) | pool-selector peak RSS MB | DuckDB peak RSS MB |
|---|---:|---:|---:|---:|---:|
| start: the whole history read into the view (until /ready) | $load | $dall | $(ratio "$load" "$dall") | $rall | $drall |
| 24-hour window, default strategy | $s24 | $d24 | $(ratio "$s24" "$d24") | $r24 | $dr24 |
| 24-hour window, DuckDB given a dt partition filter too | $s24 | $dp24 | $(ratio "$s24" "$dp24") | $r24 | $dpr24 |
| whole history, default strategy | $sall | $dall | $(ratio "$sall" "$dall") | $rall | $drall |
| whole history, naive (the seed's formula) | $snall | $dall | $(ratio "$snall" "$dall") | $rnall | $drall |
| whole history, no dedup (DEDUP_JOB_IDS=false) | $snd | $dall | $(ratio "$snd" "$dall") | $rnd | $drall |

Targets: a request ≤ 50 ms; the start (reading the whole raw history once) ≤ DuckDB's whole-history query × 1.0 (stretch 0.5); peak RSS ≤ 300 MB.
Same winner as the seed's query (naive strategy vs DuckDB): 24 h $(same "$wn24" "$dw24"), whole history $(same "$wnall" "$dwall").
TXT
