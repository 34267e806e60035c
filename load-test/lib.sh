# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # the C_* results are read by the callers; bin, DATA, … set by them
# Shared by the bench-*.sh parts: `source load-test/lib.sh` after setting BENCH_PART (the log prefix)
# and, for the pool-selector helpers, bin, DATA, PORT, BASE and WORK.

log() { echo "bench-$BENCH_PART: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
maximum() { sort -g | tail -1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
# "met" or "NOT met" for value ≤ target.
met() { awk -v v="$1" -v t="$2" 'BEGIN {print (v != "" && v + 0 <= t + 0) ? "met" : "NOT met"}'; }
fmt1() { awk -v v="$1" 'BEGIN {printf "%.1f", v}'; }
fmt2() { awk -v v="$1" 'BEGIN {printf "%.2f", v}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# A fresh pool-selector (binary $1, then extra NAME=VALUE environment) over $DATA on $PORT; returns once
# /health answers. Its pid is in selector_pid.
selector_pid=""
start_selector() {
    local binary=$1
    shift
    port_open "$PORT" && die "port $PORT is taken by another program; set BENCH_PORT"
    env "$@" EVENTS_URL="$DATA" HOST=127.0.0.1 PORT="$PORT" LOG_LEVEL=warn "$binary" \
        2>>"$WORK/pool-selector.log" &
    selector_pid=$!
    local deadline=$((SECONDS + 30))
    until curl -fs -o /dev/null "$BASE/health"; do
        kill -0 "$selector_pid" 2>/dev/null || die "$binary exited at start (log: $WORK/pool-selector.log)"
        ((SECONDS < deadline)) || die "$binary not healthy after 30 s (log: $WORK/pool-selector.log)"
        sleep 0.02
    done
}
# Peak RSS of the running pool-selector, MB.
selector_rss_mb() { awk '/VmHWM/ {print $2 / 1024}' "/proc/$selector_pid/status"; }
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
    summary=$($PY -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("message") == "compaction pass finished":
        print(d["hours_compacted"], d["days_merged"], d["events"], d.get("errors", 0))
        break
else:
    sys.exit("no \"compaction pass finished\" line in " + sys.argv[1])' "$1")
    read -r C_HOURS C_DAYS C_EVENTS C_ERRORS <<<"$summary"
    C_SECONDS=$(awk -v ms="$ms" 'BEGIN {printf "%.2f", ms / 1000}')
    # GNU time prints the peak in KiB on its last line.
    C_RSS=$(tail -n 1 "$WORK/compactor.time" | awk '{print $1 / 1024}')
}
