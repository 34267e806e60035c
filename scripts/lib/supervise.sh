# shellcheck shell=bash disable=SC2153  # RABBIT_DIR, AMQP_PORT, ...: set by the sourcing script
# Process supervision for scripts/test-services.sh (the test servers): start a detached process with a
# pid file and a log, wait until it is ready within a deadline, stop it by its pid file (SIGTERM, then
# SIGKILL), and the pieces to run moto (S3), Redis, epmd and RabbitMQ as local processes. `make up` is
# supervised by the stack manager (crates/stack, deploy/stack.toml) instead; it uses the RabbitMQ
# pieces here through scripts/lib/rabbitmq-node.sh (the broker's folder, configuration and users).
#
# Sourced, never run:
#
#   SUPERVISE_NAME=test-services            # the prefix of every log line (required)
#   source "$(dirname "$SCRIPT")/lib/supervise.sh"
#
# Every message goes to stderr (the callers keep stdout for what they print on purpose, such as
# test-services.sh's exports). Functions that `die` exit the calling script.
#
# The RabbitMQ functions take the node's settings from these variables of the caller (set them before
# calling any rabbit_* function): RABBIT_DIR (every file the broker writes: config, data, logs, its
# HOME), RABBIT_NODE (the Erlang node name, e.g. pooltest@localhost), AMQP_PORT, MGMT_PORT (the HTTP
# management listener), DIST_PORT (Erlang distribution), EPMD_PORT (a private epmd, so nothing is shared
# with, or left in, the system's Erlang). The broker is Debian's rabbitmq-server package: RABBIT_LIB is
# where it puts the scripts that run the broker as the calling user.

: "${SUPERVISE_NAME:?set SUPERVISE_NAME before sourcing scripts/lib/supervise.sh}"
RABBIT_LIB=/usr/lib/rabbitmq/bin

# ---------------------------------------------------------------------------------------------------
# Messages

# log MESSAGE...: one line on stderr, prefixed with SUPERVISE_NAME.
log() { echo "$SUPERVISE_NAME: $*" >&2; }

# die MESSAGE...: log "error: MESSAGE" and exit 1.
die() {
    log "error: $*"
    exit 1
}

