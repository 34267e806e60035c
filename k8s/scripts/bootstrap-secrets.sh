#!/usr/bin/env bash
# The platform's credentials in one command (k8s/README.md, "From an empty cluster", step 7), against the
# example's dependencies (RabbitMQ in `messaging`, Redis in `cache`, MinIO in `storage`, installed with
# k8s/dependencies/*-values.yaml):
#
#   1. RabbitMQ: one user per service with exactly its role's permissions (deploy/rabbitmq/permissions.tsv,
#      crates/amqp/src/access.rs): pool-producer (the intake), pool-worker (ingest-worker), pool-monitor
#      (the monitor: the `monitoring` tag, no permission); `rabbitmqctl` run in the broker's pod, each
#      password on stdin (never on a command line);
#   2. the topology (exchanges, quorum queues, bindings), declared once by the broker's administrator
#      (`pool-amqp declare`, idempotent) in a short-lived pod that reads the administrator's password from
#      the chart's Secret `rabbitmq`;
#   3. MinIO: the bucket, one user per service and one least-privilege policy each (the policies of
#      k8s/iam/*.json on the overlay's EVENTS_URL): pool-selector (read only), ingest-worker (writes raw
#      hourly objects), compactor (reads, writes and deletes rollups); `mc` in a short-lived pod, its
#      script (with the root credentials and the users' keys) on stdin;
#   4. the Secrets the manifests read (names and keys of k8s/overlays/example/secrets.example.yaml), each
#      written with `kubectl create secret ... --dry-run=client -o yaml | kubectl apply -f -`, the values
#      from files in a private temporary folder (never on a command line).
#
# Idempotent: a re-run keeps every password, token and key already in the platform's Secrets (and sets
# the broker's and MinIO's users to them again). --rotate gives the RabbitMQ and MinIO users new
# passwords (then restart the platform's Deployments: they read their credentials at start). The intake
# tokens, the launcher's callers' tokens and the rollup signing key are never rotated by this script:
# delete that Secret (or key) and re-run, or follow k8s/README.md. Redis URLs carry the password the
# Redis chart generated (its Secret `redis`).
#
#   k8s/scripts/bootstrap-secrets.sh                   # the example's namespaces
#   k8s/scripts/bootstrap-secrets.sh --dry-run         # print what it would run (secrets left out)
#   k8s/scripts/bootstrap-secrets.sh -n pool-selector --rotate
#
# Needs kubectl with access to the platform's namespace (read and write Secrets) and to the dependencies'
# namespaces (read their Secrets, exec into the broker, run pods). --dry-run still reads the Secrets
# (kubectl get, to say what it would keep) and runs nothing else.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
PERMISSIONS="$ROOT/deploy/rabbitmq/permissions.tsv"

NAMESPACE=pool-selector
RABBITMQ_NAMESPACE=messaging
RABBITMQ_POD=rabbitmq-0
RABBITMQ_ADMIN=pool
REDIS_NAMESPACE=cache
MINIO_NAMESPACE=storage
OVERLAY="$ROOT/k8s/overlays/example"
EVENTS_URL=""
MINIO_URL=""
AMQP_IMAGE=""
# The mc of the MinIO chart the example installs (minio/minio 5.4.0, its mcImage).
MC_IMAGE=minio/mc:RELEASE.2024-11-21T17-21-54Z
DRY_RUN=0
ROTATE=0
TOPOLOGY=1

