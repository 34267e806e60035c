#!/usr/bin/env bash
# The RabbitMQ steps that are shell by nature, for the two stacks the stack manager runs (crates/stack):
# `make up` (deploy/stack.toml) and the test servers (deploy/test-services.toml). The manager
# supervises the broker (starts it, checks it, stops it); this script prepares its folder and
# configuration, runs it as the rabbitmq user when we are root, makes its users and runs rabbitmqctl.
#
#   rabbitmq-node.sh dir STATE NAME          print the broker's folder for the state folder STATE
#   rabbitmq-node.sh prepare SETTINGS [TLS]  write its configuration, plus the lines of the file SETTINGS;
#                                            with TLS, copy ca.pem, server.pem, server.key from that folder
#                                            into RABBIT_DIR/tls (where the rabbitmq user can read them)
#   rabbitmq-node.sh server                  exec the broker (from RABBIT_DIR)
#   rabbitmq-node.sh users PORT FILE         one user per role of deploy/rabbitmq/permissions.tsv
#   rabbitmq-node.sh ctl ARG...              exec rabbitmqctl against the node
#
# The node's settings come from the environment: RABBIT_DIR (every file the broker writes: config,
# data, logs, its HOME), RABBIT_NODE (the Erlang node name, e.g. pooltest@localhost), AMQP_PORT,
# MGMT_PORT (the HTTP management listener), DIST_PORT (Erlang distribution), EPMD_PORT (a private epmd,
# so nothing is shared with, or left in, the system's Erlang). The broker is Debian's rabbitmq-server
# package: RABBIT_LIB is where it puts the scripts that run the broker as the calling user.
set -euo pipefail

RABBIT_LIB=/usr/lib/rabbitmq/bin
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

die() {
    echo "rabbitmq-node: error: $*" >&2
    exit 1
}

# rabbit_dir STATE TMP_NAME: the folder for RabbitMQ's files, printed. STATE/rabbitmq, except when we
# are root: the broker then runs as the rabbitmq user, who must be able to write there, and a state
# folder under a private home (/root/...) is out of its reach, so the folder is then
# $TMPDIR/TMP_NAME-<checksum of STATE>/rabbitmq (one per state folder).
rabbit_dir() {
    local state=$1 name=$2
    local dir="$state/rabbitmq"
    if [[ $(id -u) -eq 0 ]]; then
        mkdir -p "$dir"
        chown rabbitmq:rabbitmq "$dir"
        if ! setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups test -w "$dir" 2>/dev/null; then
            rmdir "$dir" 2>/dev/null || true
            dir="${TMPDIR:-/tmp}/$name-$(echo "$state" | cksum | cut -d' ' -f1)/rabbitmq"
        fi
    fi
    echo "$dir"
}

# rabbit_cmd COMMAND...: set the array RABBIT_CMD to COMMAND run with the node's settings: as the
# rabbitmq user when we are root (setpriv), every path the broker writes to under RABBIT_DIR (the
# system's /etc/rabbitmq and /var/lib/rabbitmq are not used), the private epmd's port.
rabbit_cmd() {
    : "${RABBIT_DIR:?}" "${RABBIT_NODE:?}" "${AMQP_PORT:?}" "${DIST_PORT:?}" "${EPMD_PORT:?}"
    RABBIT_CMD=()
    if [[ $(id -u) -eq 0 ]]; then
        RABBIT_CMD+=(setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups)
    fi
    RABBIT_CMD+=(env LANG=C.UTF-8 LC_ALL=C.UTF-8 HOME="$RABBIT_DIR/home"
        RABBITMQ_NODENAME="$RABBIT_NODE"
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT="$AMQP_PORT"
        RABBITMQ_DIST_PORT="$DIST_PORT"
        ERL_EPMD_PORT="$EPMD_PORT"
        ERL_CRASH_DUMP="$RABBIT_DIR/log/erl_crash.dump"
        RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/rabbitmq-env.conf"
        RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq.conf"
        RABBITMQ_ADVANCED_CONFIG_FILE="$RABBIT_DIR/advanced.config"
        RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins"
        RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia"
        RABBITMQ_LOG_BASE="$RABBIT_DIR/log"
        RABBITMQ_PID_FILE="$RABBIT_DIR/beam.pid"
        "$@")
}

