#!/usr/bin/env bash
# The whole platform on one machine, as local processes: `make up` / `down` / `status` / `logs`. The
# stack manager (crates/stack, binary `stack`) runs deploy/stack.toml, which lists the subcommands, the
# components and the STACK_* settings. The manager is found like the services' binaries, in
# $CARGO_TARGET_DIR/<STACK_PROFILE> (default target/release), and built there first when missing (or
# before `up` with STACK_BUILD=always; never with STACK_BUILD=never).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case $TARGET in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
PROFILE="${STACK_PROFILE:-release}"
case $PROFILE in
release) flags=(--release) ;;
debug) flags=() ;;
*) echo "stack: error: STACK_PROFILE must be release or debug (got $PROFILE)" >&2 && exit 1 ;;
esac
MANAGER="$TARGET/$PROFILE/stack"
BUILD="${STACK_BUILD:-missing}"
if [[ $BUILD != never && (! -x $MANAGER || ($BUILD == always && ${1:-} == up)) ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build "${flags[@]}" -p pool-stack) >&2
fi
[[ -x $MANAGER ]] || { echo "stack: error: $MANAGER is missing (STACK_BUILD=$BUILD)" >&2 && exit 1; }
exec "$MANAGER" --file "$ROOT/deploy/stack.toml" "$@"
