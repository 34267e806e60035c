#!/usr/bin/env bash
# Ranking: what the ranking strategies buy and what they cost.
#   * regret: `regret-bench` (crates/regret-bench) ranks generated histories whose truth is known (eleven
#     worlds, open and closed loop, the backtest's scoring, the fit's cost) and prints its own tables,
#     with 95 % intervals, and targets (REGRET_SEEDS, REGRET_SETS, REGRET_THREADS, REGRET_PARTS, … pass
#     through, defaults in the binary);
#     a missed target (its exit status 1) is reported, the other parts still run, and this script then
#     exits 1;
#   * /get-pool latency, today vs before the ranking work, on the same data in one run: a 14-day history
#     from the event generator's `stationary` scenario (150 pools), one `compactor --once` pass with
#     SETTLE=0 (closed hours are rollups, as in production), then the current pool-selector and one
#     built from git revision BENCH_BASELINE_REV, one after the other; each answers QUERIES warm
#     requests for distinct pairs and triples of the instance types present (the same sets for every
#     row), one keep-alive connection (load-test/ranking_queries.py): p50/p95/p99/max. Defaults are
#     compared (what users get: the baseline's wilson, today's pooled), with rows for today's binary
#     with strategy=wilson, strategy=thompson and k=3;
#   * backtest, current binary, same data: `GET /backtest` at hourly steps for two settings that fit
#     the 14 days (7 days replayed with 7-day windows; 13 days with 1-day windows): wall time (median of
#     3 after one warm-up request), replay_ms, steps, and each strategy's realized rate and regret;
#     /backtest.svg of the first setting is saved as $BENCH_DATA/backtest.svg (kept).
# The baseline pool-selector is cached as $TARGET_DIR/bench-baseline/pool-selector-<rev>. Without it,
# the revision is checked out in a temporary git worktree and built with
# `cargo build --release --workspace --bins` in the same target directory (dependencies are reused; a
# few minutes the first time), the binary copied there, the release artifacts of the workspace's own
# crates removed (the baseline's share their names) and the current tree built again, so that
# $TARGET_DIR/release/* are today's binaries once more.
#
# Settings: BENCH_QUERIES (200), BENCH_PORT (5393), BENCH_BASELINE_REV (25c309f, the commit before the
# ranking work), BENCH_DATA (bench-data/ranking; the generated history is deleted at the end, the chart
# and logs kept), BENCH_KEEP=1 keeps the history too.
set -euo pipefail
shopt -s inherit_errexit # a failing command inside $(...) fails the substitution too
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
bin="$TARGET_DIR/${BENCH_PROFILE_DIR:-release}"
QUERIES=${BENCH_QUERIES:-200}
PORT=${BENCH_PORT:-5393}
WORK=${BENCH_DATA:-bench-data/ranking}
KEEP=${BENCH_KEEP:-0}
REV=${BENCH_BASELINE_REV:-25c309f}
HOURS=336
SMOKE=${BENCH_SMOKE:-0}
if [[ $SMOKE == 1 ]]; then
    # Tiny: checks that the part runs and prints its tables (no baseline build).
    QUERIES=5 HOURS=48
    export REGRET_SEEDS=${REGRET_SEEDS:-1} REGRET_SETS=${REGRET_SETS:-10}
    BACKTESTS=("window=1d&step=1h&train_window=1d")
fi
PY=.venv/bin/python
BASE="http://127.0.0.1:$PORT"
# The two backtest settings: replayed span and each decision's window, hourly steps, both within 14 days.
[[ ${BENCH_SMOKE:-0} == 1 ]] || BACKTESTS=("window=7d&step=1h&train_window=7d" "window=13d&step=1h&train_window=1d")

# Targets (also printed): current/baseline warm /get-pool latency, p50 and p99 (×), and a backtest's
# wall time (ms).
T_LATENCY_RATIO=2 T_BACKTEST_MS=1000

BENCH_PART=ranking
# shellcheck source=load-test/lib.sh
source load-test/lib.sh

[[ -x $PY ]] || die "$PY is missing (scripts/install-deps.sh creates the venv)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package time; scripts/install-deps.sh installs it)"
command -v cargo >/dev/null || die "cargo is missing"