# ---------------------------------------------------------------------------------------------------
# Ports and processes

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT (bash's /dev/tcp, no extra tool).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# need_free_port PORT WHAT: die unless PORT is free (WHAT names the listener in the message), so a
# clash with another program fails the start instead of leaving a server that never answers.
need_free_port() {
    port_open "$1" && die "port $1 ($2) is taken by another program"
    return 0
}

# running PID: the process runs. One that has exited but has not been reaped (a zombie) counts as gone.
running() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

# pid_alive PIDFILE: the pid file exists and its process runs.
pid_alive() { [[ -f $1 ]] && running "$(cat "$1")"; }

# spawn PIDFILE LOGFILE COMMAND...: start COMMAND detached, in a session of its own (no terminal; a
# stop can also reach whatever it forks), stdin from /dev/null, stdout and stderr appended to LOGFILE,
# its pid written to PIDFILE. Without job control a background job is not a group leader, so setsid
# does not fork and $! is the session leader itself.
spawn() {
    local pidfile=$1 logfile=$2
    shift 2
    setsid "$@" </dev/null >>"$logfile" 2>&1 &
    echo $! >"$pidfile"
}

# wait_for WHAT PIDFILE LOGFILE TIMEOUT CHECK...: poll the command CHECK... (output discarded) every
# 0.2 s until it succeeds. Dies with the tail of LOGFILE when the process of PIDFILE exits first, or
# after TIMEOUT seconds, then also with what CHECK itself says (why it is not ready).
wait_for() {
    local what=$1 pidfile=$2 logfile=$3 timeout=$4
    shift 4
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ! pid_alive "$pidfile"; then
            tail -n 30 "$logfile" >&2 || true
            die "$what exited during start-up (log: $logfile)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$logfile" >&2 || true
            log "the readiness check $* says:"
            "$@" >&2 || true
            die "$what not ready after ${timeout}s (log: $logfile)"
        fi
        sleep 0.2
    done
}

# stop_pid WHAT PIDFILE [GRACE]: stop the process of PIDFILE with SIGTERM, SIGKILL when it still runs
# after GRACE seconds (default 10), and delete PIDFILE. Quiet when nothing runs.
stop_pid() {
    local what=$1 pidfile=$2 grace=${3:-10}
    [[ -f $pidfile ]] || return 0
    local pid
    pid=$(cat "$pidfile")
    if running "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + grace))
        while running "$pid" && ((SECONDS < deadline)); do
            sleep 0.1
        done
        if running "$pid"; then
            log "$what did not stop within ${grace}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $what (pid $pid)"
    fi
    rm -f "$pidfile"
}

# ---------------------------------------------------------------------------------------------------
# S3 (moto) and Redis

# moto_start PIDFILE LOGFILE MOTO_SERVER PORT: start moto's S3 server on 127.0.0.1:PORT unless the
# process of PIDFILE runs. MOTO_SERVER is the repo venv's moto_server (scripts/install-deps.sh).
moto_start() {
    local pidfile=$1 logfile=$2 moto=$3 port=$4
    pid_alive "$pidfile" && return 0
    [[ -x $moto ]] || die "$moto is missing: run scripts/install-deps.sh"
    need_free_port "$port" "S3 (moto)"
    spawn "$pidfile" "$logfile" "$moto" -H 127.0.0.1 -p "$port"
}

# s3_answers PORT: the S3 server on 127.0.0.1:PORT answers HTTP.
s3_answers() { curl -fsS -o /dev/null "http://127.0.0.1:$1/"; }

# redis_start PIDFILE LOGFILE DATA_DIR PORT [ARG...]: start redis-server on 127.0.0.1:PORT in the
# foreground of its session, without persistence (nothing saved; DATA_DIR is its working folder), with
# the extra ARGs (e.g. TLS listeners), unless the process of PIDFILE runs.
redis_start() {
    local pidfile=$1 logfile=$2 data=$3 port=$4
    shift 4
    pid_alive "$pidfile" && return 0
    need_free_port "$port" "Redis"
    mkdir -p "$data"
    spawn "$pidfile" "$logfile" redis-server --bind 127.0.0.1 --port "$port" "$@" \
        --save "" --appendonly no --dir "$data" --daemonize no
}

# redis_answers PORT: Redis on 127.0.0.1:PORT answers PING.
redis_answers() { [[ $(redis-cli -h 127.0.0.1 -p "$1" ping) == PONG ]]; }

# ---------------------------------------------------------------------------------------------------
# RabbitMQ, with a private epmd (settings: the variables listed at the top)

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

# rabbit_remove_dir STATE: delete RABBIT_DIR, and its per-state parent under $TMPDIR when rabbit_dir
# put it there (outside STATE).
rabbit_remove_dir() {
    local state=$1
    rm -rf "$RABBIT_DIR"
    if [[ $RABBIT_DIR != "$state"/* ]]; then
        rmdir "$(dirname "$RABBIT_DIR")" 2>/dev/null || true
    fi
}

# rabbit_cmd COMMAND...: set the array RABBIT_CMD to COMMAND run with the node's settings: as the
# rabbitmq user when we are root (setpriv), every path the broker writes to under RABBIT_DIR (the
# system's /etc/rabbitmq and /var/lib/rabbitmq are not used), the private epmd's port. For the
# broker itself (rabbit_start) and for rabbitmqctl against it.
rabbit_cmd() {
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

# rabbit_prepare [LINE...]: write the node's configuration into RABBIT_DIR: its folders, the management
# plugin, and rabbitmq.conf with the management API on 127.0.0.1:MGMT_PORT, queue statistics every
# second and logs to a file only, plus the LINEs (e.g. TLS listeners; paths in them must be readable by
# the rabbitmq user, i.e. under RABBIT_DIR). Everything is handed to the rabbitmq user when we are root.
rabbit_prepare() {
    mkdir -p "$RABBIT_DIR"/{home,mnesia,log}
    : >"$RABBIT_DIR/rabbitmq-env.conf"
    echo "[rabbitmq_management]." >"$RABBIT_DIR/enabled_plugins"
    {
        echo "management.tcp.ip = 127.0.0.1"
        echo "management.tcp.port = $MGMT_PORT"
        (($# == 0)) || printf '%s\n' "$@"
        cat <<EOF
# Queue statistics every second (default 5 s) so whoever reads them (tests, the monitor) does not wait.
collect_statistics_interval = 1000
log.console = false
log.file.level = info
EOF
    } >"$RABBIT_DIR/rabbitmq.conf"
    if [[ $(id -u) -eq 0 ]]; then
        chown -R rabbitmq:rabbitmq "$RABBIT_DIR"
    fi
}

# rabbit_start PIDFILE LOGFILE: start the broker (configured by rabbit_prepare; epmd must run) from
# RABBIT_DIR. The start script stays in front of the Erlang VM and turns SIGTERM into a clean broker
# shutdown; the VM's own pid is in RABBIT_DIR/beam.pid.
rabbit_start() {
    rabbit_cmd "$RABBIT_LIB/rabbitmq-server"
    (cd "$RABBIT_DIR" && spawn "$1" "$2" "${RABBIT_CMD[@]}")
}

# rabbit_answers: the broker accepts AMQP connections on AMQP_PORT and its management API answers
# (guest/guest, which RabbitMQ admits from localhost only).
rabbit_answers() {
    port_open "$AMQP_PORT" && curl -fsS -o /dev/null -u guest:guest "http://127.0.0.1:$MGMT_PORT/api/overview"
}

# rabbit_users MGMT_PORT FILE: one RabbitMQ user per role of deploy/rabbitmq/permissions.tsv but
# `admin` (guest, the node's administrator, stays the one that may configure), named pool-<role>, with
# the role's tags and permissions on the default vhost, through the management API as guest (which
# RabbitMQ admits from localhost only). Passwords are random, kept in FILE (mode 600, `user password`
# lines) and reused when the users are made again. Idempotent.
rabbit_users() {
    local port=$1 file=$2
    local table
    table="$(dirname "${BASH_SOURCE[0]}")/../../deploy/rabbitmq/permissions.tsv"
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

# rabbit_user_password FILE USER: the password rabbit_users gave USER.
rabbit_user_password() { awk -v u="$2" '$1 == u { print $2 }' "$1"; }

# rabbit_stop PIDFILE [fast]: stop the broker started by rabbit_start. Graceful by default
# (SIGTERM: durable queues and persistent messages survive a restart, ~7 s because the management
# plugin waits out a 5 s timer). `fast` kills the VM at once, for callers that delete the data next.
# The VM is killed at the end should the start script have gone without it.
rabbit_stop() {
    local pidfile=$1 mode=${2:-}
    local beam=""
    [[ -f $RABBIT_DIR/beam.pid ]] && beam=$(cat "$RABBIT_DIR/beam.pid")
    if [[ $mode == fast && -n $beam ]] && running "$beam"; then
        kill -KILL "$beam" 2>/dev/null || true
        log "killed the RabbitMQ VM (pid $beam); its data is deleted next"
    fi
    stop_pid "RabbitMQ" "$pidfile" 30
    if [[ -n $beam ]] && running "$beam"; then
        kill -KILL "$beam" 2>/dev/null || true
        log "killed the RabbitMQ VM (pid $beam)"
    fi
    rm -f "$RABBIT_DIR/beam.pid"
}

# epmd_start PIDFILE LOGFILE: start the private epmd on 127.0.0.1:EPMD_PORT unless the process of
# PIDFILE runs, and wait (10 s) until it listens.
epmd_start() {
    local pidfile=$1 logfile=$2
    if ! pid_alive "$pidfile"; then
        need_free_port "$EPMD_PORT" "epmd"
        spawn "$pidfile" "$logfile" epmd -port "$EPMD_PORT" -address 127.0.0.1
    fi
    wait_for "epmd" "$pidfile" "$logfile" 10 port_open "$EPMD_PORT"
}
