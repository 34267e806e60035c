#!/usr/bin/env bash
# Writes the compose stack's .env (at the repository root, beside docker-compose.yml) from .env.example,
# every REQUIRED secret (a `# REQUIRED` line above an empty `NAME=`, or `NAME=prefix:` for a secret after
# a fixed prefix, e.g. the launcher's LAUNCHER_TOKENS=admin:) filled with a random value, on first
# use. An existing .env is never touched: delete it to start over (the secrets then change, and so must
# the stack's volumes: `docker compose down -v`); a required secret it lacks (one added to .env.example
# since it was written, e.g. ROLLUP_HMAC_KEY) is named, with the line that adds it.
#
#   scripts/compose-env.sh [ENV_FILE]      default: <repository root>/.env
#
# The file is created readable by its owner only. Secrets are 32 random hex characters (from
# /dev/urandom), safe in URLs (the stack's AMQP and management URLs embed RabbitMQ's password).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXAMPLE="$ROOT/.env.example"
TARGET="${1:-$ROOT/.env}"

[[ -r $EXAMPLE ]] || { echo "compose-env: error: $EXAMPLE is missing" >&2; exit 1; }

secret() {
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

if [[ -e $TARGET ]]; then
    echo "compose-env: $TARGET exists; left as it is" >&2
    # A .env written by an older .env.example may lack a secret added since (e.g. ROLLUP_HMAC_KEY):
    # compose would refuse to start. Say which, and how to add each; the file is still not touched.
    required=0
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line == "# REQUIRED" ]]; then
            required=1
            continue
        fi
        if ((required)) && [[ $line =~ ^([A-Z_][A-Z0-9_]*)=([A-Za-z0-9._-]+:)?$ ]] &&
            ! grep -q "^${BASH_REMATCH[1]}=" "$TARGET"; then
            echo "compose-env: $TARGET has no ${BASH_REMATCH[1]} (required); add one with:" \
                "echo ${BASH_REMATCH[1]}=${BASH_REMATCH[2]}\$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n') >> $TARGET" >&2
        fi
        required=0
    done <"$EXAMPLE"
    exit 0
fi

tmp="$(mktemp "$(dirname "$TARGET")/.env.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
chmod 600 "$tmp"
required=0
filled=0
while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == "# REQUIRED" ]]; then
        required=1
        printf '%s\n' "$line"
        continue
    fi
    # `NAME=` gets a secret; `NAME=prefix:` (LAUNCHER_TOKENS=admin:) a secret after its fixed prefix.
    if ((required)) && [[ $line =~ ^([A-Z_][A-Z0-9_]*)=([A-Za-z0-9._-]+:)?$ ]]; then
        printf '%s=%s%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "$(secret)"
        filled=$((filled + 1))
    else
        printf '%s\n' "$line"
    fi
    required=0
done <"$EXAMPLE" >"$tmp"
mv "$tmp" "$TARGET"
trap - EXIT
echo "compose-env: wrote $TARGET ($filled random secrets); the intake token: grep INTAKE_TOKEN $TARGET;" \
    "the launcher's admin token: grep LAUNCHER_TOKENS $TARGET" >&2
