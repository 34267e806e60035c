#!/usr/bin/env bash
# Checks of the deployment artifacts and of the local stack, for `make test` and CI:
#
#   1. scripts/check_artifacts.py static: kustomize renders (base and overlays, among them the compactor
#      CronJob component), the Helm chart lints and renders (Helm v4 library via helm-python-sdk; the
#      compactor as a Deployment and as a CronJob), every object validates against the Kubernetes
#      schemas (kubernetes-validate) or its CRD schema (k8s/crds-schemas), the manifests are consistent
#      (the compactor's `--every` Deployment or its Indexed CronJob with `--shard $(JOB_COMPLETION_INDEX)/N`),
#      docker-compose.yml parses, promtool accepts the Prometheus configs (the compactor and the intake
#      scraped), the dashboard parses (with its compaction lag panel, accepted events from the intake);
#      the hardening (a ServiceAccount and a Secret per service, pool-selector read only with no AMQP or
#      intake setting in the manifests, compose, deploy/stack.toml and fuzz.sh, Pod Security `restricted`,
#      default deny both ways in every namespace, a policy per workload, storage and API server egress
#      named, the launcher's Role against its backend's calls, image digests, the relay's admin port);
#      who reaches the intake (a producer namespace's pod and Prometheus, nobody else), in every
#      kustomize and Helm rendering; the Spark jobs namespace and image; zone spread and PDBs; the
#      alerts (promtool check rules, their unit tests k8s/tests/alerts-test.yaml with promtool test
#      rules, runbooks) and the dashboard ConfigMap; compose from the root (.env, no default password,
#      loopback ports); RabbitMQ's max_message_size; the documented install order;
#      then scripts/check_env_vars.py: every environment variable the artifacts set for a service is one
#      its binary reads (from `<binary> --help`; needs the built binaries, release or debug, in
#      $CARGO_TARGET_DIR or target/: run it after cargo, as `make test` does);
#   2. tests/stack_test.sh: `make up` end to end (events through RabbitMQ and through the intake's
#      POST /events into S3, a ranking through the relay, the dashboard's metric names on the live
#      /metrics, every Prometheus target up), then `make down` leaves nothing running.
#
#   scripts/check-artifacts.sh            both
#   scripts/check-artifacts.sh static     only 1 (seconds; no build, no servers; built binaries needed)
#
# Needs: kubectl (kustomize), promtool and docker-compose (Debian), the repo venv .venv with
# helm-python-sdk, kubernetes-validate and PyYAML (all installed by scripts/install-deps.sh). A missing
# tool is a failure, never a skip.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"

die() {
    echo "check-artifacts: error: $*" >&2
    exit 1
}

command -v kubectl >/dev/null 2>&1 ||
    die "kubectl is required (kubectl kustomize renders k8s/); install kubectl >= 1.27"
if ! [[ -x $PY ]] || ! "$PY" -c 'import helm_python, kubernetes_validate, yaml' 2>/dev/null; then
    die "$ROOT/.venv lacks helm-python-sdk / kubernetes-validate / PyYAML: run scripts/install-deps.sh"
fi

t0=$SECONDS
echo "check-artifacts: static checks" >&2
"$PY" "$ROOT/scripts/check_artifacts.py" static
echo "check-artifacts: environment variables against the binaries' --help" >&2
"$PY" "$ROOT/scripts/check_env_vars.py"
echo "check-artifacts: static checks passed in $((SECONDS - t0))s" >&2

if [[ ${1:-} == static ]]; then
    exit 0
fi

t1=$SECONDS
"$ROOT/tests/stack_test.sh"
echo "check-artifacts: stack test passed in $((SECONDS - t1))s; total $((SECONDS - t0))s" >&2
