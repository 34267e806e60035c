#!/usr/bin/env bash
# The relay against nginx's proxy_cache, side by side in one run, in front of the same pool-selector.
#
#   * Cache-hit throughput and p99 latency with wrk (--latency) at 64 and 256 connections, for the relay
#     as shipped (in-process L1 in front of Redis), the relay with the L1 off (Redis on every hit: why
#     the L1 exists), and nginx (proxy_cache, proxy_cache_lock, background update). Median of REPEAT
#     runs each, alternating the servers so neither gets a quieter machine.
#   * A cold burst: 1,000 identical requests sent at the same moment on a cold key → how many reached
#     pool-selector (its own /metrics) and how many failed.
#
# Everything runs as local processes on free ports with its state in a temp folder: pool-selector
# (release) over a generated dataset, a private redis-server, the relay (release), nginx with a
# generated config. Targets: relay hit throughput ≥ nginx's (ratio ≥ 1.0), p99 ≤ 5 ms at 256
# connections; cold burst → 1 upstream request, 0 errors.
#
# Env: BENCH_DURATION (wrk seconds, default 10), BENCH_REPEAT (default 3), BENCH_BURST (default 1000),
# BENCH_RELAY_EVENTS (dataset size, default 50000), BENCH_THREADS (wrk threads, default = cores).
# BENCH_SMOKE=1: tiny sizes (checks that the part runs and prints its table). Each relay gets its own
# admin port (ADMIN_PORT): two relays on the default one could not both start.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET_DIR/${BENCH_PROFILE_DIR:-release}"
if [[ ${BENCH_SMOKE:-0} == 1 ]]; then
  DURATION=1 REPEAT=1 BURST=50 EVENTS=5000
else
  DURATION=${BENCH_DURATION:-10}
  REPEAT=${BENCH_REPEAT:-3}
  BURST=${BENCH_BURST:-1000}
  EVENTS=${BENCH_RELAY_EVENTS:-50000}
fi
THREADS=${BENCH_THREADS:-$(nproc)}

BENCH_PART=relay
# shellcheck source=load-test/lib.sh
source load-test/lib.sh

for tool in wrk nginx redis-server curl python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"
done
for b in event-generator pool-selector relay; do
  [ -x "$BIN/$b" ] || die "missing $BIN/$b: build the binaries first (load-test/bench.sh does)"
done

