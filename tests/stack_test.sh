#!/usr/bin/env bash
# End-to-end test of the local stack (`make up` / `make down`, i.e. scripts/stack.sh: the stack manager over deploy/stack.toml), run by
# scripts/check-artifacts.sh. It fails loudly (exit 1, with the failing check and the logs' tails); it
# never skips.
#
#   1. `stack.sh up` starts everything and prints the URLs and a curl that answers; a second `up`
#      starts nothing (same pids); `status` says all running.
#   2. Events go through the pipeline twice: a bounded event-generator run publishing to RabbitMQ
#      (its --truth file says what it published) and a POST /events to the intake (which counts them
#      in intake_events_accepted_total; without its token it refuses them). Both land in S3 through
#      ingest-worker and are ranked, read through the relay (cache MISS, then HIT). pool-selector has
#      no POST /events any more. The launcher refuses POST /launch without its bearer token (or with a
#      wrong one); with it (STACK_LAUNCHER_TOKEN, caller `dev`) a curl to POST /launch runs a real Spark
#      job (spark-submit --master local[*]) on the pool the relay picks; its outcome goes back through the
#      intake and is ranked (one more job in /pools). The seed's bare `curl -X POST .../launch` (no body,
#      only the token) launches the default job (astronauts on DEFAULT_INSTANCE_TYPES), which completes.
#   3. The streaming generator started by `up` keeps flowing (ingest-worker's written counter grows);
#      the monitor reads the queue and sees the worker consuming; the compactor answers /health and
#      completes passes (compactor_passes_total ≥ 1); pool-selector's view report says how many hours
#      it read from rollups and how many raw.
#   3b. `make scale-demo` (scripts/scale-demo.sh), small: ingest-worker restarted with a simulated workload,
#      a backlog through the intake, the monitor's desired scale rising above 1 and back; the stack is
#      restored (every component running, the worker no longer simulating).
#   4. scripts/check_artifacts.py live: the dashboard's metric names are exported, every manifest probe
#      path answers, every Prometheus target is up and every dashboard query returns data.
#   5. `stack.sh down` stops everything: no process of any component's session, nothing in the stack's
#      folders, no port of the stack listening.
#
# Own state folder and ports (STACK_TEST_DIR, default target/stack-test; ports 16100-16198), so a
# developer's `make up` stack (16000-16098) and the test servers (17100-18008) are not touched.
# STACK_BUILD defaults to `always` here so the binaries under test are the current sources'.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="$ROOT/scripts/stack.sh"
export STACK_DIR="${STACK_TEST_DIR:-$ROOT/target/stack-test}"
export STACK_RELAY_PORT=16180 STACK_SELECTOR_PORT=16150 STACK_MONITOR_PORT=16195 STACK_WORKER_PORT=16196
export STACK_PROMETHEUS_PORT=16190 STACK_S3_PORT=16100 STACK_AMQP_PORT=16101 STACK_RABBITMQ_MGMT_PORT=16102
export STACK_REDIS_PORT=16103 STACK_EPMD_PORT=16104 STACK_ERLANG_DIST_PORT=16105 STACK_COMPACTOR_PORT=16197
export STACK_RELAY_ADMIN_PORT=16181 STACK_INTAKE_PORT=16198 STACK_LAUNCHER_PORT=16199
export STACK_BUILD="${STACK_BUILD:-always}"
PORTS=(16180 16181 16150 16195 16196 16190 16100 16101 16102 16103 16104 16105 16197 16198 16199)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case $TARGET in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac

