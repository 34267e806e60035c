#!/usr/bin/env bash
# `make bench`: release builds, then every benchmark part in one run, each printing a markdown table.
# Parts: bench-selector.sh (pool-selector's raw-event path vs DuckDB), bench-rollups.sh (compactor's
# cost, and pool-selector on rollups vs raw events vs DuckDB, 30 and 365 days), bench-ranking.sh
# (each strategy's regret, /get-pool latency today vs before the ranking work, backtest), bench-live.sh
# (the live view over S3 vs the build before it, in-process rankings on a year of 432 pools),
# bench-ingest.sh (RabbitMQ → worker → a folder and S3), bench-relay.sh (relay vs nginx proxy_cache),
# bench-monitor.sh (backlog → desired scale).
# BENCH_PARTS="selector relay" runs a subset. Results are also written to bench-results.md, headed by
# the machine, the commit and the date.
#
# BENCH_SMOKE=1 (what `make test` runs): every part with tiny sizes on the debug binaries the test build
# made (BENCH_PROFILE_DIR=debug, nothing built here), into bench-smoke-results.md; it fails when a part
# cannot run or prints no table. Its figures mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
SMOKE=${BENCH_SMOKE:-0}
if [[ $SMOKE == 1 ]]; then
  export BENCH_SMOKE=1 BENCH_PROFILE_DIR=${BENCH_PROFILE_DIR:-debug}
  out=bench-smoke-results.md
else
  scripts/install-deps.sh
  cargo build --release --workspace --bins
  out=bench-results.md
fi
parts=${BENCH_PARTS:-selector rollups ranking live ingest relay monitor}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"
BENCH_PART=all
# shellcheck source=load-test/lib.sh
source load-test/lib.sh
machine=$(benchstat machine) # "N cores (CPU model), M GiB, kernel"
{
  echo "# Benchmark results$([[ $SMOKE == 1 ]] && echo " (smoke run: tiny sizes, debug binaries)")"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $commit; $machine."
} > "$out"
status=0
failed=()
for part in $parts; do
  script="load-test/bench-$part.sh"
  [ -x "$script" ] || { echo "missing $script" >&2; status=1; failed+=("$part"); continue; }
  echo; echo "## $part" | tee -a "$out"
  part_out=$(mktemp)
  rc=0
  # A smoke run must never hang `make test`: each part gets BENCH_PART_TIMEOUT seconds (900 in smoke
  # mode; no limit otherwise).
  limit=${BENCH_PART_TIMEOUT:-$([[ ${BENCH_SMOKE:-0} == 1 ]] && echo 900 || echo 0)}
  timeout "$limit" "$script" | tee "$part_out" | tee -a "$out" || rc=$?
  if ((rc != 0)); then
    echo "bench part $part failed (exit $rc)" >&2
    status=1
    failed+=("$part")
  elif ! grep -q '^|.*|$' "$part_out"; then
    echo "bench part $part printed no table" >&2
    status=1
    failed+=("$part")
  fi
  rm -f "$part_out"
done
echo; echo "(tables saved in $out)"
if ((status != 0)); then echo "bench parts that failed: ${failed[*]}" >&2; fi
exit $status