TMP=$(mktemp -d -t bench-relay.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

UP_PORT=$(free_port); REDIS_PORT=$(free_port); RELAY_PORT=$(free_port); RELAY_NOL1_PORT=$(free_port); NGINX_PORT=$(free_port)

log "generating $EVENTS events over 24 h"
"$BIN/event-generator" --sink "$TMP/events" --events "$EVENTS" --hours 24 --seed 11 >/dev/null 2>"$TMP/generator.log"

EVENTS_URL="$TMP/events" HOST=127.0.0.1 PORT=$UP_PORT LOG_LEVEL=warn "$BIN/pool-selector" 2>"$TMP/selector.log" &
PIDS+=($!)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP_PORT/ready" pool-selector "$TMP/selector.log"
for _ in $(seq 1 100); do [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done

start_relay() { # $1 port, $2 L1 TTL, $3 log
  UPSTREAM_URL="http://127.0.0.1:$UP_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" HOST=127.0.0.1 PORT=$1 \
    ADMIN_PORT="$(free_port)" \
    L1_TTL=$2 CACHE_TTL_SECONDS=600 REDIS_KEY_PREFIX="bench:$1:" MISS_RATE_PER_CLIENT=0 LOG_LEVEL=warn \
    "$BIN/relay" 2>"$3" &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$1/health" "relay on $1" "$3"
}
start_relay "$RELAY_PORT" 1s "$TMP/relay.log"
start_relay "$RELAY_NOL1_PORT" 0 "$TMP/relay-nol1.log"

# nginx as a caching reverse proxy doing what the relay does: same routes, cache lock (one upstream
# request per key), stale while updating, keep-alive to the upstream, no access log.
mkdir -p "$TMP/nginx/cache"
FLOOR_BODY=$(curl -fs "http://127.0.0.1:$UP_PORT/get-pool?window=24h" | tr -d "'\\$")
[ "$(id -u)" = 0 ] && NGINX_USER="user root;" || NGINX_USER=""
cat >"$TMP/nginx/nginx.conf" <<CONF
$NGINX_USER
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
daemon off;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/client_body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  proxy_cache_path $TMP/nginx/cache levels=1:2 keys_zone=relay:10m max_size=100m inactive=10m use_temp_path=off;
  upstream selector { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location ~ ^/(get-pool|pools)\$ {
      proxy_pass http://selector;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache relay;
      proxy_cache_valid 200 10m;
      proxy_cache_valid 404 5s;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;
      proxy_cache_lock_age 10s;
      proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
      proxy_cache_background_update on;
      add_header X-Cache \$upstream_cache_status;
    }
    # The floor: a constant answer of the same size with no proxying and no cache lookup, i.e. the
    # most any server can do on this machine at that concurrency with wrk beside it.
    location = /floor { default_type application/json; return 200 '$FLOOR_BODY'; }
    location / { return 404; }
  }
}
CONF
nginx -p "$TMP/nginx/" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" &
PIDS+=($!)
wait_http "http://127.0.0.1:$NGINX_PORT/pools" nginx "$TMP/nginx/error.log"

upstream_count() { # requests pool-selector served on /get-pool
  metric "http://127.0.0.1:$UP_PORT" pool_selector_http_requests_total route=/get-pool --default 0
}

HIT_PATH="/get-pool?window=24h"
declare -A URL=(
  [relay]="http://127.0.0.1:$RELAY_PORT$HIT_PATH"
  [relay_nol1]="http://127.0.0.1:$RELAY_NOL1_PORT$HIT_PATH"
  [nginx]="http://127.0.0.1:$NGINX_PORT$HIT_PATH"
  [floor]="http://127.0.0.1:$NGINX_PORT/floor"
)
for name in relay relay_nol1 nginx; do
  curl -fs -o /dev/null "${URL[$name]}"
  cache=$(curl -fs -o /dev/null -w '%header{x-cache}' "${URL[$name]}")
  [ "$cache" = HIT ] || { log "$name does not answer from its cache (X-Cache: '$cache')"; exit 1; }
done

# One wrk run → "requests/s p99_ms errors".
run_wrk() { # $1 url, $2 connections, $3 seconds
  wrk -t"$THREADS" -c"$2" -d"$3"s --latency "$1" | benchstat wrk
}

declare -A RPS P99 ERRS
for c in 64 256; do
  for name in relay relay_nol1 nginx floor; do run_wrk "${URL[$name]}" "$c" 2 >/dev/null; done # warm-up
  declare -A runs_rps=() runs_p99=()
  for r in $(seq 1 "$REPEAT"); do
    for name in relay nginx relay_nol1 floor; do
      read -r rps p99 errs <<<"$(run_wrk "${URL[$name]}" "$c" "$DURATION")"
      log "run $r, $c connections, $name: $rps req/s, p99 $p99 ms, $errs errors"
      runs_rps[$name]+="$rps "
      runs_p99[$name]+="$p99 "
      ERRS[$name,$c]=$(( ${ERRS[$name,$c]:-0} + errs ))
    done
  done
  for name in relay relay_nol1 nginx floor; do
    read -ra rps_runs <<<"${runs_rps[$name]}"
    read -ra p99_runs <<<"${runs_p99[$name]}"
    RPS[$name,$c]=$(median "${rps_runs[@]}")
    P99[$name,$c]=$(median "${p99_runs[@]}")
  done
done

# Cold bursts: a key neither cache has seen, BURST identical requests at once.
burst() { # $1 url → "upstream_requests errors x_cache max_ms first_error"
  local before after out
  before=$(upstream_count)
  out=$(python3 load-test/burst.py "$1" "$BURST")
  sleep 0.5
  after=$(upstream_count)
  out=$(benchstat json - errors 'x_cache|pairs' max_ms first_error//- <<<"$out")
  echo "$((after - before)) $out"
}
COLD="/get-pool?window=0&strategy=naive"
read -r relay_up relay_err relay_xc relay_ms relay_fe <<<"$(burst "http://127.0.0.1:$RELAY_PORT${COLD}")"
read -r nginx_up nginx_err nginx_xc nginx_ms nginx_fe <<<"$(burst "http://127.0.0.1:$NGINX_PORT${COLD}")"
[ "$relay_fe" = - ] || log "relay burst, first error: $relay_fe"
[ "$nginx_fe" = - ] || log "nginx burst, first error: $nginx_fe"

yes_no() { benchstat met --words 'yes,**NO**' "$@"; } # VALUE TARGET: ≤ (≥ with --at-least)
same_or_no() { [ "$1" = "$2" ] && echo yes || echo "**NO**"; }
r64=$(ratio "${RPS[relay,64]}" "${RPS[nginx,64]}")
r256=$(ratio "${RPS[relay,256]}" "${RPS[nginx,256]}")

cat <<TXT

Relay vs nginx proxy_cache in front of the same pool-selector ($EVENTS events over 24 h), $(nproc) cores shared
with wrk ($THREADS threads). Cache hits: \`$HIT_PATH\`, wrk ${DURATION}s runs, median of $REPEAT. Cold burst:
$BURST identical requests sent at once on a key neither cache holds (\`$COLD\`).

| measure | relay (L1 + Redis) | relay, Redis only (L1_TTL=0) | nginx proxy_cache | relay / nginx | floor: nginx constant answer |
|---|---:|---:|---:|---:|---:|
| hit requests/s, 64 connections | ${RPS[relay,64]} | ${RPS[relay_nol1,64]} | ${RPS[nginx,64]} | $r64 | ${RPS[floor,64]} |
| hit p99 ms, 64 connections | ${P99[relay,64]} | ${P99[relay_nol1,64]} | ${P99[nginx,64]} | | ${P99[floor,64]} |
| hit requests/s, 256 connections | ${RPS[relay,256]} | ${RPS[relay_nol1,256]} | ${RPS[nginx,256]} | $r256 | ${RPS[floor,256]} |
| hit p99 ms, 256 connections | ${P99[relay,256]} | ${P99[relay_nol1,256]} | ${P99[nginx,256]} | | ${P99[floor,256]} |
| wrk errors (all hit runs) | $(( ${ERRS[relay,64]} + ${ERRS[relay,256]} )) | $(( ${ERRS[relay_nol1,64]} + ${ERRS[relay_nol1,256]} )) | $(( ${ERRS[nginx,64]} + ${ERRS[nginx,256]} )) | | |
| cold burst: upstream requests | $relay_up | | $nginx_up | | |
| cold burst: errors | $relay_err | | $nginx_err | | |
| cold burst: X-Cache | $relay_xc | | $nginx_xc | | |
| cold burst: slowest answer ms | $relay_ms | | $nginx_ms | | |

The floor column is nginx answering a constant of the same size (no proxy, no cache lookup): what any
server gets on this machine at that concurrency with the load generator beside it.

Targets: hit throughput ratio ≥ 1.0 (64: $(yes_no --at-least "$r64" 1.0), 256: $(yes_no --at-least "$r256" 1.0)); p99 ≤ 5 ms at 256 connections ($(yes_no "${P99[relay,256]}" 5)); cold burst → 1 upstream request ($(same_or_no "$relay_up" 1)), 0 errors ($(same_or_no "$relay_err" 0)).
TXT
