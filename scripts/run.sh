#!/usr/bin/env bash
# `make run`: the main job on an embedded default, no servers needed.
# Builds the release binaries (the same command as every other script, so none of them rebuilds
# DataFusion), writes a sample history to ./data/events when that folder holds no events yet, serves
# it on :5050 and prints example calls. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
DATA=${EVENTS_DIR:-data/events}
PORT=${PORT:-5050}

cargo build --release --workspace --bins   # one feature set for every script: no rebuilds between them
bin="$TARGET_DIR/release"

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

echo "==> starting pool-selector on :$PORT over $DATA"
EVENTS_URL="$DATA" PORT="$PORT" "$bin/pool-selector" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { echo "pool-selector exited; see the log above" >&2; exit 1; }
  sleep 0.1
done

cat <<TXT

pool-selector is serving $DATA on http://127.0.0.1:$PORT  (Ctrl-C to stop)

  curl -s 'http://127.0.0.1:$PORT/get-pool?instance_types=c6a.xlarge,m6a.xlarge'
  curl -s 'http://127.0.0.1:$PORT/get-pool?window=24h&availability_zones=us-east-1a,us-east-1b'
  curl -s 'http://127.0.0.1:$PORT/pools?limit=5&window=7d'
  curl -s 'http://127.0.0.1:$PORT/pools?strategy=naive&limit=5'      # the seed's raw rate
  curl -s 'http://127.0.0.1:$PORT/get-pool?instance_types=oops'       # a 400 naming the parameter
  open    http://127.0.0.1:$PORT/docs/                                   # Swagger UI
  curl -s  http://127.0.0.1:$PORT/metrics

The generator's hidden truth (per-pool termination probability) is in $(dirname "$DATA")/truth.json.
TXT
wait $pid
