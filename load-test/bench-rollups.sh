#!/usr/bin/env bash
# Rollups: what `compactor` costs and what it buys pool-selector, on two generated histories:
#   A: 2,000,000 events over 720 hours (30 days);  B: 5,000,000 events over 8,760 hours (365 days).
# For each dataset:
#   * compaction: one `compactor --once` pass with SETTLE=0 (wall time, events generated per second,
#     peak RSS from GNU time), then the same command again, which finds nothing to do (idempotent);
#   * whole history (`/get-pool?window=0`), first request in a fresh pool-selector: rollups (the
#     default) vs USE_ROLLUPS=false (raw events) vs DuckDB's seed query on the same NDJSON files, each the
#     median of REPEAT fresh processes, pool-selector's peak RSS (VmHWM), and whether rollups and raw
#     events pick the same pool with the same counts;
#   * QUERIES distinct warm queries in one process (after one whole-history warm-up): instance-type
#     subsets of the types present × windows 1h…30d and 0, one keep-alive connection
#     (load-test/warm_queries.py), p50/p99/max.
# As in bench-selector.sh the page cache is warm for every engine and fresh files are synced first.
#
# Settings: BENCH_EVENTS_A/BENCH_HOURS_A, BENCH_EVENTS_B/BENCH_HOURS_B (smoke test: e.g. 50000 / 72),
# BENCH_DATASETS ("A B"), BENCH_REPEAT (5), BENCH_QUERIES (100), BENCH_PORT (5392),
# BENCH_DATA (bench-data/rollups; the datasets are deleted at the end, the logs kept), BENCH_KEEP=1
# keeps the generated data (A and B are generated one after the other; B alone is ~800 MB).
set -euo pipefail
shopt -s inherit_errexit # a failing command inside $(...) fails the substitution too
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
bin="$TARGET_DIR/${BENCH_PROFILE_DIR:-release}"
EVENTS_A=${BENCH_EVENTS_A:-2000000}
HOURS_A=${BENCH_HOURS_A:-720}
EVENTS_B=${BENCH_EVENTS_B:-5000000}
HOURS_B=${BENCH_HOURS_B:-8760}
DATASETS=${BENCH_DATASETS:-A B}
REPEAT=${BENCH_REPEAT:-5}
QUERIES=${BENCH_QUERIES:-100}
if [[ ${BENCH_SMOKE:-0} == 1 ]]; then
    EVENTS_A=20000 HOURS_A=48 DATASETS=A REPEAT=1 QUERIES=5
fi
PORT=${BENCH_PORT:-5392}
WORK=${BENCH_DATA:-bench-data/rollups}
KEEP=${BENCH_KEEP:-0}
PY=.venv/bin/python
BASE="http://127.0.0.1:$PORT"

# Targets (also printed): whole history rollups/DuckDB ratio, pool-selector peak RSS (MB), warm
# latency p50 and p99 (ms), and the first whole-history request on the 365-day dataset (ms).
T_RATIO=0.15 T_RSS=150 T_P50=5 T_P99=20 T_FIRST_YEAR=250

BENCH_PART=rollups
# shellcheck source=load-test/lib.sh
source load-test/lib.sh

for b in compactor pool-selector event-generator; do
    [[ -x $bin/$b ]] || die "$bin/$b is missing: build with cargo build --release --workspace --bins"
done
# GNU time, not the shell keyword: it reports the compactor's peak RSS after the process has exited.
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package time; scripts/install-deps.sh installs it)"
[[ -x $PY ]] || die "$PY is missing (scripts/install-deps.sh creates the venv with duckdb)"

cleanup() {
    stop_selector
    # The datasets are large (B is ~800 MB of NDJSON): gone at the end, also after a failure. The logs
    # in $WORK stay, for the error message that names them.
    if [[ $KEEP != 1 ]]; then rm -rf "$WORK/A" "$WORK/B" "$WORK"/truth-*.json "$WORK/body.json"; fi
}
trap cleanup EXIT
mkdir -p "$WORK"

# The winner of a /get-pool answer with its counts, to compare two engines' answers exactly.
answer() { benchstat json "$1" pool_id jobs spot_terminations --sep ,; }

# The helpers below return through globals, not $(...): a process they start stays known to this shell
# (and to the EXIT trap), and a failure stops the script instead of leaving an empty value.