usage() {
    cat <<EOF
Usage: $(basename "$0") [options]

Creates the platform's RabbitMQ users and topology, its MinIO users and policies, and its Secrets.

  -n, --namespace NS          the platform's namespace (default: $NAMESPACE)
      --rabbitmq-namespace NS RabbitMQ's namespace (default: $RABBITMQ_NAMESPACE; pod $RABBITMQ_POD, Secret rabbitmq)
      --rabbitmq-pod POD      the broker pod to run rabbitmqctl in (default: $RABBITMQ_POD)
      --redis-namespace NS    Redis's namespace (default: $REDIS_NAMESPACE; Secret redis, Service redis-master)
      --minio-namespace NS    MinIO's namespace (default: $MINIO_NAMESPACE; Secret minio)
      --overlay DIR           the kustomize overlay to read EVENTS_URL, AWS_ENDPOINT_URL and the images'
                              registry and tag from (default: k8s/overlays/example)
      --events-url URL        s3://BUCKET/PREFIX/ (default: the overlay's EVENTS_URL)
      --minio-url URL         MinIO's S3 endpoint (default: the overlay's AWS_ENDPOINT_URL)
      --amqp-image IMAGE      the pool-amqp image that declares the topology (default: the overlay's
                              registry and tag, image pool-selector-platform/pool-amqp)
      --mc-image IMAGE        the MinIO client image (default: $MC_IMAGE)
      --skip-topology         do not declare the RabbitMQ topology
      --rotate                new passwords for the RabbitMQ and MinIO users
      --dry-run               print the commands instead of running them (no secret is printed)
  -h, --help                  this help
EOF
}

die() {
    echo "bootstrap-secrets: error: $*" >&2
    exit 1
}

log() { echo "bootstrap-secrets: $*" >&2; }

while [[ $# -gt 0 ]]; do
    case $1 in
    -n | --namespace) NAMESPACE=${2:?$1 needs a value}; shift 2 ;;
    --rabbitmq-namespace) RABBITMQ_NAMESPACE=${2:?$1 needs a value}; shift 2 ;;
    --rabbitmq-pod) RABBITMQ_POD=${2:?$1 needs a value}; shift 2 ;;
    --redis-namespace) REDIS_NAMESPACE=${2:?$1 needs a value}; shift 2 ;;
    --minio-namespace) MINIO_NAMESPACE=${2:?$1 needs a value}; shift 2 ;;
    --overlay) OVERLAY=${2:?$1 needs a value}; shift 2 ;;
    --events-url) EVENTS_URL=${2:?$1 needs a value}; shift 2 ;;
    --minio-url) MINIO_URL=${2:?$1 needs a value}; shift 2 ;;
    --amqp-image) AMQP_IMAGE=${2:?$1 needs a value}; shift 2 ;;
    --mc-image) MC_IMAGE=${2:?$1 needs a value}; shift 2 ;;
    --skip-topology) TOPOLOGY=0; shift ;;
    --rotate) ROTATE=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done

command -v kubectl >/dev/null 2>&1 || die "kubectl is required"
[[ -f $PERMISSIONS ]] || die "$PERMISSIONS is missing"

# --- The overlay's settings ------------------------------------------------------------------------

# overlay_setting NAME: the value of NAME=... in the overlay's kustomization (a configMapGenerator literal).
overlay_setting() {
    local file="$OVERLAY/kustomization.yaml"
    [[ -f $file ]] || return 0
    sed -n "s/^[[:space:]]*-[[:space:]]*$1=\(.*\)$/\1/p" "$file" | head -n 1
}

# overlay_image: REGISTRY/pool-selector-platform/pool-amqp:TAG from the overlay's image of pool-selector.
overlay_image() {
    local file="$OVERLAY/kustomization.yaml"
    [[ -f $file ]] || return 0
    awk '
        $0 ~ /^[[:space:]]*-[[:space:]]*name:[[:space:]]*pool-selector-platform\/pool-selector[[:space:]]*$/ { found = 1; next }
        found && /^[[:space:]]*-[[:space:]]*name:/ { exit }
        found && $1 == "newName:" { name = $2 }
        found && $1 == "newTag:" { tag = $2 }
        END { if (name != "" && tag != "") { sub(/\/pool-selector$/, "/pool-amqp", name); print name ":" tag } }
    ' "$file"
}

