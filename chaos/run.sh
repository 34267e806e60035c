#!/usr/bin/env bash
# `make chaos`: every Chaos Toolkit experiment of chaos/experiments/ in turn against the local stack in its
# chaos topology (STACK_CHAOS=1: S3 and the management API through chaos/faultproxy.py, two pool-selector
# replicas behind nginx), each under the mixed locust load, then chaos/report.py writes
# CHAOS_OUT/chaos-report.md with a timeline chart per experiment.
#
#   CHAOS_EXPERIMENTS  which ones (file name prefixes, e.g. "01 04"; default all)
#   CHAOS_TIMEOUT      seconds one experiment may take before it is stopped (default 480)
#   CHAOS_OUT          reports folder (default reports/chaos, git-ignored); CHAOS_PUBLISH=1 copies the
#                      report and charts to docs/resilience/ (the copy the README links to)
#
# The stack: when one runs in the chaos topology it is used and left running; when none runs, one is
# started with STACK_CHAOS=1 and stopped at the end; a stack running without the chaos topology is an
# error (restart it with `make down && STACK_CHAOS=1 make up`). Each experiment is bounded (its load
# stops by itself; CHAOS_TIMEOUT kills the rest) and its rollbacks always run; afterwards nothing the
# experiments started is left running. Exit status 1 when a hypothesis did not hold (the report says which).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
CHAOS="$ROOT/.venv/bin/chaos"
OUT=${CHAOS_OUT:-$ROOT/reports/chaos}
TIMEOUT=${CHAOS_TIMEOUT:-480}
STACK="$ROOT/scripts/stack.sh"

log() { echo "chaos: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ -x $CHAOS ]] || "$ROOT/scripts/install-deps.sh"
started_here=""
child=""
cleanup() {
    local rc=$?
    if [[ -n ${child:-} ]]; then
        kill -TERM "$child" 2>/dev/null || true
        sleep 3
        pkill -KILL -P "$child" 2>/dev/null || true
        kill -KILL "$child" 2>/dev/null || true
    fi
    # Whatever happened: the load and sampler of an interrupted experiment stop, faults are undone.
    if [[ -n ${current:-} ]]; then
        (cd "$ROOT/chaos" && CHAOS_OUT="$current" "$PY" -c \
            'from poolchaos import actions; actions.stop_load(5); actions.proxy_pass_all(); actions.resume_all()') \
            >/dev/null 2>&1 || true
    fi
    if [[ -n $started_here ]]; then
        log "stopping the stack this run started"
        "$STACK" down >&2 || true
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! env_text=$("$STACK" env 2>/dev/null); then
    log "no stack running: starting one in the chaos topology (STACK_CHAOS=1 scripts/stack.sh up)"
    started_here=1
    STACK_CHAOS=1 "$STACK" up >&2
    env_text=$("$STACK" env)
fi
eval "$env_text"
[[ ${STACK_CHAOS:-} == 1 ]] ||
    die "the running stack has no chaos topology: run \`make down\`, then \`STACK_CHAOS=1 make up\` (or let make chaos start one)"
for url in "$STACK_RELAY_URL" "$STACK_INTAKE_URL"; do
    [[ $url =~ ^http://(127\.0\.0\.1|localhost)(:[0-9]+)?$ ]] || die "not a loopback URL: $url"
done

mkdir -p "$OUT"
selected=()
for f in "$ROOT"/chaos/experiments/*.json; do
    name=$(basename "$f" .json)
    if [[ -n ${CHAOS_EXPERIMENTS:-} ]]; then
        keep=""
        for p in $CHAOS_EXPERIMENTS; do [[ $name == "$p"* ]] && keep=1; done
        [[ -n $keep ]] || continue
    fi
    selected+=("$f")
done
((${#selected[@]})) || die "no experiment matches CHAOS_EXPERIMENTS=${CHAOS_EXPERIMENTS:-}"

deviated=()
for f in "${selected[@]}"; do
    name=$(basename "$f" .json)
    current="$OUT/$name"
    rm -rf "$current"
    mkdir -p "$current"
    log "=== $name: $("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["title"])' "$f")"
    rc=0
    # In the background and waited for, so an interrupt reaches the trap at once (which stops it).
    (cd "$ROOT/chaos" && CHAOS_OUT="$current" PYTHONPATH="$ROOT/chaos" \
        exec timeout --kill-after=15 "$TIMEOUT" "$CHAOS" --no-version-check --log-file "$current/chaostoolkit.log" \
        run --rollback-strategy=always --journal-path "$current/journal.json" "$f") &
    child=$!
    wait "$child" || rc=$?
    child=""
    # The load stops by itself; make sure (an experiment killed by the timeout never reached its rollbacks).
    (cd "$ROOT/chaos" && CHAOS_OUT="$current" "$PY" -c \
        'from poolchaos import actions; actions.stop_load(5); actions.proxy_pass_all(); actions.resume_all()') \
        >/dev/null 2>&1 || true
    if ((rc != 0)); then
        deviated+=("$name")
        log "$name: a hypothesis did not hold or the run failed (exit $rc; journal: $current/journal.json)"
        (cd "$ROOT/chaos" && CHAOS_OUT="$current" "$PY" -c 'from poolchaos import actions; actions.restart_missing()') \
            >/dev/null 2>&1 || log "could not restart what is down (see $current/restarts.log)"
    fi
    current=""
done
"$PY" "$ROOT/chaos/report.py" "$OUT"
if [[ ${CHAOS_PUBLISH:-0} == 1 ]]; then
    mkdir -p "$ROOT/docs/resilience"
    cp "$OUT/chaos-report.md" "$ROOT/docs/resilience/"
    cp "$OUT"/*.png "$ROOT/docs/resilience/"
    log "copied the report to docs/resilience/"
fi
if ((${#deviated[@]})); then
    log "hypotheses that did not hold: ${deviated[*]} (see $OUT/chaos-report.md)"
    exit 1
fi
log "every hypothesis held ($OUT/chaos-report.md)"
