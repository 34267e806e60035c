#!/usr/bin/env bash
# `make build-time`: how long a newcomer waits, measured on this machine from a fresh clone of HEAD.
#
#   1. `make run`, cold: a clone with no target folder (the registry is already downloaded: cold for the
#      compiler only), from the command's start until the first `/get-pool` answers (build, sample
#      history, compaction, the view's load). Target ≤ 10 min.
#   2. `make run` again after touching one source file of pool-selector (incremental). Target ≤ 60 s.
#   3. With BUILD_TIME_TEST=1: `make test`'s build, cold (`cargo nextest run --workspace --no-run` in the
#      same clone, its own target folder). `make test` as a whole adds installs, the suite (~2–3 min),
#      the fuzzer and the stack test.
# Each phase's wall time, CPU time (user + system) and the load average are written to
# build-times.md and printed. The clone and its target folders live under BUILD_TIME_DIR
# (default /tmp/pool-selector-build-time) and are removed at the end (BUILD_TIME_KEEP=1 keeps them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK=${BUILD_TIME_DIR:-/tmp/pool-selector-build-time}
PORT=${BUILD_TIME_PORT:-5399}
OUT="$ROOT/build-times.md"
log() { echo "build-time: $*" >&2; }

rm -rf "$WORK"
mkdir -p "$WORK"
cleanup() {
    if [[ -s $WORK/run.pid ]]; then kill -TERM -- "-$(cat "$WORK/run.pid")" 2>/dev/null || true; fi
    [[ ${BUILD_TIME_KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

git clone -q "$ROOT" "$WORK/clone"
commit=$(git -C "$WORK/clone" rev-parse --short HEAD)
# User + system seconds of this shell's finished (waited-for) descendants: measured around a phase, the
# CPU the phase used, whatever else the machine ran meanwhile.
children_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f", ($16 + $17) / hz}' /proc/$$/stat
}

# `make run` in the clone, in its own process group, until /get-pool answers. Prints "wall build".
run_until_answer() { # $1 = label
    local t0 deadline run_pid
    t0=$(date +%s)
    (cd "$WORK/clone" && CARGO_TARGET_DIR="$WORK/target-run" PORT=$PORT EVENTS_DIR="$WORK/data/events" \
        exec setsid make run >"$WORK/run-$1.log" 2>&1) &
    run_pid=$!
    echo "$run_pid" >"$WORK/run.pid"
    deadline=$((t0 + 3600))
    until curl -fs -o /dev/null "http://127.0.0.1:$PORT/get-pool"; do
        kill -0 "$run_pid" 2>/dev/null || {
            tail -n 30 "$WORK/run-$1.log" >&2
            log "make run ($1) exited before answering"
            exit 1
        }
        (($(date +%s) < deadline)) || {
            log "make run ($1) did not answer within an hour"
            exit 1
        }
        sleep 0.5
    done
    local wall=$(($(date +%s) - t0))
    kill -TERM -- "-$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
    : >"$WORK/run.pid"
    local built
    built=$(grep -m1 -o 'built in [0-9]* s' "$WORK/run-$1.log" | grep -o '[0-9]*' || echo "?")
    echo "$wall $built"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "1. make run, cold (commit $commit, fresh clone in $WORK/clone)"
cpu0=$(children_cpu)
read -r cold_wall cold_build <<<"$(run_until_answer cold)"
cold_cpu=$(($(children_cpu) - cpu0))
log "   first answer after $cold_wall s (build $cold_build s)"
log "2. make run after touching crates/pool-selector/src/routes.rs"
touch "$WORK/clone/crates/pool-selector/src/routes.rs"
cpu0=$(children_cpu)
read -r warm_wall warm_build <<<"$(run_until_answer incremental)"
warm_cpu=$(($(children_cpu) - cpu0))
log "   first answer after $warm_wall s (build $warm_build s)"
test_row=""
if [[ ${BUILD_TIME_TEST:-0} == 1 ]]; then
    log "3. make test's build, cold (cargo nextest run --workspace --no-run)"
    t0=$(date +%s)
    cpu0=$(children_cpu)
    (cd "$WORK/clone" && CARGO_TARGET_DIR="$WORK/target-test" cargo nextest run --workspace --no-run) \
        >"$WORK/test-build.log" 2>&1 || {
        tail -n 30 "$WORK/test-build.log" >&2
        exit 1
    }
    test_wall=$(($(date +%s) - t0))
    test_row="| \`make test\`'s build, cold (\`cargo nextest run --workspace --no-run\`) | $test_wall s | $(($(children_cpu) - cpu0)) s | |"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
verdict() { if (($1 <= $2)); then echo met; else echo "NOT met"; fi; }
{
    echo "# Build times ($(date -u +%Y-%m-%dT%H:%MZ), commit $commit, $(nproc) cores, load average $load_before → $load_after)"
    echo
    echo "| phase | wall | CPU (user + system) | target |"
    echo "|---|---:|---:|---|"
    echo "| \`make run\` from a fresh clone to its first answer (build $cold_build s) | $cold_wall s | $cold_cpu s | ≤ 600 s: $(verdict "$cold_wall" 600) |"
    echo "| \`make run\` again after touching one file (build $warm_build s) | $warm_wall s | $warm_cpu s | ≤ 60 s: $(verdict "$warm_wall" 60) |"
    [[ -z $test_row ]] || echo "$test_row"
} | tee "$OUT"
