#!/usr/bin/env bash
# `make bench`: release builds, then every benchmark part in one run, each printing a markdown table.
# Parts: bench-selector.sh (pool-selector's raw-event path vs DuckDB), bench-rollups.sh (compactor's
# cost, and pool-selector on rollups vs raw events vs DuckDB, 30 and 365 days), bench-ranking.sh
# (each strategy's regret, /get-pool latency today vs before the ranking work, backtest), bench-ingest.sh
# (RabbitMQ → worker → storage), bench-relay.sh (relay vs nginx proxy_cache), bench-monitor.sh
# (backlog → desired scale).
# BENCH_PARTS="selector relay" runs a subset. Results are also written to bench-results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --workspace --bins
parts=${BENCH_PARTS:-selector rollups ranking live ingest relay monitor}
out=bench-results.md
echo "# Benchmark results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)" > "$out"
status=0
for part in $parts; do
  script="load-test/bench-$part.sh"
  [ -x "$script" ] || { echo "missing $script" >&2; status=1; continue; }
  echo; echo "## $part"
  if ! "$script" | tee -a "$out"; then
    echo "bench part $part failed" >&2
    status=1
  fi
done
echo; echo "(tables saved in $out)"
exit $status
