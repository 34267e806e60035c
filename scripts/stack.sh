#!/usr/bin/env bash
# The whole platform on one machine, as local processes: `make up` / `down` / `status` / `logs`. The
# stack manager (crates/stack, binary `stack`) runs deploy/stack.toml, which lists the subcommands, the
# components and the STACK_* settings. The manager is found like the services' binaries, in
# $CARGO_TARGET_DIR/<STACK_PROFILE> (default target/release), and built there first when missing (or
# before `up` with STACK_BUILD=always; never with STACK_BUILD=never).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/stack-manager.sh source-path=SCRIPTDIR
source "$ROOT/scripts/lib/stack-manager.sh"
stack_manager "$ROOT" "$([[ ${1:-} == up ]] && echo rebuild)"
exec "$MANAGER" --file "$ROOT/deploy/stack.toml" "$@"
