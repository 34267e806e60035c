# shellcheck shell=bash
# stack_manager ROOT [rebuild]: set MANAGER to the stack manager (crates/stack, binary `stack`), found
# like the services' binaries in $CARGO_TARGET_DIR/<STACK_PROFILE> (default target/release) and built
# there when missing (with `rebuild`: also when STACK_BUILD=always; never when STACK_BUILD=never).
# Sourced by scripts/stack.sh and scripts/test-services.sh. Build output goes to stderr.
stack_manager() {
    local root=$1 rebuild=${2:-} target=${CARGO_TARGET_DIR:-$1/target} profile=${STACK_PROFILE:-release}
    local build=${STACK_BUILD:-missing} flags=()
    case $target in /*) ;; *) target="$root/$target" ;; esac
    case $profile in
    release) flags=(--release) ;;
    debug) ;;
    *)
        echo "stack: error: STACK_PROFILE must be release or debug (got $profile)" >&2
        return 1
        ;;
    esac
    MANAGER="$target/$profile/stack"
    if [[ $build != never && (! -x $MANAGER || ($build == always && -n $rebuild)) ]]; then
        (cd "$root" && CARGO_TARGET_DIR="$target" cargo build "${flags[@]}" -p pool-stack) >&2 || return 1
    fi
    if [[ ! -x $MANAGER ]]; then
        echo "stack: error: $MANAGER is missing (STACK_BUILD=$build)" >&2
        return 1
    fi
}