cleanup() {
    stop_selector
    baseline_cleanup
    # The generated history goes; the chart and the logs in $WORK stay.
    if [[ $KEEP != 1 ]]; then rm -rf "$WORK/data" "$WORK"/body*.json "$WORK"/picks-*.txt; fi
}
trap cleanup EXIT
mkdir -p "$WORK"

# ---------------------------------------------------------------------------------------------------
# The baseline pool-selector, built first: building it replaces $bin/* for a while (see the header).
if [[ $SMOKE != 1 ]]; then
    baseline_selector "$REV" "$WORK/baseline-build.log"
    baseline=$BASELINE
    rev=$BASELINE_REV
fi

for b in compactor pool-selector event-generator regret-bench; do
    [[ -x $bin/$b ]] || die "$bin/$b is missing: build with cargo build --release --workspace --bins"
done

status=0

# ---------------------------------------------------------------------------------------------------
# 1. Regret.
log "regret-bench (REGRET_SEEDS=${REGRET_SEEDS:-default}, REGRET_SETS=${REGRET_SETS:-default})"
echo
echo "### Regret of each strategy (regret-bench)"
echo
regret_rc=0
"$bin/regret-bench" 2>"$WORK/regret-bench.log" || regret_rc=$?
echo
case $regret_rc in
0) echo "regret-bench: every target met." ;;
1)
    echo "regret-bench: a target was NOT met (exit status 1; $(grep -m 1 '^Error:' "$WORK/regret-bench.log" || tail -n 1 "$WORK/regret-bench.log"))."
    status=1
    ;;
*)
    echo "regret-bench: FAILED (exit status $regret_rc; log: $WORK/regret-bench.log): $(grep -m 1 -e '^Error:' -e 'panicked' "$WORK/regret-bench.log" || tail -n 1 "$WORK/regret-bench.log")"
    status=1
    ;;
esac

# ---------------------------------------------------------------------------------------------------
# The history both servers read.
DATA="$WORK/data"
rm -rf "$DATA"
mkdir -p "$DATA"
log "generating the stationary scenario over $HOURS h into $DATA"
gen=$("$bin/event-generator" --scenario stationary --hours "$HOURS" --seed 1 --sink "$DATA" 2>"$WORK/generator.log") ||
    die "event-generator failed (log: $WORK/generator.log)"
read -r g_events g_pools <<<"$(benchstat json - events pools <<<"$gen")"
log "compactor --once (SETTLE=0)"
compact_once "$WORK/compactor.log"
compacted="$C_HOURS hours compacted, $C_DAYS days merged, $C_ERRORS errors"
sync

# A GET that must answer 200; the body goes to $2.
get_ok() { # $1 path, $2 body file
    local code
    code=$(curl -s -o "$2" -w '%{http_code}' "$BASE$1")
    [[ $code == 200 ]] || die "GET $1 answered $code: $(head -c 300 "$2")"
}
# Rollup and raw hours behind a /pools answer (the live view's report, or a baseline's scan report).
scan_hours() {
    local rollup raw
    read -r rollup raw <<<"$(benchstat json "$1" view.rollup_hours//scan.rollup_hours//n/a view.raw_hours//scan.raw_hours//n/a)"
    echo "$rollup rollup hours + $raw raw"
}

# QUERIES warm requests ($1 = label, the rest: --param NAME=VALUE / --picks FILE). Sets LAST_ROW (the
# table row), P50 and P99 (ms) and SLOWEST (the slowest request).
measure() {
    local label=$1 out codes p95 max slowest
    shift
    out=$($PY load-test/ranking_queries.py --port "$PORT" --types "$TYPES" --count "$QUERIES" "$@") ||
        die "ranking_queries.py failed ($label)"
    read -r P50 p95 P99 max codes slowest <<<"$(benchstat json - p50_ms p95_ms p99_ms max_ms 'codes|counts' slowest <<<"$out")"
    LAST_ROW="| $label | $codes | $(fmt2 "$P50") | $(fmt2 "$p95") | $(fmt2 "$P99") | $(fmt2 "$max") |"
    SLOWEST="$slowest"
}

