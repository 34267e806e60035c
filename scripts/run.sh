#!/usr/bin/env bash
# `make run`: the main job on an embedded default, no servers needed.
# Builds only the four binaries it runs (pool-selector, event-generator without its RabbitMQ sink,
# compactor, poolctl) in the `quick` profile (no optimisation, no debug info: the fastest to compile
# from nothing; RUN_PROFILE=release for optimised ones), writes a sample history to ./data/events when
# that folder holds no events yet, rolls its closed hours up with one `compactor --once` pass, serves it
# on :5050 and prints example calls. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
DATA=${EVENTS_DIR:-data/events}
PORT=${PORT:-5050}

PROFILE=${RUN_PROFILE:-quick}
started_build=$(date +%s)
cargo build --profile "$PROFILE" --bins -p pool-selector -p event-generator -p compactor -p poolctl --no-default-features
echo "==> built in $(($(date +%s) - started_build)) s (cargo profile $PROFILE)"
bin="$TARGET_DIR/$PROFILE"

if [ -z "$(find "$DATA" -name '*.json' -print -quit 2>/dev/null)" ]; then
  echo "==> writing a sample history: 100,000 job events over the last 72 hours into $DATA"
  mkdir -p "$DATA"
  # A fixed pool list, so the example calls below (and the README's) name instance types the sample
  # holds: 4 instance types in 8 zones. A random draw from the 432-pool catalogue might miss them.
  pools=()
  for it in c6a.xlarge m6a.xlarge r6a.xlarge c7g.xlarge; do
    for az in us-east-1a us-east-1b us-east-1c us-east-1d us-east-1e us-east-1f us-west-2a us-west-2b; do
      pools+=("pool-$it-$az")
    done
  done
  "$bin/event-generator" --sink "$DATA" --events 100000 --hours 72 --seed 42 \
    --pool-list "$(IFS=,; echo "${pools[*]}")" --truth "$(dirname "$DATA")/truth.json"
fi

# Roll up every closed hour before serving, so the first ranking reads a few Parquet rollups instead of
# every raw event (SETTLE=0: a local folder has no events in flight). Compaction is idempotent, so on a
# later `make run` this only picks up hours that closed or changed since. Its log is kept quiet unless
# it fails; pool-selector reads whatever is not compacted from the raw events, so a failure is a warning.
compact_log="$(dirname "$DATA")/compactor.log"
started=$(date +%s%N)
# `--report text`: the compactor's own one-line account of its pass, on stdout.
if summary=$(EVENTS_URL="$DATA" SETTLE=0 LOG_FORMAT=json "$bin/compactor" --once --report text 2>"$compact_log"); then
  echo "==> compactor --once (SETTLE=0) over $DATA: $summary"
else
  ms=$((($(date +%s%N) - started) / 1000000))
  # A pass with failed hours still prints its summary; the log's last lines say why.
  echo "==> WARNING: compactor --once over $DATA failed after $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s${summary:+ ($summary)}; pool-selector reads the hours it missed from raw events. The end of its log ($compact_log):" >&2
  tail -n 5 "$compact_log" >&2
fi

echo "==> starting pool-selector on :$PORT over $DATA"
EVENTS_URL="$DATA" PORT="$PORT" "$bin/pool-selector" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT
# Ready once its view of the history is loaded.
for _ in $(seq 1 1200); do
  curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { echo "pool-selector exited; see the log above" >&2; exit 1; }
  sleep 0.1
done

cat <<TXT

pool-selector is serving $DATA on http://127.0.0.1:$PORT  (Ctrl-C to stop)

  curl -s 'http://127.0.0.1:$PORT/get-pool?instance_types=c6a.xlarge,m6a.xlarge'
  curl -s 'http://127.0.0.1:$PORT/get-pool?window=24h&availability_zones=us-east-1a,us-east-1b'
  curl -s 'http://127.0.0.1:$PORT/pools?limit=5&window=7d'
  curl -s 'http://127.0.0.1:$PORT/get-pool?instance_types=c6a.xlarge,m6a.xlarge&k=3'   # + 2 diverse alternatives
  curl -s 'http://127.0.0.1:$PORT/get-pool?strategy=thompson'          # one posterior draw: spreads traffic
  curl -s 'http://127.0.0.1:$PORT/pools?strategy=naive&limit=5'      # the seed's raw rate
  curl -s 'http://127.0.0.1:$PORT/backtest?window=48h&train_window=24h&instance_types=c6a.xlarge,m6a.xlarge'
  open    'http://127.0.0.1:$PORT/backtest.svg?window=48h&train_window=24h'    # the backtest as a chart
  curl -s 'http://127.0.0.1:$PORT/get-pool?instance_types=oops'       # a 400 naming the parameter
  POOL_SELECTOR_URL=http://127.0.0.1:$PORT $bin/poolctl pools -t c6a.xlarge,m6a.xlarge   # the ranking as a table
  open    http://127.0.0.1:$PORT/docs/                                   # Swagger UI
  curl -s  http://127.0.0.1:$PORT/metrics

The generator's hidden truth (per-pool termination probability) is in $(dirname "$DATA")/truth.json.
TXT
wait $pid