# REPEAT fresh processes, one whole-history request each. Sets FIRST_MS (median time from the process's
# start to that answer: the view's load, then the request), FIRST_RSS (max, MB) and FIRST_ANSWER
# ("pool,jobs,terminations", or VARIES if the runs disagree).
selector_first() { # $1 = USE_ROLLUPS value
    local ms=() rss=() answers=() i code t
    for ((i = 0; i < REPEAT; i++)); do
        start_selector "$bin/pool-selector" USE_ROLLUPS="$1"
        read -r code t < <(curl -s -o "$WORK/body.json" -w '%{http_code} %{time_total}\n' "$BASE/get-pool?window=0")
        [[ $code == 200 ]] || die "GET /get-pool?window=0 (USE_ROLLUPS=$1) answered $code: $(head -c 300 "$WORK/body.json")"
        rss+=("$(selector_rss_mb)")
        stop_selector
        ms+=("$(benchstat calc 'ready + t * 1000' ready="$SELECTOR_READY_MS" t="$t")")
        answers+=("$(answer "$WORK/body.json")")
    done
    FIRST_MS=$(median "${ms[@]}")
    FIRST_RSS=$(maximum "${rss[@]}")
    FIRST_ANSWER=$(printf '%s\n' "${answers[@]}" | sort -u)
    [[ $(wc -l <<<"$FIRST_ANSWER") -eq 1 ]] || FIRST_ANSWER=VARIES
}

# DuckDB's seed query over the raw NDJSON only (the glob leaves _rollups/ out). Sets DUCK_MS (median)
# and DUCK_RSS (max, MB).
duck() {
    local ms=() rss=() i out
    for ((i = 0; i < REPEAT; i++)); do
        out=$($PY load-test/duckdb_seed.py --glob "$DATA/dt=*/hr=*/*.json" --window 0)
        out=$(benchstat json - ms peak_rss_mb <<<"$out")
        ms+=("${out% *}")
        rss+=("${out#* }")
    done
    DUCK_MS=$(median "${ms[@]}")
    DUCK_RSS=$(maximum "${rss[@]}")
}