# ---------------------------------------------------------------------------------------------------
# 2. /get-pool latency: the current binary, then the baseline, on the same data and sets.
log "current pool-selector: $QUERIES warm /get-pool requests × 4 (default, wilson, thompson, k=3)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start_selector "$bin/pool-selector"
get_ok "/get-pool" "$WORK/body.json" # warm-up: the first scan of the whole history
get_ok "/pools?limit=10000" "$WORK/body-pools.json"
TYPES=$(benchstat json "$WORK/body-pools.json" 'pools[].instance_type|uniq')
n_types=$(tr ',' '\n' <<<"$TYPES" | wc -l)
n_pools=$(benchstat json "$WORK/body-pools.json" total_pools)
cur_scan=$(scan_hours "$WORK/body-pools.json")
measure "current, default (pooled)" --picks "$WORK/picks-current-default.txt"
row_cur=$LAST_ROW cur_p50=$P50 cur_p99=$P99 cur_slowest=$SLOWEST
measure "current, strategy=wilson" --param strategy=wilson --picks "$WORK/picks-current-wilson.txt"
row_wil=$LAST_ROW wil_p50=$P50 wil_p99=$P99
measure "current, strategy=thompson" --param strategy=thompson
row_tho=$LAST_ROW tho_p50=$P50 tho_p99=$P99
measure "current, k=3" --param k=3
row_k3=$LAST_ROW k3_p50=$P50 k3_p99=$P99
cur_rss=$(selector_rss_mb)
stop_selector

if [[ $SMOKE != 1 ]]; then
log "baseline pool-selector ($rev): $QUERIES warm /get-pool requests"
start_selector "$baseline"
get_ok "/get-pool" "$WORK/body.json"
get_ok "/pools?limit=1" "$WORK/body-pools.json"
base_scan=$(scan_hours "$WORK/body-pools.json")
base_strategy=$(benchstat json "$WORK/body.json" strategy)
measure "baseline $rev, default ($base_strategy)" --picks "$WORK/picks-baseline-default.txt"
row_base=$LAST_ROW base_p50=$P50 base_p99=$P99 base_slowest=$SLOWEST
base_rss=$(selector_rss_mb)
stop_selector
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

same_wilson=$(benchstat same-lines "$WORK/picks-current-wilson.txt" "$WORK/picks-baseline-default.txt")
same_default=$(benchstat same-lines "$WORK/picks-current-default.txt" "$WORK/picks-baseline-default.txt")
r50=$(ratio "$cur_p50" "$base_p50")
r99=$(ratio "$cur_p99" "$base_p99")
with_ratios() { echo "$1 $(ratio "$2" "$base_p50")× | $(ratio "$3" "$base_p99")× |"; }

cat <<TXT

### /get-pool latency: current vs baseline $rev, same data