passed=0
failed=0
pass() {
    passed=$((passed + 1))
    echo "stack-test: ok   $*"
}
fail() {
    failed=$((failed + 1))
    echo "stack-test: FAIL $*"
    if [[ -d $STACK_DIR/logs ]]; then
        local f
        for f in "$STACK_DIR"/logs/*.log; do
            echo "---- tail of $f"
            tail -n 15 "$f" | cut -c1-300
        done
    fi
    echo "$passed passed, $failed failed"
    exit 1
}
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
running() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

# Whatever happens, leave nothing running.
cleanup() {
    local rc=$?
    if [[ -f $STACK_DIR/settings ]]; then
        "$STACK" down >/dev/null 2>&1 || true
    fi
    exit $rc
}
trap cleanup EXIT

# A previous run that was killed may have left a stack behind: stop it first.
"$STACK" down >/dev/null 2>&1 || true
mkdir -p "$STACK_DIR"
for p in "${PORTS[@]}"; do
    port_open "$p" && fail "port $p is taken by another program before the test starts"
done

# ---------------------------------------------------------------------------------------------------
# 1. up

t0=$SECONDS
"$STACK" up >"$STACK_DIR/test-up.out" 2>"$STACK_DIR/test-up.err" || {
    cat "$STACK_DIR/test-up.err"
    fail "stack.sh up exited non-zero"
}
up_seconds=$((SECONDS - t0))
pass "stack.sh up in ${up_seconds}s"
# shellcheck disable=SC1091
source "$STACK_DIR/env"
out=$(cat "$STACK_DIR/test-up.out")
for url in "$STACK_RELAY_URL" "$STACK_RELAY_ADMIN_URL/docs/" "$STACK_PROMETHEUS_URL" "$STACK_MONITOR_URL/desired-worker-scale" \
    "$STACK_COMPACTOR_URL/metrics" "$STACK_INTAKE_URL/docs/"; do
    check "up prints $url" grep -qF "$url" <<<"$out"
done
# Every page `up` prints answers (redirects followed); bare service addresses are not pages.
while read -r url; do
    code=$(curl -sL -o /dev/null -w '%{http_code}' --max-time 5 "$url") || true
    check "printed page $url answers (HTTP $code)" test "$code" -ge 200 -a "$code" -lt 300
done < <(grep -oE 'http://127\.0\.0\.1:[0-9]+/[^ )]*' <<<"$out" | grep -v "'" | sort -u)
printed_curl=$(grep -m1 -E "^ +curl -s '$STACK_RELAY_URL/get-pool" <<<"$out" | sed 's/^ *//') ||
    fail "up prints no curl through the relay"
body=$(eval "${printed_curl/curl -s/curl -sf}") || fail "the printed curl does not answer: $printed_curl"
check "the printed curl answers through the relay with a pool ($printed_curl)" grep -q '"pool_id"' <<<"$body"
# /metrics, /docs and /openapi.json are on the relay's admin port only, never on the public one.
for path in /metrics /docs/ /openapi.json; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$STACK_RELAY_URL$path") || true
    check "the relay's public port does not serve $path (HTTP $code)" test "$code" = 404
    code=$(curl -sL -o /dev/null -w '%{http_code}' --max-time 5 "$STACK_RELAY_ADMIN_URL$path") || true
    check "the relay's admin port serves $path (HTTP $code)" test "$code" = 200
done

snapshot() {
    local f
    for f in "$STACK_DIR"/run/*.pid; do echo "$(basename "$f" .pid)=$(cat "$f")"; done | sort
}
before=$(snapshot)
"$STACK" up >"$STACK_DIR/test-up2.out" 2>"$STACK_DIR/test-up2.err" || fail "second stack.sh up exited non-zero"
check "a second up starts nothing" grep -q "already running (nothing started)" "$STACK_DIR/test-up2.err"
check "a second up keeps the same processes" test "$before" == "$(snapshot)"
check "status: every component running" "$STACK" status

# ---------------------------------------------------------------------------------------------------
# 2. events through the pipeline, rankings through the relay

run_id="st$(date +%s)"
gen_pool="pool-zz9.stackgen-us-east-1a"
post_pool="pool-zz9.stackpost-us-east-1b"
truth="$STACK_DIR/truth.json"

# (a) A bounded generator run into RabbitMQ: 2,000 events for one pool nobody else uses.
"$TARGET/${STACK_PROFILE:-release}/event-generator" --sink "$STACK_AMQP_URL" --events 2000 --hours 1 --seed 7 \
    --pool-list "$gen_pool" --truth "$truth" >"$STACK_DIR/generator-run.json" 2>"$STACK_DIR/generator-run.err" ||
    fail "event-generator --sink amqp:// --events 2000 failed: $(tail -n 5 "$STACK_DIR/generator-run.err")"
read -r gen_jobs gen_spot < <(python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))
p = [p for p in t["pools"] if p["pool_id"] == sys.argv[2]][0]
print(p["jobs"], p["spot_terminations"])' "$truth" "$gen_pool")
check "the generator published 2000 events (truth file)" test "$gen_jobs" -eq 2000

# (b) POST /events to the intake: 300 events as NDJSON, every 10th lost to a spot termination.
python3 - "$run_id" "$post_pool" >"$STACK_DIR/post.ndjson" <<'PY'
import json, sys
from datetime import datetime, timedelta, timezone
run, pool = sys.argv[1], sys.argv[2]
now = datetime.now(timezone.utc)
for i in range(300):
    spot = i % 10 == 0
    print(json.dumps({
        "finished_at": (now - timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        "job_id": f"{run}-{i}",
        "pool_id": pool,
        "status": "FAILED" if spot else "SUCCEEDED",
        "reason": "SPOT_INSTANCE_TERMINATION" if spot else "",
    }))
PY
accepted() { curl -fs --max-time 5 "$STACK_INTAKE_URL/metrics" | awk '$1 == "intake_events_accepted_total" { print int($2) }'; }
a0=$(accepted) || a0=""
# Without a token (and with a wrong one) the intake refuses the events: nothing is published.
for auth in "" "Authorization: Bearer not-$STACK_INTAKE_TOKEN"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/x-ndjson' ${auth:+-H "$auth"} \
        --data-binary @"$STACK_DIR/post.ndjson" "$STACK_INTAKE_URL/events") || true
    check "POST /events ${auth:+with a wrong token}${auth:-without a token} → 401 (got $code)" test "$code" = 401
done
code=$(curl -s -o "$STACK_DIR/post.out" -w '%{http_code}' -X POST -H 'Content-Type: application/x-ndjson' \
    -H "Authorization: Bearer $STACK_INTAKE_TOKEN" --data-binary @"$STACK_DIR/post.ndjson" "$STACK_INTAKE_URL/events")
check "POST /events to the intake → 202 {\"accepted\": 300} (got $code $(cat "$STACK_DIR/post.out"))" \
    python3 -c 'import json,sys; sys.exit(0 if sys.argv[1] == "202" and json.load(open(sys.argv[2])).get("accepted") == 300 else 1)' \
    "$code" "$STACK_DIR/post.out"
a1=$(accepted) || a1=""
check "intake_events_accepted_total grew by 300 (${a0:-absent} → ${a1:-absent})" test "$((${a1:-0} - ${a0:-0}))" -eq 300
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $STACK_INTAKE_TOKEN" \
    --data-binary @"$STACK_DIR/post.ndjson" "$STACK_SELECTOR_URL/events") || true
check "pool-selector has no POST /events any more (HTTP $code)" test "$code" -ge 400 -a "$code" -lt 500

# Both batches become visible through the relay with exactly the published counts (each job once).
# The relay caches a 404 for 5 s and a 200 for 30 s; the worker writes a batch within ~2 s, and each
# pool's events arrive together, so the first 200 already holds them all.
wait_ranking() {
    local itype=$1 jobs=$2 spot=$3 deadline=$((SECONDS + 120)) got=""
    while ((SECONDS < deadline)); do
        got=$(curl -s "$STACK_RELAY_URL/pools?instance_types=$itype&window=0") || true
        if python3 -c '
import json, sys
d = json.loads(sys.argv[1]); p = d["pools"][0]
sys.exit(0 if (p["jobs"], p["spot_terminations"]) == (int(sys.argv[2]), int(sys.argv[3])) else 1)' "$got" "$jobs" "$spot" 2>/dev/null; then
            return 0
        fi
        sleep 2
    done
    echo "last answer for $itype: ${got:0:400}" >&2
    return 1
}
check "generator events ranked through the relay: $gen_jobs jobs, $gen_spot spot terminations" \
    wait_ranking zz9.stackgen "$gen_jobs" "$gen_spot"
check "POST /events events ranked through the relay: 300 jobs, 30 spot terminations" \
    wait_ranking zz9.stackpost 300 30

headers() { curl -s -D - -o /dev/null "$1" | tr -d '\r'; }
q="$STACK_RELAY_URL/get-pool?instance_types=zz9.stackpost,zz9.stackgen&window=0&min_jobs=10"
first=$(headers "$q")
body=$(curl -sf "$q") || fail "GET /get-pool through the relay failed"
second=$(headers "$q")
check "GET /get-pool through the relay answers 200 with one of the two pools" \
    python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["pool_id"] in sys.argv[2:] else 1)' "$body" "$gen_pool" "$post_pool"
check "the relay answers the first call from upstream (X-Cache MISS or BYPASS)" grep -qiE '^x-cache: (MISS|BYPASS)' <<<"$first"
check "the relay answers the repeated call from its cache (X-Cache HIT)" grep -qi '^x-cache: HIT' <<<"$second"

# The closed loop: a curl to the launcher runs a real Spark job (spark-submit --master local[*]) on the
# pool the relay picks; its outcome goes back through the intake and shows in /pools (one more job).
# Every launch route needs a bearer token of LAUNCHER_TOKENS (`make up`: dev:$STACK_LAUNCHER_TOKEN).
launcher_auth="Authorization: Bearer $STACK_LAUNCHER_TOKEN"
for auth in "" "Authorization: Bearer not-$STACK_LAUNCHER_TOKEN"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST ${auth:+-H "$auth"} "$STACK_LAUNCHER_URL/launch") || true
    check "POST /launch ${auth:+with a wrong token}${auth:-without a token} → 401 (got $code)" test "$code" = 401
done
launch=$(curl -s -XPOST "$STACK_LAUNCHER_URL/launch" -H "$launcher_auth" -H 'content-type: application/json' \
    -d '{"application":"astronauts","instance_types":["zz9.stackpost"],"arguments":["--craft","ISS"]}')
launch_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("launch_id", ""))' "$launch" 2>/dev/null || true)
check "POST /launch → 202 with a launch on $post_pool (${launch:0:200})" \
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["pool_id"] == sys.argv[2] and d["state"] == "SUBMITTED" else 1)' "$launch" "$post_pool"
# wait_launch ID: until launch ID has COMPLETED and its first attempt's outcome is published.
wait_launch() {
    local id=$1 deadline=$((SECONDS + 240)) got=""
    while ((SECONDS < deadline)); do
        got=$(curl -s -H "$launcher_auth" "$STACK_LAUNCHER_URL/launches/$id") || true
        if python3 -c '
import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if d["state"] == "COMPLETED" and d["attempts"][0]["outcome_published"] else 1)' "$got" 2>/dev/null; then
            return 0
        fi
        sleep 2
    done
    echo "last answer: ${got:0:600}" >&2
    tail -n 20 "$STACK_DIR"/data/launcher/*/log >&2 || true
    return 1
}
check "the launched Spark job completed and its outcome was published" wait_launch "$launch_id"
check "the launch's outcome is ranked through the relay: 301 jobs, 30 spot terminations" \
    wait_ranking zz9.stackpost 301 30

# The seed's flow as written: `curl -X POST .../launch` with no body (only the token) is the default
# launch, DEFAULT_APPLICATION (astronauts) on the best pool of DEFAULT_INSTANCE_TYPES (c6a.xlarge, ...,
# which the streaming generator's pools cover): 202 with the launch, run like any other.
code=$(curl -s -o "$STACK_DIR/bare-launch.json" -w '%{http_code}' -X POST -H "$launcher_auth" "$STACK_LAUNCHER_URL/launch") || true
bare=$(cat "$STACK_DIR/bare-launch.json" 2>/dev/null || true)
check "the seed's bare POST /launch (no body, a token) → 202 with astronauts on a default instance type (got $code ${bare:0:300})" \
    python3 -c '
import json, sys
d = json.loads(sys.argv[2])
types = d["instance_types"]
ok = (sys.argv[1] == "202" and d["application"] == "astronauts" and d["caller"] == "dev" and "c6a.xlarge" in types
      and d["pool_id"].removeprefix("pool-").rsplit("-", 3)[0] in types and d["state"] == "SUBMITTED")
sys.exit(0 if ok else 1)' "$code" "$bare"
bare_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("launch_id", ""))' "$bare" 2>/dev/null || true)
check "the bare launch's Spark job completed and its outcome was published" wait_launch "$bare_id"