run_dataset() { # $1 name, $2 events, $3 hours
    local name=$1 events=$2 hours=$3
    DATA="$WORK/$name"
    rm -rf "$DATA"
    mkdir -p "$DATA"
    log "dataset $name: generating $events events over $hours h into $DATA"
    "$bin/event-generator" --sink "$DATA" --events "$events" --hours "$hours" --seed 7 \
        --truth "$WORK/truth-$name.json" >/dev/null 2>"$WORK/generator-$name.log" ||
        die "event-generator failed (log: $WORK/generator-$name.log)"
    local objects bytes partitions
    objects=$(find "$DATA" -name '*.json' | wc -l)
    bytes=$(du -sb "$DATA" | cut -f1)
    partitions=$(find "$DATA" -mindepth 2 -maxdepth 2 -type d -name 'hr=*' | wc -l)
    find "$DATA" -name '*.json' -exec cat {} + >/dev/null # the same warm page cache for every engine
    sync                                                   # no writeback of fresh files during the runs

    log "dataset $name: compactor --once (SETTLE=0)"
    compact_once "$WORK/compactor-$name-1.log"
    local c_s=$C_SECONDS c_rss=$C_RSS c_hours=$C_HOURS c_days=$C_DAYS c_events=$C_EVENTS c_err=$C_ERRORS
    compact_once "$WORK/compactor-$name-2.log"
    local n_s=$C_SECONDS n_rss=$C_RSS n_hours=$C_HOURS n_days=$C_DAYS
    local eps rollup_files rollup_bytes
    eps=$(benchstat calc --digits 0 'events / max(seconds, 0.001)' events="$events" seconds="$c_s")
    rollup_files=$(find "$DATA/_rollups" -name '*.parquet' 2>/dev/null | wc -l)
    rollup_bytes=$(du -sb "$DATA/_rollups" 2>/dev/null | cut -f1)
    sync

    log "dataset $name: whole history, first request: rollups, raw, DuckDB ($REPEAT runs each)"
    selector_first true
    local r_ms=$FIRST_MS r_rss=$FIRST_RSS r_ans=$FIRST_ANSWER
    selector_first false
    local w_ms=$FIRST_MS w_rss=$FIRST_RSS w_ans=$FIRST_ANSWER
    duck
    local d_ms=$DUCK_MS d_rss=$DUCK_RSS

    log "dataset $name: $QUERIES distinct warm queries in one process"
    start_selector "$bin/pool-selector" USE_ROLLUPS=true
    curl -fs -o /dev/null "$BASE/get-pool?window=0" || die "warm-up request failed"
    local types scan pools_rollup pools_raw pools_objects pools_mib
    curl -fs -o "$WORK/body.json" "$BASE/pools?window=0" || die "GET /pools?window=0 failed"
    types=$(benchstat json "$WORK/body.json" 'pools[].instance_type|uniq')
    scan=$(benchstat json "$WORK/body.json" view.rollup_hours//n/a view.raw_hours//n/a view.objects//n/a \
        'view.bytes|div:1048576|fmt:1//0.0')
    read -r pools_rollup pools_raw pools_objects pools_mib <<<"$scan"
    scan="$pools_rollup hours loaded from rollups, $pools_raw raw; $pools_objects objects, $pools_mib MiB read once"
    local warm q_p50 q_p99 q_max q_codes q_index q_requests q_slowest
    warm=$($PY load-test/warm_queries.py --port "$PORT" --types "$types" --count "$QUERIES")
    warm=$(benchstat json - p50_ms p99_ms max_ms 'codes|counts' slowest_index requests slowest <<<"$warm")
    read -r q_p50 q_p99 q_max q_codes q_index q_requests q_slowest <<<"$warm"
    q_slowest="no. $q_index of $q_requests: $q_slowest"
    local q_rss
    q_rss=$(selector_rss_mb)
    stop_selector

    local ratio same rss_max
    ratio=$(benchstat ratio --digits 3 "$r_ms" "$d_ms")
    rss_max=$(maximum "$r_rss" "$q_rss")
    # The target is the same pool; equal jobs and terminations as well say the rollups lost nothing.
    if [[ $r_ans == VARIES || $w_ans == VARIES || ${r_ans%%,*} != "${w_ans%%,*}" ]]; then
        same="NO (rollups ${r_ans//,/, }; raw ${w_ans//,/, })"
    elif [[ $r_ans == "$w_ans" ]]; then
        same="yes (${r_ans%%,*}; same jobs and terminations: ${r_ans#*,})"
    else
        same="yes (${r_ans%%,*}), but the counts differ: rollups ${r_ans#*,}, raw ${w_ans#*,}"
    fi
    local ntypes
    ntypes=$(tr ',' '\n' <<<"$types" | wc -l)

    cat <<TXT

### Dataset $name: $events events over $hours h ($((hours / 24)) days)

$partitions hourly partitions, $objects objects, $((bytes / 1048576)) MiB NDJSON; after compaction $rollup_files rollup files, $(benchstat calc --digits 1 'b / 1048576' b="${rollup_bytes:-0}") MiB Parquet. The view held $scan. Median of $REPEAT fresh processes for each first request (the time from the process's start: the view's load, then the request).

| measurement | result | target |
|---|---:|---|
| compaction, \`compactor --once\` (SETTLE=0) | $c_s s, $eps events/s, peak RSS $(fmt1 "$c_rss") MB ($c_hours hours compacted, $c_days days merged, $c_events events read, $c_err errors) | |
| compaction again (nothing left to do) | $n_s s ($n_hours hours compacted, $n_days days merged), peak RSS $(fmt1 "$n_rss") MB | |
| whole history, first request, rollups (default) | $(fmt1 "$r_ms") ms | |
| whole history, first request, raw events (USE_ROLLUPS=false) | $(fmt1 "$w_ms") ms | |
| whole history, DuckDB seed query (raw NDJSON) | $(fmt1 "$d_ms") ms | |
| ratio rollups / DuckDB | $ratio | ≤ $T_RATIO |
| ratio rollups / raw events | $(benchstat ratio --digits 3 "$r_ms" "$w_ms") | |
| pool-selector peak RSS, first request: rollups / raw | $(fmt1 "$r_rss") / $(fmt1 "$w_rss") MB | ≤ $T_RSS MB (rollups) |
| DuckDB peak RSS | $(fmt1 "$d_rss") MB | |
| same answer, rollups vs raw (pool_id; jobs,terminations) | $same | same pool_id |
| $QUERIES distinct warm queries, one process ($ntypes instance types; answers $q_codes): p50 / p99 / max | $(fmt2 "$q_p50") / $(fmt2 "$q_p99") / $(fmt2 "$q_max") ms | p50 ≤ $T_P50 ms, p99 ≤ $T_P99 ms |
| pool-selector peak RSS after the warm queries | $(fmt1 "$q_rss") MB | ≤ $T_RSS MB |

Slowest warm query (the max above): $q_slowest.
TXT
    local targets
    targets="ratio rollups/DuckDB ≤ $T_RATIO $(met "$ratio" "$T_RATIO") ($ratio)"
    if [[ $name == B ]]; then
        targets+="; first whole-history request ≤ $T_FIRST_YEAR ms $(met "$r_ms" "$T_FIRST_YEAR") ($(fmt1 "$r_ms") ms)"
    fi
    targets+="; pool-selector peak RSS ≤ $T_RSS MB $(met "$rss_max" "$T_RSS") ($(fmt1 "$rss_max") MB)"
    targets+="; warm p50 ≤ $T_P50 ms $(met "$q_p50" "$T_P50"); warm p99 ≤ $T_P99 ms $(met "$q_p99" "$T_P99")"
    targets+="; same pool_id rollups vs raw $([[ $same == yes* ]] && echo met || echo "NOT met")"
    echo
    echo "Targets ($name): $targets."

    if [[ $KEEP != 1 ]]; then rm -rf "$DATA"; fi # before the next dataset, to bound the disk used
}

for d in $DATASETS; do
    case $d in
    A) run_dataset A "$EVENTS_A" "$HOURS_A" ;;
    B) run_dataset B "$EVENTS_B" "$HOURS_B" ;;
    *) die "BENCH_DATASETS takes A and/or B (got $d)" ;;
    esac
done