The \`stationary\` scenario over $HOURS h ($((HOURS / 24)) days, seed 1): $g_events events, $g_pools pools ($n_pools with jobs, $n_types instance types); one \`compactor --once\` pass (SETTLE=0): $compacted. Scans: current $cur_scan, baseline $base_scan. Each row: $QUERIES warm requests in one process (after one whole-history \`/get-pool\` and 10 untimed requests), each for a different pair or triple of instance types (the same sets in every row), whole history (the default window), one keep-alive connection. The servers ran one after the other; load average before / after: $load_before / $load_after ($(nproc) cores).

| server, request | answers | p50 ms | p95 ms | p99 ms | max ms | p50 vs baseline | p99 vs baseline |
|---|---:|---:|---:|---:|---:|---:|---:|
$row_base 1.00× | 1.00× |
$(with_ratios "$row_cur" "$cur_p50" "$cur_p99")
$(with_ratios "$row_wil" "$wil_p50" "$wil_p99")
$(with_ratios "$row_tho" "$tho_p50" "$tho_p99")
$(with_ratios "$row_k3" "$k3_p50" "$k3_p99")

Peak RSS: current $(fmt1 "$cur_rss") MB, baseline $(fmt1 "$base_rss") MB. Same pick as the baseline's default ($base_strategy) for the same set: current strategy=wilson $same_wilson of $QUERIES, current default $same_default of $QUERIES. Slowest request: current default $cur_slowest; baseline $base_slowest.

Targets: current default / baseline default p50 ≤ ${T_LATENCY_RATIO}× $(met "$r50" "$T_LATENCY_RATIO") (${r50}×); p99 ≤ ${T_LATENCY_RATIO}× $(met "$r99" "$T_LATENCY_RATIO") (${r99}×).
TXT
else
cat <<TXT

### /get-pool latency (smoke run: no baseline)

| server, request | answers | p50 ms | p95 ms | p99 ms | max ms |
|---|---:|---:|---:|---:|---:|
$row_cur
$row_wil
$row_tho
$row_k3
TXT
fi

# ---------------------------------------------------------------------------------------------------
# 3. Backtest, current binary, same data.
log "backtest: ${#BACKTESTS[@]} settings, 1 warm-up + 3 timed requests each"
start_selector "$bin/pool-selector"
bt_rows=() strat_rows=() bt_targets=()
for q in "${BACKTESTS[@]}"; do
    walls=() replays=()
    for i in 0 1 2 3; do
        read -r code t < <(curl -s -o "$WORK/body.json" -w '%{http_code} %{time_total}\n' "$BASE/backtest?$q")
        [[ $code == 200 ]] || die "GET /backtest?$q answered $code: $(head -c 300 "$WORK/body.json")"
        ms=$(benchstat calc 't * 1000' t="$t")
        if ((i == 0)); then
            first_ms=$ms
        else
            walls+=("$ms")
            replays+=("$(benchstat json "$WORK/body.json" replay_ms)")
        fi
    done
    wall=$(median "${walls[@]}")
    replay=$(median "${replays[@]}")
    read -r steps candidates scan h_pool h_terminations h_jobs <<<"$(benchstat json "$WORK/body.json" steps candidates \
        rows//0 hindsight.pool_id//none hindsight.spot_terminations//none hindsight.jobs//none)"
    hindsight="$h_pool ($h_terminations/$h_jobs terminations/jobs)"
    [[ $h_pool != none ]] || hindsight="none (none terminations/jobs)"
    bt_rows+=("| \`$q\` | $steps | $candidates | $(fmt1 "$first_ms") | $(fmt1 "$wall") | $(fmt1 "$replay") | $scan | $hindsight |")
    # Each strategy's row; a rate of no jobs (null) shows as –.
    while read -r s_name s_steps s_nojobs s_jobs s_terminations s_rate s_regret s_pools; do
        strat_rows+=("| \`$q\` | $s_name | $s_steps ($s_nojobs without jobs on the pick) | $s_jobs | $s_terminations | $s_rate | $s_regret | $s_pools |")
    done < <(benchstat json "$WORK/body.json" --each strategies --null – strategy steps steps_without_jobs jobs \
        spot_terminations 'realized_rate|mul:100|fmt:2' 'regret|mul:100|fmt:2' distinct_pools)
    bt_targets+=("\`$q\` ≤ $T_BACKTEST_MS ms $(met "$wall" "$T_BACKTEST_MS") ($(fmt1 "$wall") ms)")
done
svg_q=${BACKTESTS[0]}
code=$(curl -s -o "$WORK/backtest.svg" -w '%{http_code}' "$BASE/backtest.svg?$svg_q")
[[ $code == 200 ]] || die "GET /backtest.svg?$svg_q answered $code: $(head -c 300 "$WORK/backtest.svg")"
grep -q '<svg' "$WORK/backtest.svg" || die "/backtest.svg?$svg_q is not an SVG (saved in $WORK/backtest.svg)"
bt_rss=$(selector_rss_mb)
stop_selector

cat <<TXT

### Backtest (current binary, same data)

Every strategy replayed at hourly steps; wall time is the median of 3 requests after one warm-up request (the first column), replay_ms (the replay after reading the view, from the answer) likewise. Regret: every step counts, each pick against the best candidate at that step by hindsight rates (README, "Backtest"); the best single pool in hindsight is shown for reference. Peak RSS after the backtests: $(fmt1 "$bt_rss") MB.

| request | steps | candidates | first request ms | wall ms | replay_ms | events read from the view | best in hindsight |
|---|---:|---:|---:|---:|---:|---|---|
$(printf '%s\n' "${bt_rows[@]}")

| request | strategy | steps | jobs | terminations | realized rate % | regret, points | distinct pools |
|---|---|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${strat_rows[@]}")

Chart of \`/backtest.svg?$svg_q\`: $WORK/backtest.svg ($(wc -c <"$WORK/backtest.svg") bytes).

Targets: backtest wall time $(printf '%s; ' "${bt_targets[@]}" | sed 's/; $//').
TXT

# The exit status says whether regret-bench met its targets (the others are only reported); a smoke run
# only checks that everything ran.
[[ $SMOKE == 1 ]] || ((status == 0)) || exit "$status"