# ---------------------------------------------------------------------------------------------------
# 3. the streaming generator keeps flowing; the monitor sees the queue

written() { curl -s "$STACK_WORKER_URL/metrics" | awk '$1 == "ingest_worker_events_written_total" { print int($2) }'; }
w1=$(written)
sleep 6
w2=$(written)
check "the streaming generator keeps the worker writing ($w1 → $w2 events written in 6 s)" test "${w2:-0}" -gt "${w1:-0}"
scale=$(curl -sf "$STACK_MONITOR_URL/desired-worker-scale") || fail "monitor /desired-worker-scale failed"
check "the monitor reads the ingest queue and sees the worker consuming" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if d["source_up"] and not d["fallback"] and d["inputs"]["consumers"] >= 1 and d["desired-worker-scale"] >= 1 else 1)' "$scale"

# The compactor runs its first pass at start and one a minute after: wait (with a deadline) until
# /metrics shows a finished pass. Its hours are not closed yet (SETTLE=2m), so a pass may compact nothing.
check "compactor /health answers" curl -fsS -o /dev/null --max-time 5 "$STACK_COMPACTOR_URL/health"
passes() { curl -fs --max-time 5 "$STACK_COMPACTOR_URL/metrics" | awk '$1 == "compactor_passes_total" { print int($2) }'; }
wait_passes() {
    local deadline=$((SECONDS + 90)) n=""
    while ((SECONDS < deadline)); do
        n=$(passes) || true
        ((${n:-0} >= 1)) && return 0
        sleep 1
    done
    echo "compactor_passes_total is ${n:-absent} after 90 s" >&2
    return 1
}
check "compactor /metrics: compactor_passes_total ≥ 1 (a pass finished)" wait_passes
pools=$(curl -sf "$STACK_SELECTOR_URL/pools?window=0&limit=1") || fail "pool-selector /pools?window=0 failed"
check "pool-selector's /pools view report has rollup_hours and raw_hours ($(python3 -c 'import json,sys; s=json.loads(sys.argv[1]).get("view", {}); print({k: s.get(k) for k in ("rollup_hours", "raw_hours")})' "$pools"))" \
    python3 -c '
