# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # the C_* results are read by the callers; bin, DATA, … set by them
# Shared by the bench-*.sh parts: `source load-test/lib.sh` after setting BENCH_PART (the log prefix)
# and, for the pool-selector helpers, bin, DATA, PORT, BASE and WORK.

log() { echo "bench-$BENCH_PART: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Every statistic, computed figure and JSON field comes from load-test/benchstat.py (see its help),
# run by the repo venv's Python when there is one (it starts in a few ms; a pyenv shim takes 0.2 s).
BENCHSTAT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/benchstat.py
BENCHSTAT_PY=$(dirname "$BENCHSTAT")/../.venv/bin/python
[[ -x $BENCHSTAT_PY ]] || BENCHSTAT_PY=python3
benchstat() { "$BENCHSTAT_PY" "$BENCHSTAT" "$@"; }

# Of the values given as arguments (none is an error); the value picked prints as it came.
median() { benchstat median -- "$@" </dev/null; }
maximum() { benchstat max -- "$@" </dev/null; }
# "met" or "NOT met" for value ≤ target.
met() { benchstat met "$1" "$2"; }
fmt1() { benchstat fmt 1 "$1"; }
fmt2() { benchstat fmt 2 "$1"; }
ratio() { benchstat ratio "$1" "$2"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { benchstat free-port; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
# Until $1 answers 2xx (at most 30 s); else the end of the log $3 and exit. $2 names the server.
wait_http() { # $1 url, $2 what, $3 log (optional)
    local deadline=$((SECONDS + 30))
    until curl -fs --max-time 2 -o /dev/null "$1"; do
        if ((SECONDS >= deadline)); then
            if [[ -n ${3:-} ]]; then
                log "${2:-$1} did not come up; its log:"
                tail -n 30 "$3" >&2
            fi
            die "no answer from $1 in 30 s"
        fi
        sleep 0.05
    done
}
# A Prometheus metric of the server at $1 (its samples with the labels given, summed); nothing when it
# has none (yet).
metric() { # $1 base URL, $2 name, then LABEL=VALUE...
    { curl -fs --max-time 5 "$1/metrics" || true; } | benchstat prom "${@:2}"
}

# A fresh pool-selector (binary $1, then extra NAME=VALUE environment) over $DATA on $PORT; returns once
# it is ready to answer rankings (/ready 200 once its view of the history is loaded; a build from before
# the live view answers /ready at once). Its pid is in selector_pid, the time from start to ready (ms) in
# SELECTOR_READY_MS.
selector_pid=""
SELECTOR_READY_MS=0
start_selector() {
    local binary=$1 t0
    shift
    port_open "$PORT" && die "port $PORT is taken by another program; set BENCH_PORT"
    t0=$(date +%s%N)
    env "$@" EVENTS_URL="$DATA" HOST=127.0.0.1 PORT="$PORT" LOG_LEVEL=warn "$binary" \
        2>>"$WORK/pool-selector.log" &
    selector_pid=$!
    local deadline=$((SECONDS + 600))
    until curl -fs --max-time 2 -o /dev/null "$BASE/ready"; do
        kill -0 "$selector_pid" 2>/dev/null || die "$binary exited at start (log: $WORK/pool-selector.log)"
        ((SECONDS < deadline)) || die "$binary not ready after 600 s (log: $WORK/pool-selector.log)"
        sleep 0.02
    done
    SELECTOR_READY_MS=$(ms_since "$t0")
}
# Peak RSS of the running pool-selector, MB.
selector_rss_mb() { benchstat rss-mb "$selector_pid"; }
# Stop it (also safe when none runs: for cleanup traps).
stop_selector() {
    if [[ -n $selector_pid ]]; then
        kill -TERM "$selector_pid" 2>/dev/null || true
        wait "$selector_pid" 2>/dev/null || true
    fi
    selector_pid=""
}

# One `compactor --once` pass over $DATA with SETTLE=0, log in $1. Sets C_SECONDS, C_RSS (MB, from GNU
# time) and, from the pass's summary log line, C_HOURS, C_DAYS, C_EVENTS, C_ERRORS.
compact_once() { # $1 = log file
    local t0 rc=0 ms summary
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$WORK/compactor.time" env EVENTS_URL="$DATA" SETTLE=0 LOG_FORMAT=json \
        LOG_LEVEL=info "$bin/compactor" --once 2>"$1" || rc=$?
    ms=$(ms_since "$t0")
    if ((rc != 0)); then
        tail -n 20 "$1" >&2
        die "compactor --once over $DATA exited $rc (log: $1)"
    fi
    summary=$(benchstat compaction "$1")
    read -r C_HOURS C_DAYS C_EVENTS C_ERRORS <<<"$summary"
    C_SECONDS=$(benchstat calc --digits 2 'ms / 1000' ms="$ms")
    # GNU time prints the peak in KiB on its last line.
    C_RSS=$(benchstat calc 'kib / 1024' kib="$(tail -n 1 "$WORK/compactor.time")")
}

# `cargo build --release --workspace --bins` of the current tree; other people may be half-way through
# an edit, so a failed build is tried again (3 times, 2 minutes apart). Needs $bin.
build_current() { # $1 = log file
    local attempt
    for attempt in 1 2 3; do
        if cargo build --release --workspace --bins >>"$1" 2>&1; then return 0; fi
        ((attempt < 3)) || break
        log "building the current tree failed (attempt $attempt; log: $1); trying again in 2 minutes"
        sleep 120
    done
    die "building the current tree failed 3 times (log: $1): $bin/ may still hold a baseline's binaries; run cargo build --release --workspace --bins"
}

# The pool-selector of git revision $1, for side-by-side comparisons: cached as
# $TARGET_DIR/bench-baseline/pool-selector-<rev>. Without it, the revision is checked out in a
# temporary git worktree and built with `cargo build --release --workspace --bins` in the same target
# directory (dependencies are reused), the binary copied there, the release artifacts of the
# workspace's own crates removed (the baseline's share their names) and the current tree built again,
# so that $bin/* are today's binaries once more. Sets BASELINE (the binary) and BASELINE_REV. Needs
# TARGET_DIR and bin; $2 is the build log. Call baseline_cleanup from the caller's EXIT trap.
baseline_worktree=""
baseline_selector() { # $1 = revision, $2 = log file
    local rev abs_target members m
    rev=$(git rev-parse --verify --quiet --short=7 "$1^{commit}") || die "$1 is not a commit of this repository"
    BASELINE_REV=$rev
    BASELINE="$TARGET_DIR/bench-baseline/pool-selector-$rev"
    if [[ ! -x $BASELINE ]]; then
        : >"$2"
        log "no $BASELINE yet: building revision $rev in a git worktree (the same target dir: a few minutes the first time; log: $2)"
        abs_target=$(mkdir -p "$TARGET_DIR" && cd "$TARGET_DIR" && pwd)
        baseline_worktree=$(mktemp -d "${TMPDIR:-/tmp}/bench-baseline-$rev.XXXXXX")
        git worktree add --detach "$baseline_worktree" "$rev" >>"$2" 2>&1 || die "git worktree add $rev failed (log: $2)"
        (cd "$baseline_worktree" && CARGO_TARGET_DIR="$abs_target" cargo build --release --workspace --bins) >>"$2" 2>&1 ||
            die "building revision $rev failed (log: $2); rebuild the current tree before other benchmarks"
        mkdir -p "$TARGET_DIR/bench-baseline"
        cp "$bin/pool-selector" "$BASELINE.partial"
        mv "$BASELINE.partial" "$BASELINE"
        baseline_cleanup
        # Cargo hashes a workspace crate by its path relative to the workspace root, so the baseline's
        # crates overwrote the current ones' artifacts under the same names, and their fingerprints
        # (source mtimes, relative paths) can look fresh to the current tree: without this, the current
        # build links against the baseline's crates. Only the workspace's own crates go.
        members=$(cargo metadata --no-deps --format-version 1 | benchstat json - 'packages[].name|join: ')
        local clean_args=()
        for m in $members; do clean_args+=(-p "$m"); done
        cargo clean --release "${clean_args[@]}" >>"$2" 2>&1 || die "cargo clean --release ${clean_args[*]} failed (log: $2)"
        log "baseline saved as $BASELINE; building the current tree again so $bin/* are current"
        build_current "$2"
    fi
    ! cmp -s "$bin/pool-selector" "$BASELINE" || die "$bin/pool-selector is the baseline's ($rev): build the current tree"
}
baseline_cleanup() {
    if [[ -n $baseline_worktree ]]; then
        git worktree remove --force "$baseline_worktree" 2>/dev/null || rm -rf "$baseline_worktree"
        git worktree prune 2>/dev/null || true
        baseline_worktree=""
    fi
}