[[ -n $EVENTS_URL ]] || EVENTS_URL=$(overlay_setting EVENTS_URL)
[[ -n $MINIO_URL ]] || MINIO_URL=$(overlay_setting AWS_ENDPOINT_URL)
[[ -n $AMQP_IMAGE ]] || AMQP_IMAGE=$(overlay_image)
[[ $EVENTS_URL =~ ^s3://([^/]+)/(.+)$ ]] || die "EVENTS_URL ${EVENTS_URL:-(none)} is not s3://BUCKET/PREFIX/ (--events-url)"
BUCKET=${BASH_REMATCH[1]}
PREFIX=${BASH_REMATCH[2]%/}
[[ -n $MINIO_URL ]] || die "no MinIO endpoint: the overlay sets no AWS_ENDPOINT_URL (--minio-url)"
[[ $TOPOLOGY == 0 || -n $AMQP_IMAGE ]] || die "no pool-amqp image: the overlay names no pool-selector image (--amqp-image or --skip-topology)"

RABBITMQ_HOST="rabbitmq.$RABBITMQ_NAMESPACE"
REDIS_HOST="redis-master.$REDIS_NAMESPACE"

# --- Helpers ---------------------------------------------------------------------------------------

TMP=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/bootstrap-secrets.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

random_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# urlencode VALUE: VALUE percent-encoded for a URL's userinfo (byte by byte: UTF-8 as %XX%XX).
urlencode() {
    local LC_ALL=C
    local s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
        [A-Za-z0-9._~-]) out+=$c ;;
        *) printf -v c '%%%02X' "'$c"; out+=$c ;;
        esac
    done
    printf '%s' "$out"
}

# quote ARG: ARG as typed in a shell (single-quoted unless plain); the broker's upsert script as "$UPSERT".
quote() {
    if [[ -n ${RABBIT_UPSERT:-} && $1 == "$RABBIT_UPSERT" ]]; then
        # shellcheck disable=SC2016 # literally "$UPSERT", the variable the dry run prints
        printf '"$UPSERT"'
    elif [[ $1 =~ ^[A-Za-z0-9_./:=@%,+-]+$ ]]; then
        printf '%s' "$1"
    else
        sq "$1"
    fi
}

# show CMD...: the command as it would be typed.
show() {
    local out="+" a
    for a in "$@"; do out+=" $(quote "$a")"; done
    echo "$out"
}

# run CMD...: run it, or print it under --dry-run.
run() {
    if [[ $DRY_RUN == 1 ]]; then
        show "$@"
    else
        "$@"
    fi
}

# run_stdin WHAT CMD...: run it with stdin (a secret) from the caller; under --dry-run print it and say
# what stdin holds instead.
run_stdin() {
    local what=$1
    shift
    if [[ $DRY_RUN == 1 ]]; then
        show "$@"
        echo "  (stdin: $what)"
        cat >/dev/null
    else
        "$@"
    fi
}

# sq VALUE: VALUE single-quoted for sh.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# secret_value NS NAME KEY: the decoded value of a Secret's key, empty when the Secret or the key is
# missing. Any other failure (no access, no cluster) aborts, but under --dry-run (a warning: missing).
secret_value() {
    local value
    if ! value=$(kubectl -n "$1" get secret "$2" --ignore-not-found -o "jsonpath={.data.$3}"); then
        [[ $DRY_RUN == 1 ]] || die "cannot read the Secret $1/$2"
        log "warning: cannot read the Secret $1/$2 (--dry-run: taken as missing)"
        return 0
    fi
    [[ -z $value ]] || printf '%s' "$value" | base64 -d
}