# rabbit_prepare SETTINGS [TLS]: the node's configuration in RABBIT_DIR: its folders, the management
# plugin, and rabbitmq.conf with the management API on 127.0.0.1:MGMT_PORT, queue statistics every
# second and logs to a file only, plus the lines of SETTINGS (paths in them must be readable by the
# rabbitmq user, i.e. under RABBIT_DIR). Everything is handed to the rabbitmq user when we are root.
rabbit_prepare() {
    local settings=$1 tls=${2:-} lines=()
    : "${RABBIT_DIR:?}" "${MGMT_PORT:?}"
    mapfile -t lines <"$settings"
    ((${#lines[@]})) || die "no broker settings in $settings"
    mkdir -p "$RABBIT_DIR"/{home,mnesia,log}
    if [[ -n $tls ]]; then
        mkdir -p "$RABBIT_DIR/tls"
        cp "$tls/ca.pem" "$tls/server.pem" "$tls/server.key" "$RABBIT_DIR/tls/"
        chmod 644 "$RABBIT_DIR/tls/ca.pem" "$RABBIT_DIR/tls/server.pem"
        chmod 600 "$RABBIT_DIR/tls/server.key"
    fi
    : >"$RABBIT_DIR/rabbitmq-env.conf"
    echo "[rabbitmq_management]." >"$RABBIT_DIR/enabled_plugins"
    {
        echo "management.tcp.ip = 127.0.0.1"
        echo "management.tcp.port = $MGMT_PORT"
        printf '%s\n' "${lines[@]}"
        cat <<CONF
# Queue statistics every second (default 5 s) so whoever reads them (tests, the monitor) does not wait.
collect_statistics_interval = 1000
log.console = false
log.file.level = info
CONF
    } >"$RABBIT_DIR/rabbitmq.conf"
    if [[ $(id -u) -eq 0 ]]; then
        chown -R rabbitmq:rabbitmq "$RABBIT_DIR"
    fi
}

# rabbit_users PORT FILE: one RabbitMQ user per role of deploy/rabbitmq/permissions.tsv but `admin`
# (guest, the node's administrator, stays the one that may configure), named pool-<role>, with the
# role's tags and permissions on the default vhost, through the management API as guest (which
# RabbitMQ admits from localhost only). Passwords are random, kept in FILE (mode 600, `user password`
# lines) and reused when the users are made again. Idempotent.
rabbit_users() {
    local port=$1 file=$2
    local table="$ROOT/deploy/rabbitmq/permissions.tsv"
    [[ -f $file ]] || (umask 077 && : >"$file")
    local role configure write read tags user pass api="http://127.0.0.1:$port/api"
    while IFS=$'\t' read -r role configure write read tags; do
        [[ -z $role || $role == \#* || $role == admin ]] && continue
        user="pool-$role"
        pass=$(awk -v u="$user" '$1 == u { print $2 }' "$file")
        if [[ -z $pass ]]; then
            pass=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
            echo "$user $pass" >>"$file"
        fi
        curl -fsS -o /dev/null -u guest:guest -X PUT -H 'content-type: application/json' \
            -d "{\"password\":\"$pass\",\"tags\":\"$tags\"}" "$api/users/$user" ||
            die "could not create the RabbitMQ user $user"
        # JSON strings: the patterns' backslashes doubled.
        curl -fsS -o /dev/null -u guest:guest -X PUT -H 'content-type: application/json' \
            -d "{\"configure\":\"${configure//\\/\\\\}\",\"write\":\"${write//\\/\\\\}\",\"read\":\"${read//\\/\\\\}\"}" \
            "$api/permissions/%2f/$user" || die "could not set the permissions of $user"
    done <"$table"
}

case "${1:-}" in
dir) rabbit_dir "$2" "$3" ;;
prepare) rabbit_prepare "$2" "${3:-}" ;;
server)
    rabbit_cmd "$RABBIT_LIB/rabbitmq-server"
    cd "$RABBIT_DIR"
    exec "${RABBIT_CMD[@]}"
    ;;
users) rabbit_users "$2" "$3" ;;
ctl)
    shift
    rabbit_cmd "$RABBIT_LIB/rabbitmqctl" "$@"
    cd "$RABBIT_DIR"
    exec "${RABBIT_CMD[@]}"
    ;;
*)
    sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed -n 's/^# \{0,1\}//p' >&2
    exit 2
    ;;
esac
