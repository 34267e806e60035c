#!/usr/bin/env bash
# Install what the test suite and the local stack need, and nothing that is already there.
#
#   * Debian packages: rabbitmq-server, redis-server, prometheus, nginx, wrk, docker-compose (checks
#     deploy/docker-compose.yml offline), time (GNU time: the rollups benchmark reads the compactor's
#     peak RSS from it), openssl (scripts/test-services.sh makes the test CA and the servers' TLS
#     certificate with it), chromium and chromium-driver (the relay's ranking page is tested in
#     headless Chromium over WebDriver), shellcheck (k8s/scripts/bootstrap-secrets.sh's test lints it)
#     (+ curl, and python3-venv when the Python in PATH cannot make virtual environments). Installed
#     only when missing, as root, with one `apt-get update`; their system services are not started
#     (the harness runs its own instances on private ports). Not root and something missing: prints
#     the command and exits 1.
#   * A repo-local Python venv at .venv (git-ignored) with moto[server] (the S3 test server),
#     duckdb (the benchmark's reference), and helm-python-sdk, kubernetes-validate and PyYAML (the
#     deployment artifact checks, scripts/check-artifacts.sh), locust and matplotlib (`make load`:
#     load-test/README.md) and chaostoolkit (`make chaos`: chaos/README.md).
#   * Spark for the launcher's local backend (crates/launcher runs `spark-submit --master local[*]`):
#     a Java runtime from Debian (default-jre-headless, only when no `java` is on PATH: PySpark 3.5
#     runs on Java 8, 11 and 17) and PySpark from PyPI in .venv (its bin/spark-submit), pinned to
#     3.5.3, the sparkVersion of deploy/launch-templates; `make demo` plots with matplotlib.
#   * A second venv at .venv-fuzz (git-ignored) with schemathesis 4, the API fuzzer of scripts/fuzz.sh
#     (apart from .venv, so the two tools' dependencies never clash).
#   * cargo-nextest.
#
# Safe to run again: a second run with everything present does nothing and says so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY_PACKAGES=("moto[server]>=5" "duckdb>=1" "helm-python-sdk>=0.2.2" "kubernetes-validate>=1.31" "PyYAML>=6"
    "locust>=2.20" "matplotlib>=3.7" "chaostoolkit>=1.17" "pyspark==3.5.3")
DEB_PACKAGES=(rabbitmq-server redis-server prometheus nginx wrk curl docker-compose time openssl chromium chromium-driver shellcheck)

log() { echo "install-deps: $*" >&2; }

deb_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

python_can_venv() {
    command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1
}

missing=()
for p in "${DEB_PACKAGES[@]}"; do
    deb_installed "$p" || missing+=("$p")
done
# Spark needs a JVM; any Java already on PATH will do.
if ! command -v java >/dev/null 2>&1; then
    deb_installed default-jre-headless || missing+=(default-jre-headless)
fi
if ! python_can_venv; then
    deb_installed python3 || missing+=(python3)
    deb_installed python3-venv || missing+=(python3-venv)
fi

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        log "missing Debian packages: ${missing[*]}"
        log "install them as root, then run this script again:"
        echo "sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    # Do not let the packages' maintainer scripts start system-wide daemons (rabbitmq, redis, nginx,
    # prometheus): the test harness starts private instances itself.
    policy=/usr/sbin/policy-rc.d
    placed_policy=""
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        placed_policy=1
    fi
    trap 'if [[ -n $placed_policy ]]; then rm -f "$policy"; fi' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    log "Debian packages present: ${DEB_PACKAGES[*]}"
fi

# locust is imported first: it monkey-patches ssl (gevent), which fails once moto has imported ssl.
venv_ok() {
    [[ -x $VENV/bin/moto_server && -x $VENV/bin/spark-submit ]] &&
        "$VENV/bin/python" -c 'import locust, moto, duckdb, helm_python, kubernetes_validate, yaml, matplotlib, chaostoolkit, pyspark' >/dev/null 2>&1
}
if venv_ok; then
    log "Python venv present: $VENV (moto, duckdb, helm-python-sdk, kubernetes-validate, locust, matplotlib, chaostoolkit, pyspark)"
else
    if ! python_can_venv; then
        log "python3 with the venv module is required to create $VENV"
        exit 1
    fi
    log "creating Python venv $VENV with ${PY_PACKAGES[*]}"
    [[ -x $VENV/bin/pip ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "${PY_PACKAGES[@]}"
    venv_ok || { log "the venv at $VENV still lacks one of ${PY_PACKAGES[*]}"; exit 1; }
fi

"$ROOT/scripts/fuzz.sh" install

if cargo nextest --version >/dev/null 2>&1; then
    log "cargo-nextest present"
else
    log "installing cargo-nextest"
    cargo install cargo-nextest --locked
fi