# url_password URL USER: the password of USER in scheme://USER:PASSWORD@host... (percent-decoded), empty
# when the URL names another user (or none).
url_password() {
    local rest=${1#*://} userinfo password
    [[ $1 == *://*@* ]] || return 0
    userinfo=${rest%%@*}
    [[ $userinfo == "$2:"* ]] || return 0
    password=${userinfo#*:}
    printf '%b' "${password//%/\\x}"
}

# VALUE[ID] and whether it was in the platform's Secrets already (STATE[ID]: kept) or is new.
declare -A VALUE STATE

# keep_or_new ID CURRENT [rotatable]: VALUE[ID] = CURRENT, unless empty (or --rotate and rotatable):
# then a new random secret.
keep_or_new() {
    local id=$1 current=$2 rotatable=${3:-}
    if [[ -n $current ]] && ! [[ $ROTATE == 1 && $rotatable == rotatable ]]; then
        VALUE[$id]=$current
        STATE[$id]=kept
    else
        VALUE[$id]=$(random_secret)
        STATE[$id]=new
    fi
}

# dependency_secret NS NAME KEY WHAT: a dependency chart's generated credential; required, but under
# --dry-run (a placeholder).
dependency_secret() {
    local value
    value=$(secret_value "$1" "$2" "$3")
    if [[ -z $value ]]; then
        [[ $DRY_RUN == 1 ]] || die "no $3 in the Secret $1/$2 ($4): install it first (k8s/README.md, \"From an empty cluster\")"
        log "warning: no $3 in the Secret $1/$2 ($4; --dry-run: a placeholder)"
        value="<$2 $3>"
    fi
    printf '%s' "$value"
}

if [[ $DRY_RUN == 1 ]]; then
    echo "# bootstrap-secrets --dry-run: nothing is changed, no secret is printed; it only read Secrets (kubectl get secret)."
else
    kubectl get namespace "$NAMESPACE" >/dev/null ||
        die "no namespace $NAMESPACE: apply k8s/overlays/example/namespace.yaml first"
fi

# --- The values: kept from the platform's Secrets, or new -------------------------------------------

# RabbitMQ: one user per service, the role's row of permissions.tsv; the Secret and key holding its URL.
RABBIT_USERS=(pool-producer pool-worker pool-monitor)
declare -A RABBIT_ROLE=([pool-producer]=producer [pool-worker]=worker [pool-monitor]=monitor)
url=$(secret_value "$NAMESPACE" intake-credentials amqp-url)
keep_or_new pool-producer "$(url_password "$url" pool-producer)" rotatable
url=$(secret_value "$NAMESPACE" ingest-worker-credentials amqp-url)
keep_or_new pool-worker "$(url_password "$url" pool-worker)" rotatable
url=$(secret_value "$NAMESPACE" monitor-credentials rabbitmq-management-url)
keep_or_new pool-monitor "$(url_password "$url" pool-monitor)" rotatable

# MinIO: one user per service (its access key), its policy (named as k8s/iam's) and its Secret.
S3_USERS=(pool-selector ingest-worker compactor)
declare -A S3_POLICY=([pool-selector]=pool-selector-s3-readonly [ingest-worker]=ingest-worker-s3-writer
    [compactor]=compactor-s3-writer)
declare -A S3_SECRET=([pool-selector]=pool-selector-s3-readonly [ingest-worker]=ingest-worker-credentials
    [compactor]=compactor-credentials)
for u in "${S3_USERS[@]}"; do
    key_id=$(secret_value "$NAMESPACE" "${S3_SECRET[$u]}" aws-access-key-id)
    current=""
    if [[ $key_id == "$u" ]]; then
        current=$(secret_value "$NAMESPACE" "${S3_SECRET[$u]}" aws-secret-access-key)
    fi
    keep_or_new "s3:$u" "$current" rotatable
done

# The launcher's intake token, the producers' tokens (the launcher's among them), the launcher's callers,
# the rollup signing key: kept once made.
current=$(secret_value "$NAMESPACE" launcher-credentials intake-token)
keep_or_new intake-token "$current"
tokens=$(secret_value "$NAMESPACE" intake-tokens tokens)
if [[ -z $tokens ]]; then
    VALUE[tokens]="$(random_secret),${VALUE[intake-token]}"
    STATE[tokens]="new: one for the producers, the launcher's"
elif [[ ",$tokens," != *",${VALUE[intake-token]},"* ]]; then
    VALUE[tokens]="$tokens,${VALUE[intake-token]}"
    STATE[tokens]="kept, the launcher's added"
else
    VALUE[tokens]=$tokens
    STATE[tokens]=kept
fi
callers=$(secret_value "$NAMESPACE" launcher-credentials launcher-tokens)
if [[ -n $callers ]]; then
    VALUE[launcher-tokens]=$callers
    STATE[launcher-tokens]=kept
else
    VALUE[launcher-tokens]="admin:$(random_secret),ci:$(random_secret)"
    STATE[launcher-tokens]="new: admin, ci"
fi
current=$(secret_value "$NAMESPACE" rollup-signing rollup-hmac-key)
keep_or_new rollup-hmac-key "$current"

# The dependencies' generated credentials.
REDIS_PASSWORD=$(dependency_secret "$REDIS_NAMESPACE" redis redis-password "Redis")
MINIO_ROOT_USER=$(dependency_secret "$MINIO_NAMESPACE" minio rootUser "MinIO")
MINIO_ROOT_PASSWORD=$(dependency_secret "$MINIO_NAMESPACE" minio rootPassword "MinIO")
# The administrator's password is read by the topology's pod itself (a secretKeyRef): only checked here,
# so a missing one fails now rather than as a pod that never starts.
if [[ $TOPOLOGY == 1 ]]; then
    dependency_secret "$RABBITMQ_NAMESPACE" rabbitmq rabbitmq-password "RabbitMQ" >/dev/null
fi

# --- 1. RabbitMQ users ---------------------------------------------------------------------------------

# In the broker's pod: add the user $1 or change its password, the password read from stdin.
# shellcheck disable=SC2016 # expanded by the pod's shell
RABBIT_UPSERT='read -r password
if rabbitmqctl --quiet list_users | cut -f1 | grep -qx "$1"; then
    printf "%s\n" "$password" | rabbitmqctl --quiet change_password "$1"
else
    printf "%s\n" "$password" | rabbitmqctl --quiet add_user "$1"
fi'

echo "# 1. RabbitMQ users in $RABBITMQ_NAMESPACE/$RABBITMQ_POD (permissions: ${PERMISSIONS#"$ROOT"/})"
if [[ $DRY_RUN == 1 ]]; then
    printf "UPSERT=\$(cat <<'EOF'\n%s\nEOF\n)\n" "$RABBIT_UPSERT"
fi
for u in "${RABBIT_USERS[@]}"; do
    role=${RABBIT_ROLE[$u]}
    row=$(awk -F'\t' -v r="$role" '$1 == r { print; exit }' "$PERMISSIONS")
    [[ -n $row ]] || die "no role $role in $PERMISSIONS"
    IFS=$'\t' read -r _ configure write read tags <<<"$row"
    printf '%s\n' "${VALUE[$u]}" | run_stdin "the password of $u (${STATE[$u]})" \
        kubectl -n "$RABBITMQ_NAMESPACE" exec -i "$RABBITMQ_POD" -- sh -c "$RABBIT_UPSERT" sh "$u"
    # shellcheck disable=SC2086 # no tag: no argument (set_user_tags clears them)
    run kubectl -n "$RABBITMQ_NAMESPACE" exec "$RABBITMQ_POD" -- rabbitmqctl --quiet set_user_tags "$u" $tags
    run kubectl -n "$RABBITMQ_NAMESPACE" exec "$RABBITMQ_POD" -- \
        rabbitmqctl --quiet set_permissions -p / "$u" "$configure" "$write" "$read"
done

# --- 2. The topology -------------------------------------------------------------------------------

if [[ $TOPOLOGY == 1 ]]; then
    echo "# 2. The topology, declared by the administrator $RABBITMQ_ADMIN (pool-amqp declare, $AMQP_IMAGE)"
    suffix=$(random_secret)
    name="pool-amqp-declare-${suffix:0:6}"
    # The administrator's password from the chart's Secret, into AMQP_URL by the kubelet ($(VAR)
    # expansion): on no command line and in no pod spec. It goes into the URL as it is (the chart
    # generates an alphanumeric one; a password of yours with URL characters needs --skip-topology and
    # `pool-amqp declare` run by hand).
    # shellcheck disable=SC2016
    overrides=$(printf '%s' '{"spec":{"containers":[{"name":"%s","image":"%s","args":["declare"],"env":[' \
        '{"name":"RABBITMQ_ADMIN_PASSWORD","valueFrom":{"secretKeyRef":{"name":"rabbitmq","key":"rabbitmq-password"}}},' \
        '{"name":"AMQP_URL","value":"amqp://%s:$(RABBITMQ_ADMIN_PASSWORD)@rabbitmq:5672/%%2f"}],' \
        '"securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"runAsNonRoot":true,' \
        '"seccompProfile":{"type":"RuntimeDefault"}}}]}}')
    # shellcheck disable=SC2059 # the format is the JSON above
    overrides=$(printf "$overrides" "$name" "$AMQP_IMAGE" "$RABBITMQ_ADMIN")
    run kubectl -n "$RABBITMQ_NAMESPACE" run "$name" --rm --attach --quiet --restart=Never \
        --image="$AMQP_IMAGE" --overrides="$overrides"
else
    echo "# 2. The topology: skipped (--skip-topology)"
fi

# --- 3. MinIO users and policies -----------------------------------------------------------------------

# policy_json POLICY: the least-privilege policy of k8s/iam/POLICY.json on s3://BUCKET/PREFIX/.
policy_json() {
    local list_events='    {
      "Sid": "ListTheEventsPrefix",
      "Effect": "Allow",
      "Action": "s3:ListBucket",
      "Resource": "arn:aws:s3:::'"$BUCKET"'",
      "Condition": {"StringLike": {"s3:prefix": ["'"$PREFIX"'/", "'"$PREFIX"'/*"]}}
    },'
    case $1 in
    pool-selector-s3-readonly)
        cat <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
$list_events
    {
      "Sid": "ReadEventsAndRollups",
      "Effect": "Allow",
      "Action": "s3:GetObject",
      "Resource": "arn:aws:s3:::$BUCKET/$PREFIX/*"
    }
  ]
}
EOF
        ;;
    ingest-worker-s3-writer)
        cat <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "WriteRawEventObjectsOnly",
      "Effect": "Allow",
      "Action": "s3:PutObject",
      "Resource": "arn:aws:s3:::$BUCKET/$PREFIX/dt=*"
    }
  ]
}
EOF
        ;;
    compactor-s3-writer)
        cat <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