import json, sys
s = json.loads(sys.argv[1])["view"]
sys.exit(0 if all(isinstance(s.get(k), int) and s[k] >= 0 for k in ("rollup_hours", "raw_hours")) else 1)' "$pools"

# ---------------------------------------------------------------------------------------------------
# 3b. make scale-demo, small: 150 messages at 30/s, one worker doing 5/s

demo_out="$STACK_DIR/scale-demo"
SCALE_DEMO_MESSAGES=150 SCALE_DEMO_RATE=30 SCALE_DEMO_TIMEOUT=300 SCALE_DEMO_OUT="$demo_out" \
    "$ROOT/scripts/scale-demo.sh" >"$STACK_DIR/test-scale-demo.out" 2>&1 ||
    fail "scripts/scale-demo.sh exited non-zero: $(tail -n 20 "$STACK_DIR/test-scale-demo.out")"
samples=$(find "$demo_out" -mindepth 2 -maxdepth 2 -name samples.csv 2>/dev/null | sort | tail -n 1)
# The monitor reads the broker's rates over an age window (crates/monitor/src/source.rs): arrivals at
# 30/s against a worker doing 5/s must lift the desired scale above 1 while the backlog builds, and it
# must come back down once the queue has drained.
check "scale-demo: the desired scale rose above 1 under the backlog and came back ($(python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
d = [int(r["desired"]) for r in rows if r["desired"]]
top = max(int(r["ready"] or 0) for r in rows)
print(f"{len(rows)} samples, desired {d[0]} → {max(d)} → {d[-1]}, ready max {top}")' "$samples" 2>&1))" python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
ready = [int(r["ready"] or 0) for r in rows]
d = [int(r["desired"]) for r in rows if r["desired"]]
sys.exit(0 if len(rows) >= 5 and max(ready) > 0 and ready[-1] == 0 and max(d) > 1 and d[-1] == min(d) else 1)' "$samples"
check "scale-demo restored the stack: every component running" "$STACK" status
check "scale-demo restored the worker: no simulated work" bash -c "curl -fs '$STACK_WORKER_URL/metrics' | grep -qx 'ingest_worker_simulating 0' && ! grep -q SIMULATE_WORKLOAD /proc/\$(cat '$STACK_DIR/run/ingest-worker.pid')/environ"

