#!/usr/bin/env bash
# The RabbitMQ steps of the local stack that are shell by nature (deploy/stack.toml names them; the
# stack manager supervises): the broker's folder, owned by the rabbitmq user when we are root, its
# configuration, the broker run as that user, and the per-role users made through the management API.
# The functions are scripts/lib/supervise.sh's, shared with scripts/test-services.sh.
#
#   rabbitmq-node.sh dir STATE NAME        print the broker's folder for the state folder STATE
#   rabbitmq-node.sh prepare SETTINGS      write the configuration, plus the lines of the file SETTINGS
#   rabbitmq-node.sh server                exec the broker (from RABBIT_DIR)
#   rabbitmq-node.sh users PORT FILE       one user per role of deploy/rabbitmq/permissions.tsv
#
# The node's settings come from the environment: RABBIT_DIR, RABBIT_NODE, AMQP_PORT, MGMT_PORT,
# DIST_PORT, EPMD_PORT.
set -euo pipefail

SUPERVISE_NAME=stack
# shellcheck source=supervise.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/supervise.sh"

case "${1:-}" in
dir) rabbit_dir "$2" "$3" ;;
prepare)
    mapfile -t lines <"$2"
    ((${#lines[@]})) || die "no broker settings in $2"
    rabbit_prepare "${lines[@]}"
    ;;
server)
    rabbit_cmd "$RABBIT_LIB/rabbitmq-server"
    cd "$RABBIT_DIR"
    exec "${RABBIT_CMD[@]}"
    ;;
users) rabbit_users "$2" "$3" ;;
*)
    sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed -n 's/^# \{0,1\}//p' >&2
    exit 2
    ;;
esac