$list_events
    {
      "Sid": "ReadRawEventsAndRollups",
      "Effect": "Allow",
      "Action": "s3:GetObject",
      "Resource": "arn:aws:s3:::$BUCKET/$PREFIX/*"
    },
    {
      "Sid": "WriteAndReplaceRollupsOnly",
      "Effect": "Allow",
      "Action": ["s3:PutObject", "s3:DeleteObject"],
      "Resource": "arn:aws:s3:::$BUCKET/$PREFIX/_rollups/*"
    }
  ]
}
EOF
        ;;
    *) die "no policy $1" ;;
    esac
}

# mc_script reveal|redact: the script the mc pod runs (sh), the credentials in it or left out.
mc_script() {
    local u
    # credential reveal|redact VALUE WHAT
    credential() { if [[ $1 == reveal ]]; then sq "$2"; else printf '<%s>' "$3"; fi; }
    cat <<EOF
set -eu
attach() {
    if out=\$(mc admin policy attach platform "\$1" --user "\$2" 2>&1); then echo "\$out"; return 0; fi
    case \$out in
    *"already in effect"* | *"no net effect"*) echo "policy \$1: already attached to \$2" ;;
    *) echo "\$out" >&2; return 1 ;;
    esac
}
mc alias set platform $(sq "$MINIO_URL") $(credential "$1" "$MINIO_ROOT_USER" "root user") $(credential "$1" "$MINIO_ROOT_PASSWORD" "root password") >/dev/null
mc mb --ignore-existing platform/$BUCKET
EOF
    for u in "${S3_USERS[@]}"; do
        cat <<EOF