# ---------------------------------------------------------------------------------------------------
# 4. metric names, probes and Prometheus against the live stack

check "live artifact checks (scripts/check_artifacts.py live)" "$ROOT/.venv/bin/python" "$ROOT/scripts/check_artifacts.py" live "$STACK_DIR/env"

# ---------------------------------------------------------------------------------------------------
# 5. down leaves nothing behind

# Every process of every component's session, and the RabbitMQ folder (it may live outside STACK_DIR).
sessions=()
for f in "$STACK_DIR"/run/*.pid; do sessions+=("$(cat "$f")"); done
rabbit_dir=$(sed -n "s/^RABBIT_DIR=//p" "$STACK_DIR/settings")
members=$(ps -e -o pid=,sid= | awk -v s=" ${sessions[*]} " 'index(s, " " $2 " ") { print $1 }' | tr '\n' ' ')
check "found the stack's processes (${#sessions[@]} sessions, $(wc -w <<<"$members") processes)" test "$(wc -w <<<"$members")" -ge "${#sessions[@]}"
t1=$SECONDS
"$STACK" down >"$STACK_DIR/test-down.out" 2>&1 || fail "stack.sh down exited non-zero: $(tail -n 5 "$STACK_DIR/test-down.out")"
down_seconds=$((SECONDS - t1))
pass "stack.sh down in ${down_seconds}s"
left=""
for pid in $members; do
    running "$pid" && left+=" $pid($(ps -o comm= -p "$pid"))"
done
check "no process of the stack is left${left:+:$left}" test -z "$left"
# Processes killed by `down` are reaped by init a moment later: zombies do not count, and a process
# still on its way out gets a few seconds.
strays() { ps -e -o sid= -o pid= -o stat= | awk -v s=" ${sessions[*]} " 'index(s, " " $1 " ") && $3 !~ /^Z/ { print $2 }' | tr '\n' ' '; }
for _ in $(seq 1 25); do
    left=$(strays)
    [[ -z ${left// /} ]] && break
    sleep 0.2
done
check "no process left in the stack's sessions${left:+: $left}" test -z "${left// /}"
refs=""
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ $pid == "$$" ]] && continue
    # 2>/dev/null first: a process that exits meanwhile makes the input redirection itself fail.
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    cwd=$(readlink "$p/cwd" 2>/dev/null) || cwd=""
    if [[ $cmd == *"$STACK_DIR/"* || $cwd == "$STACK_DIR"* || (-n $rabbit_dir && ($cmd == *"$rabbit_dir"* || $cwd == "$rabbit_dir"*)) ]]; then
        refs+=" $pid(${cmd:0:60})"
    fi
done
check "no process runs in or from the stack's folders${refs:+:$refs}" test -z "$refs"
open_ports=""
for p in "${PORTS[@]}"; do port_open "$p" && open_ports+=" $p"; done
check "no port of the stack is listening${open_ports:+:$open_ports}" test -z "$open_ports"
rc=0
"$STACK" status >/dev/null 2>&1 || rc=$?
check "status after down says not started (exit 3, got $rc)" test "$rc" -eq 3

echo "stack-test: make up ${up_seconds}s, make down ${down_seconds}s"
echo "$passed passed, $failed failed"
