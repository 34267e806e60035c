# shellcheck shell=bash disable=SC2153  # S3_PORT, MGMT_PORT, ...: set by scripts/stack.sh
# The chaos topology of the local stack, opt-in with STACK_CHAOS=1 at `make up` (sourced by
# scripts/stack.sh; `make chaos` runs its experiments on it, see chaos/README.md):
#
#   * faultproxy (chaos/faultproxy.py, control API on STACK_FAULTPROXY_PORT 16012) between the services
#     and S3 (route `s3`, 127.0.0.1:STACK_S3_PROXY_PORT 16010 → moto) and between the monitor and
#     RabbitMQ's management API (route `mgmt`, STACK_MGMT_PROXY_PORT 16011), so an experiment can slow
#     those down, refuse them or black-hole them;
#   * a second pool-selector replica (pool-selector-2, STACK_SELECTOR2_PORT 16051) over the same bucket,
#     and nginx (balancer, STACK_BALANCER_PORT 16052) in front of both: the relay's single UPSTREAM_URL
#     points at nginx, which retries a request on the other replica when one is down.
#
# Without STACK_CHAOS=1 nothing here runs and the stack is wired as before.

CHAOS_COMPONENTS=(faultproxy pool-selector-2 balancer)

chaos_fresh_settings() {
    CHAOS=${STACK_CHAOS:-0}
    S3_PROXY_PORT=${STACK_S3_PROXY_PORT:-16010}
    MGMT_PROXY_PORT=${STACK_MGMT_PROXY_PORT:-16011}
    FAULTPROXY_PORT=${STACK_FAULTPROXY_PORT:-16012}
    SELECTOR2_PORT=${STACK_SELECTOR2_PORT:-16051}
    BALANCER_PORT=${STACK_BALANCER_PORT:-16052}
}
# shellcheck disable=SC2034 # read by stack.sh's save_settings
CHAOS_SETTINGS=(CHAOS S3_PROXY_PORT MGMT_PROXY_PORT FAULTPROXY_PORT SELECTOR2_PORT BALANCER_PORT)

# After the settings are loaded: the chaos components join the list `status`, `down` and the port
# checks go through.
chaos_components() {
    # A stack started before the chaos topology existed has none of its settings recorded: chaos off.
    if [[ -z ${CHAOS:-} ]]; then
        chaos_fresh_settings
        CHAOS=0
    fi
    if [[ $CHAOS == 1 ]]; then COMPONENTS+=("${CHAOS_COMPONENTS[@]}"); fi
}

# Where the services reach S3, pool-selector and the management API: through the proxies when chaos is on.
s3_service_port() { if [[ $CHAOS == 1 ]]; then echo "$S3_PROXY_PORT"; else echo "$S3_PORT"; fi; }
selector_upstream_port() { if [[ $CHAOS == 1 ]]; then echo "$BALANCER_PORT"; else echo "$SELECTOR_PORT"; fi; }
mgmt_service_port() { if [[ $CHAOS == 1 ]]; then echo "$MGMT_PROXY_PORT"; else echo "$MGMT_PORT"; fi; }

chaos_ports() {
    case $1 in
    faultproxy) echo "$S3_PROXY_PORT $MGMT_PROXY_PORT $FAULTPROXY_PORT" ;;
    pool-selector-2) echo "$SELECTOR2_PORT" ;;
    balancer) echo "$BALANCER_PORT" ;;
    esac
}

chaos_exports() {
    [[ $CHAOS == 1 ]] || return 0
    cat <<EOF
export STACK_CHAOS=1
export STACK_FAULTPROXY_URL='http://127.0.0.1:$FAULTPROXY_PORT'
export STACK_SELECTOR2_URL='http://127.0.0.1:$SELECTOR2_PORT'
export STACK_BALANCER_URL='http://127.0.0.1:$BALANCER_PORT'
EOF
}

# Started once S3 and RabbitMQ answer, before the services that go through them.
start_faultproxy() {
    [[ $CHAOS == 1 ]] || return 0
    if ! alive faultproxy; then
        local p
        for p in $(chaos_ports faultproxy); do need_free_port "$p" faultproxy; done
        spawn_component faultproxy python3 -u "$ROOT/chaos/faultproxy.py" --control "$FAULTPROXY_PORT" \
            --route "s3=$S3_PROXY_PORT:127.0.0.1:$S3_PORT" --route "mgmt=$MGMT_PROXY_PORT:127.0.0.1:$MGMT_PORT"
    fi
    wait_component faultproxy 20 http_ok "http://127.0.0.1:$FAULTPROXY_PORT/health"
}

# The second replica and nginx in front of both; the relay starts after them.
start_selector_replica() {
    [[ $CHAOS == 1 ]] || return 0
    # shellcheck disable=SC2046
    start_service pool-selector-2 "$SELECTOR2_PORT" HOST=127.0.0.1 PORT="$SELECTOR2_PORT" HTTP_WORKERS=2 \
        $(s3_env) "$BIN/pool-selector"
    wait_component pool-selector-2 60 http_ok "http://127.0.0.1:$SELECTOR2_PORT/ready"
    if ! alive balancer; then
        need_free_port "$BALANCER_PORT" balancer
        local dir="$STATE/data/balancer" user=""
        mkdir -p "$dir"
        [[ $(id -u) == 0 ]] && user="user root;"
        # A refused or failed connection (a replica down) is retried at once on the other replica; a
        # replica failing 3 times in 2 s is skipped for 2 s. A 503 (pool-selector busy: its scan queue is
        # full) is an answer, passed on: counting it as a failure would take both replicas out under load.
        cat >"$dir/nginx.conf" <<CONF
$user
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/client_body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream selectors {
    server 127.0.0.1:$SELECTOR_PORT max_fails=3 fail_timeout=2s;
    server 127.0.0.1:$SELECTOR2_PORT max_fails=3 fail_timeout=2s;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:$BALANCER_PORT;
    location / {
      proxy_pass http://selectors;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 1s;
      proxy_read_timeout 30s;
      proxy_next_upstream error http_502;
      proxy_next_upstream_tries 2;
    }
  }
}
CONF
        spawn_component balancer nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf"
    fi
    wait_component balancer 20 http_ok "http://127.0.0.1:$BALANCER_PORT/health"
}

stop_chaos_topology() {
    stop_component balancer 10
    stop_component pool-selector-2 15
    stop_component faultproxy 5
}
