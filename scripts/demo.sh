#!/usr/bin/env bash
# `make demo`: the launcher's feedback loop on the local stack, drawn (scripts/demo_loop.py says how).
#
# Needs the stack (`make up`) running and a built launcher (release, else debug, in $CARGO_TARGET_DIR or
# target/). Starts its OWN launcher on a free port with simulated runs (SIMULATE_TRUTH: the demo's truth
# file; SIMULATE_ONLY=true: no spark-submit, each run ends at once with its pool's true chance of a spot
# termination), talking to the stack's intake and Redis, and asking pool-selector directly for pools (the
# relay caches answers for CACHE_TTL_SECONDS, which would hand a whole round the previous ranking).
# Two arms of DEMO_LAUNCHES launches each (default 60), DEMO_ROUND_SIZE per arm per round (default 2).
# Output: data/demo/<time>/ (plan, truth, launches, summary, demo-loop.png/.svg, the launcher's log) and
# docs/img/demo-loop.{png,svg} (DEMO_DOCS=0 leaves docs/img alone).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
die() { echo "demo: $*" >&2; exit 1; }

[[ -x $PY ]] && "$PY" -c 'import matplotlib' 2>/dev/null || die "the venv lacks matplotlib: run scripts/install-deps.sh"
"$ROOT/scripts/stack.sh" status >/dev/null 2>&1 || die "the local stack is not running: make up"
eval "$("$ROOT/scripts/stack.sh" env)"
curl -fsS "$STACK_SELECTOR_URL/health" >/dev/null || die "pool-selector does not answer at $STACK_SELECTOR_URL"
curl -fsS "$STACK_INTAKE_URL/ready" >/dev/null || die "the intake is not ready at $STACK_INTAKE_URL"

BIN=""
for b in "$TARGET/release/launcher" "$TARGET/debug/launcher"; do
    [[ -x $b ]] && { BIN=$b; break; }
done
[[ -n $BIN ]] || die "no launcher binary in $TARGET/{release,debug}: cargo build --release -p launcher"

OUT="$ROOT/data/demo/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"

"$PY" "$ROOT/scripts/demo_loop.py" plan --out "$OUT" --selector "$STACK_SELECTOR_URL"

# The demo's launcher has one caller, `demo`, with a token made for this run (demo_loop.py reads it
# from DEMO_LAUNCHER_TOKEN).
DEMO_LAUNCHER_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export DEMO_LAUNCHER_TOKEN

LAUNCHER_PID=""
cleanup() {
    if [[ -n $LAUNCHER_PID ]] && kill -0 "$LAUNCHER_PID" 2>/dev/null; then
        kill -TERM "$LAUNCHER_PID" 2>/dev/null || true
        wait "$LAUNCHER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
env HOST=127.0.0.1 PORT="$PORT" HTTP_WORKERS=2 LOG_LEVEL="${STACK_LOG_LEVEL:-INFO}" \
    LAUNCHER_TOKENS="demo:$DEMO_LAUNCHER_TOKEN" \
    LAUNCH_TEMPLATES="$ROOT/deploy/launch-templates" BACKEND=local \
    RELAY_URL="$STACK_SELECTOR_URL" INTAKE_URL="$STACK_INTAKE_URL" INTAKE_TOKEN="$STACK_INTAKE_TOKEN" \
    REDIS_URL="$STACK_REDIS_URL" REDIS_KEY_PREFIX="demo:$(basename "$OUT"):" \
    SIMULATE_TRUTH="$OUT/truth.json" SIMULATE_ONLY=true SPARK_WORK_DIR="$OUT/spark" \
    POLL_INTERVAL=200ms MAX_ACTIVE_LAUNCHES=1000 \
    "$BIN" >"$OUT/launcher.log" 2>&1 &
LAUNCHER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "$URL/ready" >/dev/null 2>&1 && break
    kill -0 "$LAUNCHER_PID" 2>/dev/null || { tail -n 20 "$OUT/launcher.log" >&2; die "the launcher exited at start-up"; }
    sleep 0.2
done
curl -fsS "$URL/ready" >/dev/null || die "the launcher is not ready at $URL (log: $OUT/launcher.log)"
echo "demo: launcher $BIN on $URL (simulated runs), asking pool-selector $STACK_SELECTOR_URL"

start=$SECONDS
"$PY" "$ROOT/scripts/demo_loop.py" run --out "$OUT" --selector "$STACK_SELECTOR_URL" --launcher "$URL" \
    --intake "$STACK_INTAKE_URL" --token "$STACK_INTAKE_TOKEN" \
    --launches "${DEMO_LAUNCHES:-60}" --round-size "${DEMO_ROUND_SIZE:-2}"
echo "demo: launches done in $((SECONDS - start))s"
docs=()
[[ ${DEMO_DOCS:-1} == 0 ]] || docs=(--docs "$ROOT/docs/img")
"$PY" "$ROOT/scripts/demo_loop.py" plot --out "$OUT" "${docs[@]}"