cat >/tmp/${S3_POLICY[$u]}.json <<'POLICY'
$(policy_json "${S3_POLICY[$u]}")
POLICY
mc admin policy create platform ${S3_POLICY[$u]} /tmp/${S3_POLICY[$u]}.json
mc admin user add platform $u $(credential "$1" "${VALUE[s3:$u]}" "secret key of $u (${STATE[s3:$u]})")
attach ${S3_POLICY[$u]} $u
EOF
    done
}

echo "# 3. MinIO users and policies ($MINIO_URL, s3://$BUCKET/$PREFIX/; mc in a pod of $MINIO_NAMESPACE)"
suffix=$(random_secret)
name="pool-mc-bootstrap-${suffix:0:6}"
mc_script reveal | run_stdin "the script below, with the credentials" \
    kubectl -n "$MINIO_NAMESPACE" run "$name" --rm -i --quiet --restart=Never --image="$MC_IMAGE" \
    --env=MC_CONFIG_DIR=/tmp/.mc --command -- /bin/sh -s
if [[ $DRY_RUN == 1 ]]; then
    mc_script redact | sed 's/^/  | /'
fi

# --- 4. The platform's Secrets -------------------------------------------------------------------------

# write_secret NAME KEY VALUE STATE [KEY VALUE STATE]...: create or update the Secret NAME, the values
# from files of the private temporary folder.
write_secret() {
    local name=$1 args=() notes=() key value state
    shift
    while [[ $# -gt 0 ]]; do
        key=$1 value=$2 state=$3
        shift 3
        if [[ $DRY_RUN == 0 ]]; then
            printf '%s' "$value" >"$TMP/$name.$key"
        fi
        args+=("--from-file=$key=$TMP/$name.$key")
        notes+=("$key ($state)")
    done
    if [[ $DRY_RUN == 1 ]]; then
        echo "$(show kubectl -n "$NAMESPACE" create secret generic "$name" "${args[@]}" --dry-run=client -o yaml) | $(show kubectl -n "$NAMESPACE" apply -f - | cut -c3-)"
        printf '  (secret %s: ' "$name"
        printf '%s; ' "${notes[@]}" | sed 's/; $/)\n/'
    else
        kubectl -n "$NAMESPACE" create secret generic "$name" "${args[@]}" --dry-run=client -o yaml |
            kubectl -n "$NAMESPACE" apply -f -
    fi
}

# The URLs carry the passwords percent-encoded (the services decode them).
amqp_url() { printf 'amqp://%s:%s@%s:5672/%%2f' "$1" "$(urlencode "${VALUE[$1]}")" "$RABBITMQ_HOST"; }
management_url() { printf 'http://%s:%s@%s:15672' "$1" "$(urlencode "${VALUE[$1]}")" "$RABBITMQ_HOST"; }
redis_url() { printf 'redis://:%s@%s:6379/%s' "$(urlencode "$REDIS_PASSWORD")" "$REDIS_HOST" "$1"; }

echo "# 4. The Secrets in $NAMESPACE"
write_secret pool-selector-s3-readonly \
    aws-access-key-id pool-selector "MinIO user" \
    aws-secret-access-key "${VALUE[s3:pool-selector]}" "${STATE[s3:pool-selector]}"
write_secret ingest-worker-credentials \
    aws-access-key-id ingest-worker "MinIO user" \
    aws-secret-access-key "${VALUE[s3:ingest-worker]}" "${STATE[s3:ingest-worker]}" \
    amqp-url "$(amqp_url pool-worker)" "pool-worker, ${STATE[pool-worker]}"
write_secret compactor-credentials \
    aws-access-key-id compactor "MinIO user" \
    aws-secret-access-key "${VALUE[s3:compactor]}" "${STATE[s3:compactor]}"
write_secret monitor-credentials \
    rabbitmq-management-url "$(management_url pool-monitor)" "pool-monitor, ${STATE[pool-monitor]}"
write_secret relay-credentials \
    redis-url "$(redis_url 0)" "Redis database 0"
write_secret intake-credentials \
    amqp-url "$(amqp_url pool-producer)" "pool-producer, ${STATE[pool-producer]}"
write_secret intake-tokens \
    tokens "${VALUE[tokens]}" "${STATE[tokens]}"
write_secret launcher-credentials \
    redis-url "$(redis_url 1)" "Redis database 1" \
    intake-token "${VALUE[intake-token]}" "${STATE[intake-token]}" \
    launcher-tokens "${VALUE[launcher-tokens]}" "${STATE[launcher-tokens]}"
write_secret rollup-signing \
    rollup-hmac-key "${VALUE[rollup-hmac-key]}" "${STATE[rollup-hmac-key]}"

if [[ $DRY_RUN == 0 ]]; then
    log "done: RabbitMQ users ${RABBIT_USERS[*]}, MinIO users ${S3_USERS[*]}, the Secrets of $NAMESPACE"
    log "read a token: kubectl -n $NAMESPACE get secret launcher-credentials -o jsonpath='{.data.launcher-tokens}' | base64 -d"
    if [[ $ROTATE == 1 ]]; then
        log "rotated: restart what reads them, e.g. kubectl -n $NAMESPACE rollout restart deploy/intake deploy/ingest-worker deploy/monitor deploy/pool-selector deploy/compactor"
    fi
fi
