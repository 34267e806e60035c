#!/usr/bin/env python3
"""Checks of the deployment artifacts (deploy/, k8s/, helm/), run by scripts/check-artifacts.sh.

    check_artifacts.py static              everything that needs no running service
    check_artifacts.py live ENV_FILE       against a running `make up` stack (ENV_FILE: `stack.sh env` output)
    check_artifacts.py alert-tests         only the alerts' unit tests (`promtool test rules` on k8s/tests/alerts-test.yaml)

static:
  * `kubectl kustomize` renders k8s/base and every overlay in k8s/overlays (example-compactor-cronjob:
    with the components/compactor-cronjob component; example-pinned: images by digest);
  * the Helm chart lints (strict; the one warning tolerated: its dependencies, pinned and disabled by
    default behind <name>.enabled, are not downloaded into charts/) and renders with Helm v4's library
    (helm-python-sdk) for several value sets and every example values file (ci/*-values.yaml), and
    values.schema.json rejects bad values;
  * every rendered object validates against the Kubernetes OpenAPI schemas (kubernetes-validate, strict:
    unknown fields are errors) for the oldest and newest Kubernetes versions we support (the oldest: 1.30,
    where the intake's preStop `sleep` action is on by default; Chart.yaml's kubeVersion and the READMEs
    state the same floor); custom resources
    (ServiceMonitor, PrometheusRule, ScaledObject, TriggerAuthentication) against the CRD schemas in
    k8s/crds-schemas;
  * consistency: probes, resources and security contexts on every container (CronJob pods too); Services,
    PDBs, ServiceMonitors, the HPAs and the ScaledObject point at things that exist; the NetworkPolicies
    admit only the relay (plus Prometheus) to pool-selector, only the producers' namespaces (plus
    Prometheus) to the intake and only Prometheus to the compactor; the worker's HPA/KEDA limits equal the
    monitor's, the intake's HPA scales on CPU; every image of a rendering comes from one repository;
    kustomize and Helm render the same kinds of resources per component;
  * the compactor: a Deployment running `--every` (1 replica, scraped) or, with the CronJob component or
    compactor.mode=cronjob, an Indexed CronJob (concurrencyPolicy Forbid, completions = parallelism = N,
    args `--once --shard $(JOB_COMPLETION_INDEX)/N`), never both; pool-selector's storage settings, its own
    credentials and ServiceAccount;
  * the intake: its Deployment (port, /health and /ready, AMQP_URL and INTAKE_TOKENS from Secrets, the
    request limits from a ConfigMap), Service, ServiceMonitor, PDB and CPU-based HPA (which then owns the
    replica count); with NetworkPolicies, a model of their semantics says a producer pod (a Spark driver
    in a namespace labelled pool-selector.io/event-producer=true) and Prometheus reach the intake's port,
    while a pod of an unlabelled namespace, a pod of the platform's own namespace, and the producer at
    pool-selector's port do not; helm:no-intake renders none of it;
  * hardening: every Deployment and CronJob runs as a ServiceAccount of its own (no token); no Secret is
    read by two services but rollup-signing; pool-selector has no AMQP/RabbitMQ/intake setting or
    credential (read-only S3 and the rollup signing key only); the compactor (Deployment or CronJob) and
    pool-selector read ROLLUP_HMAC_KEY from the same Secret key (rollup-signing/rollup-hmac-key, the
    chart's credentials.rollupSigning), required, and no other workload reads it;
    egress is denied by default with DNS allowed to all and each service's dependencies allowed on their
    ports only (the S3 port from AWS_ENDPOINT_URL); images render `repo@sha256:...` exactly when a digest
    is set (the pinned overlay, Helm image.digest); the relay's public Service leaves out its admin port
    (ADMIN_PORT), which only Prometheus may reach and which the ServiceMonitor scrapes; the IAM policies in
    k8s/iam give pool-selector read access only;
  * namespaces: every Namespace a rendering creates enforces, audits and warns Pod Security `restricted`,
    every pod meets `restricted` (a model of its checks), and every namespace it deploys into (the
    platform's, the Spark jobs namespace) has a default deny for ingress and egress; every workload has
    an ingress policy (ingest-worker, the monitor and the compactor: Prometheus only, on their metrics
    port); storage egress names the endpoint when AWS_ENDPOINT_URL does (in-cluster namespace and pods, or
    an address), the API server egress names addresses (/24 or narrower, never the private ranges);
  * zones: pool-selector, the relay, the intake and ingest-worker spread over topology.kubernetes.io/zone
    (maxSkew 1), run two replicas at least and have a PDB keeping one that a drain can satisfy;
  * the launcher: its Deployment (BACKEND=kubernetes, its Secret, RELAY_URL/INTAKE_URL the rendered Services),
    Service, ServiceMonitor, PDB; the ConfigMap mounted at LAUNCH_TEMPLATES equal to deploy/launch-templates
    (no drift); its RBAC exactly a Role in SPARK_NAMESPACE on sparkapplications (get, list, create, delete)
    and pods (list): the verbs of the kube-rs calls of its kubernetes backend (read from its source), with
    k8s/README.md naming the call behind each; no wildcard, no ClusterRole, bound to its account only (the
    only pod with an API token); clients' namespaces and Prometheus reach it, it reaches the intake; and every
    SparkApplication `launcher render` prints (the binary of $CARGO_TARGET_DIR) validates against
    k8s/crds-schemas/sparkapplication-sparkoperator-v1beta2.json with executors on the pool (instance type,
    zone, spot affinity) and the driver on on-demand capacity;
  * the Spark jobs namespace: created (Pod Security `restricted`, an event producer), the Spark driver's
    ServiceAccount (SPARK_SERVICE_ACCOUNT) with exactly the driver's Role, its NetworkPolicies (default deny,
    the namespace's pods among themselves, DNS, the drivers to the launcher's API server addresses and to
    the intake), a driver there reaching the intake; the Spark job image (deploy/spark-job): its Spark the
    templates' sparkVersion, a numeric non-root USER the templates' pods run as, every job file copied to
    mainApplicationFile's folder, `make spark-image` building the templates' image;
  * alerts: k8s/base/prometheusrule.yaml and the chart's copy identical, `promtool check rules`, the
    operator's alerts each with its metrics, a severity, a summary and a runbook_url to its own section of
    docs/runbooks.md, every rendering carrying them; their unit tests (k8s/tests/alerts-test.yaml,
    `promtool test rules` on the rule file's groups) pass, with a case where each alert fires (its labels
    and annotations) and one where it stays quiet; the dashboard as a ConfigMap labelled
    grafana_dashboard: "1" equal to deploy/grafana/dashboards (and its copies);
  * dependencies: RabbitMQ's max_message_size equal to ingest-worker's MAX_MESSAGE_BYTES default in every
    RabbitMQ artifact and in `make up`'s broker (`stack.sh rabbitmq-config`, and the rabbitmq.conf its
    start_rabbitmq writes, run with stubs); every documented launcher-tokens is `caller:token` pairs and
    every documented curl to POST /launch sends `Authorization: Bearer`; the install order (kube-prometheus-stack, the dependencies, the platform, the Spark
    Operator watching spark-jobs) in k8s/README.md and the chart's README.md; every Secret and key the
    example reads in k8s/README.md's table and in overlays/example/secrets.example.yaml;
  * docker-compose.yml parses (`docker-compose config`, with a .env scripts/compose-env.sh writes) and is
    wired as documented (the compactor with `--every` and pool-selector's storage settings, the intake with
    INTAKE_TOKENS and ingest-worker's broker, pool-selector with no AMQP or intake setting, the relay's
    ADMIN_PORT, the launcher's simulated runs with the intake's token, RabbitMQ's rabbitmq.conf, the same
    ROLLUP_HMAC_KEY on the compactor and both pool-selector replicas and on nothing else); every port
    on 127.0.0.1 but the relay's 8080, pool-selector on 5050; the root docker-compose.yml includes it;
    without .env compose refuses to start (the secrets are `${VAR:?}`), no default password anywhere,
    .env.example carries the seeds' names and every variable compose reads, compose-env.sh writes random
    secrets and never overwrites a .env, `make compose` runs it then `docker compose up -d`; the
    Dockerfile builds a real binary as a non-root user, from base images named without a registry host;
  * no registry host (container image, chart and package registries: REGISTRY_HOSTS) in any file of the
    repository but Cargo.lock; the chart's dependencies come from a repository alias (`@bitnami`);
  * the local scripts: deploy/stack.toml (`make up`) and scripts/fuzz.sh give pool-selector no AMQP or
    intake setting and start the intake with its tokens and the broker; `make up` gives the compactor and
    pool-selector (only) the same random ROLLUP_HMAC_KEY, kept in its state folder (`stack.sh show`);
  * `promtool check config` accepts deploy/prometheus.yml and the variant `make up` generates from it;
    Prometheus scrapes the compactor, the intake, and the relay on its admin port;
  * the Grafana dashboard and its provisioning parse and agree on the datasource; it has the compactor's
    lag panel, counts accepted events with the intake's metric, and has the launcher's row (launches by
    state, attempts by outcome, attempt duration quantiles, outbox depth).
  * k8s/chaos: the Chaos Mesh experiments (PodChaos, NetworkChaos) validate strictly against their CRD
    schemas in k8s/crds-schemas (taken from chaos-mesh/chaos-mesh's config/crd/bases).

live:
  * every metric name the dashboard, the adapter rules and the HPA use is exported on /metrics by
    the running services (the relay's on its admin port);
  * every probe path in the manifests answers 200 on the matching running service;
  * the running compactor and pool-selector hold the stack's ROLLUP_HMAC_KEY (their /proc environ), no
    other process of the stack does; the running broker's rabbitmq.conf sets max_message_size;
  * Prometheus (started by `make up` with the generated config) has every target up, and every
    dashboard query runs there and returns data.

Exit status 1 with a list of failures when anything is wrong.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import kubernetes_validate
import referencing
import yaml
from kubernetes_validate import utils as kv_utils

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
CHART = ROOT / "helm" / "pool-selector-platform"
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "pool-selector.json"
ADAPTER_VALUES = K8S / "prometheus-adapter" / "values.yaml"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): K8S / "crds-schemas" / "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): K8S / "crds-schemas" / "prometheusrule-monitoring-v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): K8S / "crds-schemas" / "scaledobject-keda-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): K8S / "crds-schemas" / "triggerauthentication-keda-v1alpha1.json",
}
# The Spark Operator's SparkApplication: not part of any rendering, but of what the launcher creates
# (`launcher render`, check_spark_applications).
SPARK_APPLICATION_SCHEMA = K8S / "crds-schemas" / "sparkapplication-sparkoperator-v1beta2.json"
# The oldest Kubernetes supported: the lowest release where everything rendered works with default feature
# gates. That is 1.30, where the preStop `sleep` action (PodLifecycleSleepAction) the intake needs (its image
# has no shell, so no `exec: sleep`) is beta and on by default; it is in the schemas from 1.29, but alpha
# and off there. HPA autoscaling/v2 and PDB policy/v1 are older. Chart.yaml's kubeVersion and the READMEs
# state this floor (check_kube_floor). Every object is validated against it and the newest release known.
KUBE_MIN = "1.30"
SLEEP_ACTION_ON_BY_DEFAULT = (1, 30)
KUBE_VERSIONS = [KUBE_MIN, kv_utils.major_minor(kubernetes_validate.latest_version())]
# Where the floor is stated for operators.
KUBE_MIN_DOCS = [K8S / "README.md", CHART / "README.md"]
# The base and every overlay (a new overlay is checked without being listed here).
KUSTOMIZATIONS = ["base"] + sorted(f"overlays/{p.parent.name}" for p in (K8S / "overlays").glob("*/kustomization.yaml"))
# Renderings whose every image must be pinned by digest.
PINNED = {"kustomize:overlays/example-pinned", "helm:ci/production-values.yaml"}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Secret keys the services read (the intake's bearer tokens: `tokens` of its own Secret).
SECRET_KEYS = {"aws-access-key-id", "aws-secret-access-key", "amqp-url", "rabbitmq-management-url", "redis-url", "tokens",
               "intake-token", "launcher-tokens", "rollup-hmac-key"}
# ROLLUP_HMAC_KEY: the compactor signs rollups with it, pool-selector uses only rollups signed with it. Both
# read it from this one Secret and key (Helm: credentials.rollupSigning, credentials.keys.rollupHmacKey),
# the only Secret two services share; no other workload reads it.
ROLLUP_ENV = "ROLLUP_HMAC_KEY"
ROLLUP_SECRET = "rollup-signing"
ROLLUP_SECRET_KEY = "rollup-hmac-key"
ROLLUP_HOLDERS = {"compactor", "pool-selector"}
COMPONENTS = ["pool-selector", "relay", "ingest-worker", "monitor", "compactor", "intake"]
# Helm values key of each component.
VALUES_KEY = {"pool-selector": "poolSelector", "relay": "relay", "ingest-worker": "ingestWorker", "monitor": "monitor",
              "compactor": "compactor", "intake": "intake"}
# Egress each service needs besides DNS (TCP ports): S3 (the port of AWS_ENDPOINT_URL, "storage"), RabbitMQ
# (AMQP and AMQPS), its management API (HTTP and HTTPS), Redis, and the relay's upstream (pool-selector's
# port, "upstream"). Nothing else.
AMQP_PORTS = {5672, 5671}
MANAGEMENT_PORTS = {15672, 15671}
REDIS_PORTS = {6379}
EGRESS_NEEDS = {"pool-selector": {"storage"}, "ingest-worker": {"storage", "amqp"}, "compactor": {"storage"},
                "monitor": {"management"}, "relay": {"upstream", "redis"}, "intake": {"amqp"},
                "launcher": {"relay", "intake", "redis", "kubeapi"}}
PROMETHEUS_PEER = {"app.kubernetes.io/name": "prometheus"}
IAM = K8S / "iam"
DESIRED_METRIC = "pool_monitor_desired_replicas"
# Readiness path per component: ingest-worker and the compactor serve no traffic and have no /ready, so
# their readiness is their liveness. The live check proves each path answers on the running service.
READY_PATH = {"pool-selector": "/ready", "relay": "/ready", "monitor": "/ready", "ingest-worker": "/health",
              "compactor": "/health", "intake": "/ready", "launcher": "/ready"}
# The launcher (POST /launch: Spark jobs on the recommended pool); these renderings have it switched off
# (it needs the intake). The only workload with a Kubernetes API token, limited by its Role.
LAUNCHER = "launcher"
LAUNCHER_DISABLED = {"helm:no-intake"}
LAUNCHER_TEMPLATES = ROOT / "deploy" / "launch-templates"
# Exactly these rules, in the Spark jobs namespace (SPARK_NAMESPACE); nothing else anywhere. They are the
# verbs of the calls the launcher's kubernetes backend makes (LAUNCHER_BACKEND, checked by
# check_launcher_rbac_source): create (submit), get (poll), list (readiness), delete (cancel) on
# SparkApplications, list on pods (a failed run's pods).
LAUNCHER_RULES = {("sparkoperator.k8s.io", "sparkapplications"): {"get", "list", "create", "delete"},
                  ("", "pods"): {"list"}}
LAUNCHER_BACKEND = ROOT / "crates" / "launcher" / "src" / "backend" / "kubernetes.rs"
# kube-rs Api methods and the verb each needs.
KUBE_RS_VERBS = {"create": "create", "get": "get", "get_opt": "get", "get_status": "get", "list": "list",
                 "watch": "watch", "delete": "delete", "delete_collection": "deletecollection", "patch": "patch",
                 "patch_status": "patch", "replace": "update", "replace_status": "update"}
KUBE_API_PORTS = {443, 6443}
# The Spark jobs namespace: what the Spark driver may do there (the Spark Operator chart's driver Role).
SPARK_NAMESPACE_DEFAULT = "spark-jobs"
SPARK_DRIVER_RULES = {("", r): {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
                      for r in ("pods", "services", "configmaps", "persistentvolumeclaims")}
SPARK_DRIVER_ACCOUNT = "spark-driver"
# Pod Security admission labels on every namespace a rendering creates.
PSA_LABELS = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/audit": "restricted",
              "pod-security.kubernetes.io/warn": "restricted"}
# Volume types the `restricted` Pod Security profile allows.
PSA_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
# The replicated services: spread over zones, at least two replicas, a PDB keeping one.
REPLICATED = ["pool-selector", "relay", "intake", "ingest-worker"]
ZONE_KEY = "topology.kubernetes.io/zone"
# The Kubernetes API server's endpoints are named one by one: an ipBlock no wider than this.
KUBE_API_MIN_PREFIX = 24
# The alerts (k8s/base/prometheusrule.yaml, the chart's copy): each needs these metrics in its expression
# (any one of a tuple) and a runbook section.
PROMETHEUS_RULE = K8S / "base" / "prometheusrule.yaml"
CHART_PROMETHEUS_RULE = CHART / "files" / "prometheusrule.yaml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
# Their unit tests (`promtool test rules`): the test file reads the rules from ALERT_TESTS_RULES next to it,
# which the check writes (a PrometheusRule's spec.groups as a rules file) into a temporary folder.
ALERT_TESTS = K8S / "tests" / "alerts-test.yaml"
ALERT_TESTS_RULES = "prometheusrule.rules.yaml"
REQUIRED_ALERTS = {
    "RankingsFailing": ("relay_http_requests_total",),
    "RankingsNotServed": ("relay_http_requests_total",),
    "RankingDataStale": ("pool_selector_view_age_seconds",),
    "RankingViewNotLoaded": ("pool_selector_view_loaded",),
    "IngestionBacklogGrowing": ("pool_monitor_queue_messages_ready",),
    "EventsDeadLettered": ("ingest_worker_dead_lettered_total", "ingest_worker_dead_letter_given_up_total"),
    "CompactionLagging": ("compactor_lag_seconds",),
    "LauncherOutboxStuck": ("launcher_outbox_depth",),
}
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
DASHBOARD_COPIES = [K8S / "base" / "grafana-dashboards", CHART / "files" / "dashboards"]
# RabbitMQ's max_message_size everywhere RabbitMQ is configured: ingest-worker's MAX_MESSAGE_BYTES default.
WORKER_SETTINGS = ROOT / "crates" / "ingest-worker" / "src" / "settings.rs"
RABBITMQ_CONFIGS = [DEPLOY / "rabbitmq" / "rabbitmq.conf", K8S / "dependencies" / "rabbitmq-values.yaml"]
# The Spark job image (deploy/spark-job) the launch templates name.
SPARK_JOB = DEPLOY / "spark-job"
# Compose from the repository root, and its .env.
ROOT_COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_ENV = ROOT / "scripts" / "compose-env.sh"
# The seeds' variable names .env.example must carry (000: the pool selector's .env; the S3 endpoint as
# AWS_ENDPOINT_URL, where the seed's LOCALSTACK_URL goes).
SEED_ENV = {"S3_BUCKET_NAME", "S3_FILE_NAME", "EVENT_FILTER_WINDOW", "AWS_ENDPOINT_URL", "AWS_KEY_ID", "AWS_SECRET", "LOG_LEVEL"}
# Secrets compose must take from .env, never from a default.
COMPOSE_SECRETS = {"GRAFANA_ADMIN_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "RABBITMQ_PASSWORD", "INTAKE_TOKEN",
                   "AWS_KEY_ID", "AWS_SECRET", "LAUNCHER_TOKENS", ROLLUP_ENV}
# Default credentials that must appear nowhere in the compose artifacts.
DEFAULT_PASSWORDS = re.compile(r"admin/admin|guest/guest|guest:guest|dev-token|minioadmin|pool-selector-dev|pool-dev\b"
                               r"|:-(admin|guest|password|changeme|secret)\}", re.I)
# A user of the launcher: a pod of a namespace labelled as its client (the base's and the chart's default).
LAUNCHER_CLIENT = ({"kubernetes.io/metadata.name": "data-team", "pool-selector.io/launcher-client": "true"},
                   {"app": "notebook"}, False)
SIZES = {"small": ((1, "512m"), (1, "512m", 1)), "medium": ((1, "1g"), (2, "2g", 3)), "large": ((2, "2g"), (4, "6g", 10))}
# The compactor is a Deployment (`--every`) or an Indexed CronJob (`--once --shard $(JOB_COMPLETION_INDEX)/N`),
# never both; these renderings have it switched off.
COMPACTOR = "compactor"
COMPACTOR_DISABLED = {"helm:no-compactor"}
COMPACTOR_PORT = "9107"
# The intake (POST /events for the producers); these renderings have it switched off.
INTAKE = "intake"
INTAKE_DISABLED = {"helm:no-intake"}
INTAKE_PORT = "8000"
# The request limits the intake reads from its ConfigMap (k8s intake-settings, Helm intake.limits).
INTAKE_LIMITS = {"INTAKE_RATE_PER_SECOND", "INTAKE_BURST", "INTAKE_MAX_CONCURRENT", "INTAKE_BODY_TIMEOUT",
                 "MAX_BODY_BYTES", "MAX_CLOCK_SKEW"}
# Settings pool-selector must not get (it neither takes POST /events nor talks to the broker).
NOT_FOR_SELECTOR = ("AMQP_", "RABBITMQ_", "INTAKE_")
# Sample pods for the NetworkPolicy model (namespace labels, pod labels, in the platform's namespace?):
# a Spark driver in a producer namespace (labelled as the base and the chart's defaults expect, and
# named spark-jobs for the variants that select by name); a Spark driver in an unlabelled namespace;
# Prometheus. The platform's own namespace is `pool-selector` (the overlays' and the Helm renderings').
PLATFORM_NAMESPACE = {"kubernetes.io/metadata.name": "pool-selector"}
PRODUCER = ({"kubernetes.io/metadata.name": "spark-jobs", "pool-selector.io/event-producer": "true"},
            {"spark-role": "driver", "spark-app-selector": "spark-0123"}, False)
OUTSIDER = ({"kubernetes.io/metadata.name": "default"}, {"spark-role": "driver"}, False)
PROMETHEUS = ({"kubernetes.io/metadata.name": "monitoring"}, {"app.kubernetes.io/name": "prometheus"}, False)
DURATION = re.compile(r"^0*[1-9][0-9]*(s|m|h|d|w)?$")
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "offset", "inf", "nan", "le",
}


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed = 0

    def ok(self, what: str) -> None:
        self.passed += 1
        print(f"  ok   {what}")

    def fail(self, what: str) -> None:
        self.failures.append(what)
        print(f"  FAIL {what}")

    def check(self, cond: bool, what: str, why: str = "") -> bool:
        if cond:
            self.ok(what)
        else:
            self.fail(f"{what}{': ' + why if why else ''}")
        return cond

    def done(self, title: str) -> int:
        print(f"\n{title}: {self.passed} passed, {len(self.failures)} failed")
        for f in self.failures:
            print(f"  - {f}")
        return 1 if self.failures else 0


def section(title: str) -> None:
    print(f"\n== {title}")


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def name_of(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


# ---------------------------------------------------------------------------------------------------
# Rendering


def render_kustomize(r: Report) -> dict[str, list[dict]]:
    out = {}
    for k in KUSTOMIZATIONS:
        p = subprocess.run(["kubectl", "kustomize", str(K8S / k)], capture_output=True, text=True)
        if r.check(p.returncode == 0, f"kubectl kustomize k8s/{k}", p.stderr.strip()[:500]):
            out[f"kustomize:{k}"] = docs(p.stdout)
    return out


HELM_VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "keda": {"autoscaling": {"mode": "keda"}},
    "no-autoscaling-no-monitoring": {
        "autoscaling": {"enabled": False},
        "serviceMonitor": {"enabled": False},
        "networkPolicy": {"enabled": False},
        "poolSelector": {"pdb": {"enabled": False}},
    },
    "production-like": {
        "image": {"registry": "registry.example.com", "tag": "1.2.3"},
        "storage": {"endpoint": "http://minio.storage:9000", "eventsUrl": "s3://spark-events/events/"},
        # MinIO in the cluster: the storage egress goes to its namespace and port instead of HTTPS outside.
        "networkPolicy": {"egress": {
            "storage": {"ports": [9000], "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "storage"}},
                                                 "podSelector": {"matchLabels": {"app": "minio"}}}]},
            "kubernetesApi": {"ports": [443], "to": [{"ipBlock": {"cidr": "10.0.1.15/32"}}]}}},
        "poolSelector": {"replicas": 3, "env": {"EVENT_FILTER_WINDOW": "7d", "RANKING_STRATEGY": "bayes"}},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 20},
        "serviceMonitor": {"labels": {"release": "kube-prometheus-stack"}},
        "compactor": {
            "every": "2m", "settle": "15m", "concurrency": 4,
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/compactor"}},
        },
    },
    # The compactor as an Indexed CronJob on 3 shards (parity with overlays/example-compactor-cronjob).
    "compactor-cronjob": {"compactor": {"mode": "cronjob", "shards": 3}},
    "no-compactor": {"compactor": {"enabled": False}},
    # The launcher posts outcomes to the intake: it goes with it.
    "no-intake": {"intake": {"enabled": False}, "launcher": {"enabled": False}},
    # The intake at a fixed size, its producers selected by namespace name (an expression) instead of a label.
    "intake-fixed-by-name": {"intake": {
        "autoscaling": {"enabled": False}, "replicas": 3, "port": 8080,
        "producers": {"namespaceSelector": {"matchLabels": None, "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["spark-jobs", "spark-adhoc"]}]}},
    }},
    # One image pinned by digest, the others by tag.
    "digest": {"relay": {"image": {"digest": "sha256:" + "0123456789abcdef" * 4}}},
    # The Spark jobs namespace (and its driver account) made elsewhere, under other names; zones spread
    # strictly.
    "spark-namespace-external": {"sparkJobs": {"create": False, "namespace": "batch", "driverServiceAccount": "spark"},
                                 "zoneSpread": {"whenUnsatisfiable": "DoNotSchedule"}},
}
# Example values files shipped with the chart (left out of the package by .helmignore), rendered as
# helm:ci/<file>.
HELM_VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml"))
# The values of every Helm rendering (the variant's or the file's; the chart's defaults fill the rest).
HELM_VALUES: dict[str, dict] = {}
BAD_VALUES = [
    {"autoscaling": {"mode": "cron"}},
    {"relay": {"replicas": "two"}},
    {"credentials": {"relay": {"existingSecret": ""}}},
    {"credentials": {"existingSecret": "one-secret-for-all"}},
    {"relay": {"image": {"digest": "latest"}}},
    {"poolSelector": {"image": {"digest": "sha256:1234"}}},
    {"networkPolicy": {"egress": {"storage": {"ports": []}}}},
    {"networkPolicy": {"egress": {"redis": {"to": [{}]}}}},
    {"poolSelector": {"unknownKey": 1}},
    {"compactor": {"mode": "statefulset"}},
    {"compactor": {"shards": 0}},
    {"compactor": {"every": "0m"}},
    {"compactor": {"every": "5 minutes"}},
    # An empty namespace selector would admit every namespace to POST /events.
    {"intake": {"producers": {"namespaceSelector": {"matchLabels": None}}}},
    {"intake": {"producers": {"namespaceSelector": {"matchLabels": None, "matchExpressions": []}}}},
    {"intake": {"tokens": {"existingSecret": ""}}},
    {"credentials": {"intake": {"existingSecret": ""}}},
    {"intake": {"autoscaling": {"targetCPUUtilizationPercentage": 0}}},
    {"intake": {"limits": {"bodyTimeout": "0s"}}},
    {"intake": {"port": 0}},
    # The launcher's clients must be selected by some label; its Spark namespace must be a namespace name.
    {"launcher": {"clients": {"namespaceSelector": {"matchLabels": None}}}},
    {"sparkJobs": {"namespace": "Spark Jobs"}},
    {"launcher": {"sparkNamespace": "spark-jobs"}},
    {"networkPolicy": {"egress": {"kubernetesApi": {"ports": []}}}},
    # The API server by its endpoints' addresses, never a private range as a whole.
    {"networkPolicy": {"egress": {"kubernetesApi": {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}}}},
    {"networkPolicy": {"egress": {"kubernetesApi": {"to": [{"namespaceSelector": {}}]}}}},
    {"credentials": {"launcher": {"existingSecret": ""}}},
    # The rollup signing key's Secret and key must be named (the compactor and pool-selector read it).
    {"credentials": {"rollupSigning": {"existingSecret": ""}}},
    {"credentials": {"keys": {"rollupHmacKey": ""}}},
    {"zoneSpread": {"whenUnsatisfiable": "Sometimes"}},
    {"prometheusRule": {"runbookBaseUrl": "docs/runbooks.md"}},
    {"grafanaDashboard": {"enabled": "yes"}},
    # RabbitMQ as a dependency must keep max_message_size.
    {"rabbitmq": {"extraConfiguration": "log.console = true"}},
]


def chart_dependencies(r: Report) -> set[str]:
    """The chart's dependencies (Chart.yaml): each pinned to an exact version, from a repository, behind a
    `<name>.enabled` condition that the chart's values leave false, so the chart renders (and installs)
    without them. Returns their names: the one lint warning tolerated is that charts/ lacks them (they are
    fetched by `helm dependency build`, never downloaded by the checks)."""
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    deps = meta.get("dependencies") or []
    problems = []
    for d in deps:
        name = d.get("name")
        if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", str(d.get("version", ""))):
            problems.append(f"{name}: version {d.get('version')!r} is not pinned (exact x.y.z)")
        if not d.get("repository"):
            problems.append(f"{name}: no repository")
        elif not re.fullmatch(r"(@|alias:)[A-Za-z0-9_.-]+", str(d["repository"])):
            # No registry host in the chart: a repository the operator added (`helm repo add`) by name.
            problems.append(f"{name}: repository {d['repository']!r} is not a repository alias (@name)")
        if d.get("condition") != f"{name}.enabled":
            problems.append(f"{name}: condition {d.get('condition')!r}, expected {name}.enabled")
        if (values.get(name) or {}).get("enabled") is not False:
            problems.append(f"{name}: values.yaml does not disable it ({name}.enabled: false)")
    names = {d.get("name") for d in deps}
    r.check(bool(deps) and not problems and {"redis", "rabbitmq"} <= names,
            f"Chart.yaml dependencies {sorted(names)}: pinned, from a repository alias, each behind <name>.enabled, off by default",
            "; ".join(problems) or f"dependencies: {sorted(names)}")
    return names


def missing_dependencies_warning(message: str, deps: set[str]) -> bool:
    """Helm lint's warning that charts/ lacks the declared dependencies (the checks never download them)."""
    m = re.fullmatch(r"chart directory is missing these dependencies: (.*)", message.strip())
    return bool(m) and set(m.group(1).split(",")) <= deps


def render_helm(r: Report) -> dict[str, list[dict]]:
    import helm_python as helm

    out: dict[str, list[dict]] = {}
    r.ok(f"helm-python-sdk {helm.__version__} (Helm SDK {helm.helm_sdk_version()})")
    deps = chart_dependencies(r)
    variants = dict(HELM_VARIANTS)
    for f in HELM_VALUES_FILES:
        variants[f"ci/{f.name}"] = yaml.safe_load(f.read_text()) or {}
    r.check(bool(HELM_VALUES_FILES), f"the chart has example values files ({[f.name for f in HELM_VALUES_FILES]})")
    for variant, values in variants.items():
        HELM_VALUES[f"helm:{variant}"] = values
        report = helm.lint(str(CHART), values or None, strict=True)
        # The dependencies are not in charts/ (never downloaded here): that warning alone is expected.
        problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2
                    and not missing_dependencies_warning(m.get("error", ""), deps)] + [
            {"error": e} for e in report.get("errors", []) if not missing_dependencies_warning(e, deps)
        ]
        r.check(not problems, f"helm lint --strict ({variant}; the dependencies not downloaded)", json.dumps(problems)[:800])
        with helm.Chart.load(str(CHART)) as chart:
            try:
                rendered = chart.render(values or None, name="psp", namespace="pool-selector", is_install=True)
            except helm.HelmError as e:
                r.fail(f"helm template ({variant}): {e}")
                continue
        objs = []
        for path, text in sorted(rendered.items()):
            if path.endswith("NOTES.txt"):
                continue
            objs.extend(docs(text))
        r.check(bool(objs), f"helm template ({variant}) renders {len(objs)} objects")
        out[f"helm:{variant}"] = objs
    with helm.Chart.load(str(CHART)) as chart:
        for bad in BAD_VALUES:
            try:
                chart.validate_schema(bad)
                r.fail(f"values.schema.json accepted bad values {bad}")
            except helm.HelmError:
                r.ok(f"values.schema.json rejects {json.dumps(bad)}")
    return out


# ---------------------------------------------------------------------------------------------------
# Schema validation


def _k8s_validator(filename: str, version: str) -> jsonschema.Validator:
    """A validator for one of kubernetes-validate's schema files (strict: no unknown fields)."""
    schema_dir = f"v{version}-local-strict"
    schema = kv_utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/{filename}", version)
    defs = kv_utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", version)
    registry = referencing.Resource.from_contents(schema) @ referencing.Registry()
    registry = referencing.Resource.from_contents(defs) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def object_errors(obj: dict, crd_validators: dict, behavior: jsonschema.Validator) -> list[str]:
    """Every schema error of one object: Kubernetes schemas for built-in kinds, CRD schemas otherwise."""
    errors = []
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in crd_validators:
        for e in crd_validators[key].iter_errors(obj):
            errors.append(f"{name_of(obj)} ({key[0]} CRD schema): {'/'.join(map(str, e.path))}: {e.message}")
        if obj["kind"] == "ScaledObject":
            b = obj.get("spec", {}).get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
            if b is not None:
                for e in behavior.iter_errors(b):
                    errors.append(f"{name_of(obj)} behavior (autoscaling/v2 schema): {e.message}")
        return errors
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"{name_of(obj)} (Kubernetes {e.version}): {path}: {e.message}")
        except kv_utils.SchemaNotFoundError as e:
            errors.append(f"{name_of(obj)}: no schema for {key} in Kubernetes {version} ({e.message})")
    return errors


def validate_objects(r: Report, renderings: dict[str, list[dict]]) -> None:
    crd_validators = {
        key: jsonschema.Draft202012Validator(json.loads(path.read_text()))
        for key, path in CRD_SCHEMAS.items()
    }
    for key, v in crd_validators.items():
        jsonschema.Draft202012Validator.check_schema(v.schema)
    latest = kubernetes_validate.latest_version()
    behavior = _k8s_validator("horizontalpodautoscalerbehavior-autoscaling-v2.json", latest)
    # The validators must catch mistakes: a misspelt field in each kind of object is an error.
    samples = {o["kind"]: o for objs in renderings.values() for o in objs}
    for kind, field_path in [("Deployment", ("spec", "template", "spec", "containers", 0)),
                             ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec", "containers", 0)),
                             ("HorizontalPodAutoscaler", ("spec",)), ("ServiceMonitor", ("spec", "endpoints", 0)),
                             ("PrometheusRule", ("spec", "groups", 0, "rules", 0)),
                             ("ScaledObject", ("spec",)), ("TriggerAuthentication", ("spec",))]:
        if kind not in samples:
            r.fail(f"no {kind} rendered to test the validator with")
            continue
        bad = copy.deepcopy(samples[kind])
        node = bad
        for k in field_path:
            node = node[k]
        node["livenesProbe"] = {"httpGet": {"path": "/health"}}
        r.check(bool(object_errors(bad, crd_validators, behavior)), f"validator rejects a {kind} with a misspelt field")
    for source, objs in renderings.items():
        errors = []
        counted = 0
        for obj in objs:
            errors.extend(object_errors(obj, crd_validators, behavior))
            counted += 1
        r.check(
            not errors,
            f"{source}: {counted} objects valid (Kubernetes {' and '.join(KUBE_VERSIONS)}, strict; CRDs)",
            "; ".join(errors[:10]),
        )


# ---------------------------------------------------------------------------------------------------
# Consistency of the rendered objects


def component(obj: dict) -> str | None:
    labels = obj.get("metadata", {}).get("labels", {}) or {}
    return labels.get("app.kubernetes.io/name")


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def consistency(r: Report, source: str, objs: list[dict]) -> None:
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    deployments = by_kind.get("Deployment", [])
    configmaps = {o["metadata"]["name"]: o.get("data", {}) for o in by_kind.get("ConfigMap", [])}
    services = by_kind.get("Service", [])
    problems: list[str] = []

    def pod_labels(d: dict) -> dict:
        return d["spec"]["template"]["metadata"].get("labels", {})

    def pod_problems(owner: dict, template: dict, probes: bool) -> None:
        """Security, resources, probes (long-running pods only) and config/secret references of one pod."""
        pod = template["spec"]
        psc = pod.get("securityContext", {})
        comp_name = template["metadata"].get("labels", {}).get("app.kubernetes.io/name")
        if comp_name == LAUNCHER:
            if pod.get("automountServiceAccountToken") is not True:
                problems.append(f"{name_of(owner)}: the launcher calls the Kubernetes API but mounts no token")
        elif pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name_of(owner)}: automountServiceAccountToken is not false")
        for c in pod["containers"]:
            where = f"{name_of(owner)}/{c['name']}"
            ports = {p.get("name") for p in c.get("ports", [])}
            for kind, path in (("livenessProbe", "/health"), ("readinessProbe", READY_PATH.get(comp_name, "/ready"))):
                if not probes:
                    # A Job's pod (the compactor's `--once`) serves nothing: no probe to run.
                    if kind in c:
                        problems.append(f"{where}: a run-to-completion pod has a {kind}")
                    continue
                probe = c.get(kind, {}).get("httpGet", {})
                if probe.get("path") != path:
                    problems.append(f"{where}: {kind} is not an HTTP GET of {path}")
                elif probe.get("port") not in ports:
                    problems.append(f"{where}: {kind} port {probe.get('port')} is not a container port")
            res = c.get("resources", {})
            if not (res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory")):
                problems.append(f"{where}: no cpu/memory requests")
            if not res.get("limits", {}).get("memory"):
                problems.append(f"{where}: no memory limit")
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem not read-only")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not dropped")
            if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
                problems.append(f"{where}: runAsNonRoot not set")
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            if not isinstance(uid, int) or uid == 0:
                problems.append(f"{where}: runAsUser must be a non-zero uid (got {uid})")
            for ef in c.get("envFrom", []):
                ref = ef.get("configMapRef", {}).get("name")
                if ref not in configmaps:
                    problems.append(f"{where}: envFrom ConfigMap {ref} is not rendered")
            for e in c.get("env", []):
                skr = e.get("valueFrom", {}).get("secretKeyRef")
                if skr and skr.get("key") not in SECRET_KEYS:
                    problems.append(f"{where}: env {e['name']} reads unknown Secret key {skr.get('key')}")
                if "value" in e and re.search(r"(?i)(secret|password|token)", e["name"]):
                    problems.append(f"{where}: env {e['name']} carries a credential inline")
            images.add(c["image"])

    images: set[str] = set()
    deploy_by_comp = {}
    for d in deployments:
        comp = pod_labels(d).get("app.kubernetes.io/name")
        deploy_by_comp[comp] = d
        if not selects(d["spec"]["selector"]["matchLabels"], pod_labels(d)):
            problems.append(f"{name_of(d)}: selector does not match its pod labels")
        pod_problems(d, d["spec"]["template"], probes=True)
    cronjobs = by_kind.get("CronJob", [])
    for cj in cronjobs:
        pod_problems(cj, cj["spec"]["jobTemplate"]["spec"]["template"], probes=False)
    # The compactor may be a CronJob instead (check_compactor checks that there is exactly one of them);
    # the intake may be switched off (check_intake checks that nothing of it is left then).
    expected = set(COMPONENTS) - {COMPACTOR} - ({INTAKE} if source in INTAKE_DISABLED else set())
    if source not in LAUNCHER_DISABLED:
        expected.add(LAUNCHER)
    if set(deploy_by_comp) - {COMPACTOR} != expected:
        problems.append(f"Deployments for {sorted(deploy_by_comp)}, expected {sorted(expected)}")
    # One repository for every image (an overlay that forgets one, e.g. a component's CronJob added
    # after its images were set, shows here).
    repos = {i.rsplit("/", 1)[0] for i in images}
    if len(repos) != 1:
        problems.append(f"images come from several repositories: {sorted(images)}")

    def deployment_selected(selector: dict) -> dict | None:
        for d in deployments:
            if selects(selector, pod_labels(d)):
                return d
        return None

    for s in services:
        d = deployment_selected(s["spec"].get("selector", {}))
        if d is None:
            problems.append(f"{name_of(s)}: selects no Deployment")
            continue
        cports = {p.get("name") for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for p in s["spec"]["ports"]:
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in cports:
                problems.append(f"{name_of(s)}: targetPort {p['targetPort']} not a port of {name_of(d)}")
    relay = deploy_by_comp.get("relay")
    if relay:
        env = {e["name"]: e.get("value") for e in relay["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        upstream = urllib.parse.urlparse(env.get("UPSTREAM_URL", ""))
        svc = next((s for s in services if s["metadata"]["name"] == upstream.hostname), None)
        if svc is None or deployment_selected(svc["spec"]["selector"]) is not deploy_by_comp.get("pool-selector"):
            problems.append(f"relay UPSTREAM_URL {env.get('UPSTREAM_URL')} is not the pool-selector Service")
        elif upstream.port not in {p["port"] for p in svc["spec"]["ports"]}:
            problems.append(f"relay UPSTREAM_URL port {upstream.port} is not a port of {name_of(svc)}")
    for p in by_kind.get("PodDisruptionBudget", []):
        if deployment_selected(p["spec"]["selector"]["matchLabels"]) is None:
            problems.append(f"{name_of(p)}: selects no Deployment")
    for sm in by_kind.get("ServiceMonitor", []):
        svc = next((s for s in services if selects(sm["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))), None)
        if svc is None:
            problems.append(f"{name_of(sm)}: selects no Service")
            continue
        names = {p.get("name") for p in svc["spec"]["ports"]}
        for ep in sm["spec"]["endpoints"]:
            if ep.get("port") not in names:
                problems.append(f"{name_of(sm)}: endpoint port {ep.get('port')} not on {name_of(svc)}")

    # NetworkPolicies (ingress; egress is check_egress's): a namespace-wide policy denies (no rule); every
    # workload has a policy of its own: pool-selector admits the relay, and otherwise only Prometheus in
    # another namespace; the compactor, ingest-worker and the monitor admit only Prometheus, on their
    # metrics port; the relay admits everyone on its public port and only Prometheus on its admin port.
    nps = [np for np in by_kind.get("NetworkPolicy", []) if "Ingress" in np["spec"].get("policyTypes", [])]
    for np in by_kind.get("NetworkPolicy", []):
        types = set(np["spec"].get("policyTypes", []))
        if not types or not types <= {"Ingress", "Egress"}:
            problems.append(f"{name_of(np)}: policyTypes {sorted(types)}")
    selector_pods = pod_labels(deploy_by_comp["pool-selector"]) if "pool-selector" in deploy_by_comp else {}
    compactor_pods = [pod_labels(d) for d in deployments if component(d) == COMPACTOR] + [
        cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
        for cj in cronjobs if component(cj) == COMPACTOR
    ]
    intake = deploy_by_comp.get(INTAKE)
    launcher = deploy_by_comp.get(LAUNCHER)
    guarded = set()
    metrics_only = {comp: port for comp, port in (("ingest-worker", "metrics"), ("monitor", "http")) if comp in deploy_by_comp}
    for np in nps:
        target = np["spec"]["podSelector"].get("matchLabels", {})
        if not target and not np["spec"]["podSelector"].get("matchExpressions"):
            # Every pod of the namespace: only a default deny may select them all.
            if np["spec"].get("ingress"):
                problems.append(f"{name_of(np)}: selects every pod and admits {np['spec']['ingress']}")
            continue
        only = next((c for c, _ in metrics_only.items() if selects(target, pod_labels(deploy_by_comp[c]))), None)
        if only is not None:
            guarded.add(only)
            problems.extend(prometheus_only_problems(np, metrics_only[only]))
            continue
        if launcher and selects(target, pod_labels(launcher)):
            guarded.add(LAUNCHER)
            problems.extend(launcher_ingress_problems(np))
            continue
        if intake and selects(target, pod_labels(intake)):
            guarded.add(INTAKE)
            problems.extend(intake_ingress_problems(np))
            continue
        if relay and selects(target, pod_labels(relay)):
            guarded.add("relay")
            problems.extend(relay_ingress_problems(np))
            continue
        if compactor_pods and all(selects(target, labels) for labels in compactor_pods):
            guarded.add(COMPACTOR)
            problems.extend(prometheus_only_problems(np, "metrics"))
            continue
        if not selects(target, selector_pods):
            problems.append(f"{name_of(np)}: selects none of pool-selector, the relay, the compactor and the intake")
            continue
        guarded.add("pool-selector")
        relay_admitted = False
        for rule in np["spec"].get("ingress", []):
            peers = rule.get("from")
            if not peers:
                problems.append(f"{name_of(np)}: a rule admits every source")
                continue
            for peer in peers:
                ps = peer.get("podSelector", {}).get("matchLabels", {})
                if "ipBlock" in peer:
                    problems.append(f"{name_of(np)}: an ipBlock peer admits addresses")
                elif "namespaceSelector" in peer:
                    if not ps or ps.get("app.kubernetes.io/name") != "prometheus":
                        problems.append(f"{name_of(np)}: a namespace peer other than Prometheus: {peer}")
                elif relay and selects(ps, pod_labels(relay)):
                    if any(selects(ps, pod_labels(d)) for c, d in deploy_by_comp.items() if c != "relay"):
                        problems.append(f"{name_of(np)}: the relay peer also matches other pods")
                    relay_admitted = True
                else:
                    problems.append(f"{name_of(np)}: admits pods other than the relay: {peer}")
        if not relay_admitted:
            problems.append(f"{name_of(np)}: does not admit the relay")
    want_guarded = {"pool-selector", "relay"} | ({COMPACTOR} if compactor_pods else set()) | ({INTAKE} if intake else set()) \
        | ({LAUNCHER} if launcher else set()) | set(metrics_only)
    if nps and guarded != want_guarded:
        problems.append(f"ingress NetworkPolicies guard {sorted(guarded)}, expected every workload {sorted(want_guarded)}")

    # Autoscaling agrees with the monitor's policy.
    policy = next((d for n, d in configmaps.items() if "MIN_REPLICAS" in d), None)
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    sos = by_kind.get("ScaledObject", [])
    if policy is None:
        problems.append("no ConfigMap carries the monitor's policy (MIN_REPLICAS, ...)")
    elif "AMQP_QUEUE" not in policy:
        problems.append(f"the monitor's policy names no AMQP_QUEUE (the variable the monitor and ingest-worker read): {sorted(policy)}")
    worker = deploy_by_comp.get("ingest-worker")
    # The intake's HPA (CPU) is check_intake's; every other HPA is the worker's.
    hpas = [h for h in hpas if intake is None or h["spec"]["scaleTargetRef"]["name"] != intake["metadata"]["name"]]
    for h in hpas:
        spec = h["spec"]
        if worker is None or spec["scaleTargetRef"]["name"] != worker["metadata"]["name"]:
            problems.append(f"{name_of(h)}: does not target the ingest-worker Deployment nor the intake's")
        ext = [m["external"] for m in spec.get("metrics", []) if m["type"] == "External"]
        if not ext or ext[0]["metric"]["name"] != DESIRED_METRIC:
            problems.append(f"{name_of(h)}: does not follow the External metric {DESIRED_METRIC}")
        elif ext[0]["target"] != {"type": "AverageValue", "averageValue": "1"}:
            problems.append(f"{name_of(h)}: target must be AverageValue 1 (desired replicas / 1)")
        if policy and (str(spec["minReplicas"]), str(spec["maxReplicas"])) != (policy["MIN_REPLICAS"], policy["MAX_REPLICAS"]):
            problems.append(f"{name_of(h)}: min/max {spec['minReplicas']}/{spec['maxReplicas']} differ from the monitor's {policy['MIN_REPLICAS']}/{policy['MAX_REPLICAS']}")
    for so in sos:
        spec = so["spec"]
        if worker is None or spec["scaleTargetRef"]["name"] != worker["metadata"]["name"]:
            problems.append(f"{name_of(so)}: does not target the ingest-worker Deployment")
        trig = spec["triggers"][0]
        auths = {o["metadata"]["name"] for o in by_kind.get("TriggerAuthentication", [])}
        if trig.get("authenticationRef", {}).get("name") not in auths:
            problems.append(f"{name_of(so)}: authenticationRef names no rendered TriggerAuthentication")
        if policy:
            want = {"queueName": policy.get("AMQP_QUEUE"), "value": policy["TARGET_BACKLOG_PER_WORKER"], "vhostName": policy["RABBITMQ_VHOST"]}
            got = {k: trig["metadata"].get(k) for k in want}
            if got != want or trig["type"] != "rabbitmq" or trig["metadata"].get("mode") != "QueueLength":
                problems.append(f"{name_of(so)}: trigger {trig['metadata']} differs from the monitor's policy {want}")
            if (str(spec["minReplicaCount"]), str(spec["maxReplicaCount"])) != (policy["MIN_REPLICAS"], policy["MAX_REPLICAS"]):
                problems.append(f"{name_of(so)}: min/max differ from the monitor's")
    if hpas and sos:
        problems.append("both an HPA and a KEDA ScaledObject scale ingest-worker")
    if worker is not None and (hpas or sos) and "replicas" in worker["spec"] and source.startswith("helm"):
        problems.append("ingest-worker sets spec.replicas although an autoscaler owns it")
    r.check(not problems, f"{source}: probes, security, wiring, network policy and autoscaling consistent", "; ".join(problems[:12]))


def prometheus_only_problems(np: dict, port: str) -> list[str]:
    """An ingress policy admitting only Prometheus (a pod selector in a namespace selector), on `port`."""
    problems = []
    rules = np["spec"].get("ingress") or []
    if not rules:
        problems.append(f"{name_of(np)}: admits nothing (Prometheus cannot scrape {port})")
    for rule in rules:
        peers = rule.get("from")
        if not peers or any(
            "ipBlock" in peer or "namespaceSelector" not in peer
            or peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") != "prometheus"
            for peer in peers
        ):
            problems.append(f"{name_of(np)}: admits sources other than Prometheus: {peers}")
        if [p.get("port") for p in rule.get("ports", [])] != [port]:
            problems.append(f"{name_of(np)}: admits ports other than {port}: {rule.get('ports')}")
    return problems


def container_env(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def shard_arg(args: list[str]) -> str | None:
    """The value of --shard in a container's args (`--shard X` or `--shard=X`)."""
    for i, a in enumerate(args):
        if a == "--shard" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--shard="):
            return a.split("=", 1)[1]
    return None


def check_compactor(r: Report, source: str, objs: list[dict]) -> None:
    """The compactor: a Deployment running `--every`, or an Indexed CronJob whose pod I runs
    `--once --shard I/N`, never both; pool-selector's storage settings and credentials; its own account."""
    mine = [o for o in objs if component(o) == COMPACTOR]
    if source in COMPACTOR_DISABLED:
        r.check(not mine, f"{source}: no compactor resources", f"{sorted(name_of(o) for o in mine)}")
        return
    problems: list[str] = []
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    deployments = [o for o in by_kind.get("Deployment", []) if component(o) == COMPACTOR]
    cronjobs = [o for o in by_kind.get("CronJob", []) if component(o) == COMPACTOR]
    if len(deployments) + len(cronjobs) != 1:
        r.fail(f"{source}: the compactor must be one Deployment or one CronJob, got "
               f"{sorted(name_of(o) for o in deployments + cronjobs)}")
        return
    services = [o for o in by_kind.get("Service", []) if component(o) == COMPACTOR]
    monitors = [o for o in by_kind.get("ServiceMonitor", []) if component(o) == COMPACTOR]
    if deployments:
        d = deployments[0]
        mode = "Deployment"
        template = d["spec"]["template"]
        c = template["spec"]["containers"][0]
        args = c.get("args", [])
        every = args[args.index("--every") + 1] if "--every" in args and args.index("--every") + 1 < len(args) else None
        if every is None or not DURATION.match(every):
            problems.append(f"{name_of(d)}: args {args} do not run `--every <positive duration>`")
        if "--once" in args:
            problems.append(f"{name_of(d)}: a Deployment must not run --once (it would exit and restart)")
        if shard_arg(args) not in (None, "0/1"):
            problems.append(f"{name_of(d)}: one replica must take every hour (--shard {shard_arg(args)})")
        if d["spec"].get("replicas", 1) != 1:
            problems.append(f"{name_of(d)}: {d['spec'].get('replicas')} replicas; scale out with shards instead")
        env = container_env(c)
        ports = {p["name"]: str(p["containerPort"]) for p in c.get("ports", [])}
        if ports.get("metrics") != env.get("PORT", {}).get("value", COMPACTOR_PORT):
            problems.append(f"{name_of(d)}: container port metrics {ports.get('metrics')} is not PORT")
        if not services:
            problems.append(f"{name_of(d)}: no Service exposes its /metrics")
        if by_kind.get("ServiceMonitor") and not any(
            selects(sm["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))
            and sm["spec"]["endpoints"][0].get("port") == "metrics"
            for sm in monitors for s in services
        ):
            problems.append(f"{name_of(d)}: no ServiceMonitor scrapes its metrics port")
    else:
        cj = cronjobs[0]
        mode = "CronJob"
        spec = cj["spec"]
        job = spec["jobTemplate"]["spec"]
        template = job["template"]
        c = template["spec"]["containers"][0]
        args = c.get("args", [])
        n = job.get("completions")
        if spec.get("concurrencyPolicy") != "Forbid":
            problems.append(f"{name_of(cj)}: concurrencyPolicy is {spec.get('concurrencyPolicy')}, not Forbid")
        if job.get("completionMode") != "Indexed":
            problems.append(f"{name_of(cj)}: completionMode is {job.get('completionMode')}, not Indexed")
        if not (isinstance(n, int) and n >= 1 and job.get("parallelism") == n):
            problems.append(f"{name_of(cj)}: completions {n} and parallelism {job.get('parallelism')} must be the same N >= 1")
        if "--once" not in args or "--every" in args:
            problems.append(f"{name_of(cj)}: args {args} do not run --once")
        if shard_arg(args) != f"$(JOB_COMPLETION_INDEX)/{n}":
            problems.append(f"{name_of(cj)}: --shard is {shard_arg(args)}, expected $(JOB_COMPLETION_INDEX)/{n}")
        declared = container_env(c).get("JOB_COMPLETION_INDEX")
        if declared and declared.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != \
                "metadata.annotations['batch.kubernetes.io/job-completion-index']":
            problems.append(f"{name_of(cj)}: JOB_COMPLETION_INDEX is declared but not the Job's completion index")
        if template["spec"].get("restartPolicy") not in ("Never", "OnFailure"):
            problems.append(f"{name_of(cj)}: restartPolicy must be Never or OnFailure")
        # `--once` serves nothing: a Service or ServiceMonitor would point at no endpoint.
        if services or monitors:
            problems.append(f"{name_of(cj)}: {sorted(name_of(o) for o in services + monitors)} left for a CronJob that serves no /metrics")

    # Storage: the same ConfigMap and credentials as pool-selector.
    selector = next((o for o in by_kind.get("Deployment", []) if component(o) == "pool-selector"), None)
    if selector is not None:
        sc = selector["spec"]["template"]["spec"]["containers"][0]
        configmaps = {o["metadata"]["name"]: o.get("data", {}) for o in by_kind.get("ConfigMap", [])}
        storage = {ef["configMapRef"]["name"] for ef in sc.get("envFrom", []) if "EVENTS_URL" in configmaps.get(ef["configMapRef"]["name"], {})}
        mine_from = {ef["configMapRef"]["name"] for ef in c.get("envFrom", []) if "configMapRef" in ef}
        if not storage or not storage <= mine_from:
            problems.append(f"compactor {mode}: envFrom {sorted(mine_from)} lacks pool-selector's storage ConfigMap {sorted(storage)}")
        settings = {k: v for name in mine_from for k, v in configmaps.get(name, {}).items()}
        if "SETTLE" not in settings:
            problems.append(f"compactor {mode}: no SETTLE in its ConfigMaps")
        # Its own writer credentials: the same keys as pool-selector's, from a Secret of its own (pool-selector's
        # identity is read only).
        senv, cenv = container_env(sc), container_env(c)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            mine_ref = cenv.get(key, {}).get("valueFrom", {}).get("secretKeyRef", {})
            theirs = senv.get(key, {}).get("valueFrom", {}).get("secretKeyRef", {})
            if not mine_ref or mine_ref.get("key") != theirs.get("key"):
                problems.append(f"compactor {mode}: {key} is not read from a Secret under pool-selector's key {theirs.get('key')}")
            elif mine_ref.get("name") == theirs.get("name"):
                problems.append(f"compactor {mode}: {key} comes from pool-selector's (read-only) Secret {theirs.get('name')}")
        # Its own ServiceAccount: it writes and deletes under the events prefix, pool-selector only reads.
        account = template["spec"].get("serviceAccountName")
        accounts = {o["metadata"]["name"]: o for o in by_kind.get("ServiceAccount", [])}
        if account not in accounts or account == selector["spec"]["template"]["spec"].get("serviceAccountName"):
            problems.append(f"compactor {mode}: serviceAccountName {account} is not a rendered account of its own")
        elif accounts[account].get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{account}: automountServiceAccountToken is not false")
    r.check(not problems, f"{source}: compactor {mode} wired as specified", "; ".join(problems[:10]))


# ---------------------------------------------------------------------------------------------------
# The intake: its objects, and who reaches it (a model of NetworkPolicy ingress semantics)


def policy_types(np: dict) -> list[str]:
    """A NetworkPolicy's policyTypes; when unset, Kubernetes takes Ingress, plus Egress if it has egress rules."""
    spec = np["spec"]
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))


def rule_port_matches(rule_port: dict, name: str, number: int) -> bool:
    """A NetworkPolicyPort against a TCP container port (its name and number); no `port` means every port."""
    if rule_port.get("protocol", "TCP") != "TCP":
        return False
    port = rule_port.get("port")
    if port is None:
        return True
    if isinstance(port, str):
        return port == name
    return port <= number <= rule_port.get("endPort", port)


def peer_admits(peer: dict, source: tuple[dict, dict, bool], ipblocks_admit: bool) -> bool:
    """A NetworkPolicyPeer against a pod (its namespace's labels, its labels, whether it is in the policy's
    namespace). An ipBlock may match any pod's address: it counts as `ipblocks_admit` says (True when
    proving that a pod is refused, False when proving that it is admitted)."""
    ns_labels, labels, same_namespace = source
    if "ipBlock" in peer:
        return ipblocks_admit
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], ns_labels):
            return False
    elif not same_namespace:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], labels)


def ingress_admits(nps: list[dict], target: dict, port_name: str, port: int, source: tuple[dict, dict, bool],
                   ipblocks_admit: bool = False) -> bool:
    """Whether the NetworkPolicies let `source` open a TCP connection to the pods labelled `target` on the
    container port (port_name, port): admitted when no Ingress policy selects those pods, else when a rule
    of one of those that do matches both the port and the source (policies add up)."""
    policies = [np for np in nps if "Ingress" in policy_types(np) and selector_matches(np["spec"].get("podSelector"), target)]
    if not policies:
        return True
    for np in policies:
        for rule in np["spec"].get("ingress") or []:
            ports = rule.get("ports") or []
            if ports and not any(rule_port_matches(p, port_name, port) for p in ports):
                continue
            peers = rule.get("from") or []
            if not peers or any(peer_admits(peer, source, ipblocks_admit) for peer in peers):
                return True
    return False


def intake_ingress_problems(np: dict) -> list[str]:
    """The intake's ingress: producer namespaces (selected by some label or expression, never all of them)
    and Prometheus, on its `http` port only."""
    problems = []
    producers = prometheus = False
    for rule in np["spec"].get("ingress", []):
        peers = rule.get("from")
        ports = [p.get("port") for p in rule.get("ports", [])]
        if not peers:
            problems.append(f"{name_of(np)}: a rule admits every source to the intake")
            continue
        if ports != ["http"]:
            problems.append(f"{name_of(np)}: admits ports {ports}; only the intake's port http")
        for peer in peers:
            ns = peer.get("namespaceSelector")
            if "ipBlock" in peer:
                problems.append(f"{name_of(np)}: an ipBlock peer admits addresses to the intake")
            elif is_prometheus_peer(peer):
                prometheus = True
            elif ns is None and set(peer) == {"podSelector"} and \
                    (peer["podSelector"].get("matchLabels") or {}).get("app.kubernetes.io/name") == LAUNCHER:
                pass  # the launcher posts the outcomes of the jobs it launched
            elif ns is None:
                problems.append(f"{name_of(np)}: admits pods of the platform's own namespace: {peer}")
            elif not (ns.get("matchLabels") or ns.get("matchExpressions")):
                problems.append(f"{name_of(np)}: a namespaceSelector that selects every namespace: {peer}")
            else:
                producers = True
    if not producers:
        problems.append(f"{name_of(np)}: admits no producer namespace")
    if not prometheus:
        problems.append(f"{name_of(np)}: does not admit Prometheus (the intake's /metrics shares its port)")
    return problems


def owner_component(o: dict) -> str | None:
    """The component an object belongs to: what a PDB or NetworkPolicy selects, else its label."""
    if o["kind"] in ("PodDisruptionBudget", "NetworkPolicy"):
        sel = o["spec"].get("selector") or o["spec"].get("podSelector") or {}
        return (sel.get("matchLabels") or {}).get("app.kubernetes.io/name")
    return component(o)


def check_intake(r: Report, source: str, objs: list[dict]) -> None:
    """The intake: a Deployment serving POST /events on `http` (/health, /ready), AMQP_URL and INTAKE_TOKENS
    from Secrets, its request limits from a ConfigMap, no storage access; its Service, ServiceMonitor, PDB
    and CPU-based HPA (owning the replica count); then who reaches it through the NetworkPolicies."""
    mine = [o for o in objs if owner_component(o) == INTAKE]
    if source in INTAKE_DISABLED:
        r.check(not mine, f"{source}: no intake resources", f"{sorted(name_of(o) for o in mine)}")
        return
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    deployments = [o for o in by_kind.get("Deployment", []) if component(o) == INTAKE]
    if len(deployments) != 1:
        r.fail(f"{source}: the intake must be one Deployment, got {sorted(name_of(o) for o in deployments)}")
        return
    d = deployments[0]
    labels = d["spec"]["template"]["metadata"].get("labels", {})
    c = d["spec"]["template"]["spec"]["containers"][0]
    env = container_env(c)
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    configmaps = {o["metadata"]["name"]: o.get("data", {}) or {} for o in by_kind.get("ConfigMap", [])}
    problems: list[str] = []
    if "http" not in ports or env.get("PORT", {}).get("value") != str(ports["http"]):
        problems.append(f"{name_of(d)}: PORT {env.get('PORT', {}).get('value')} is not its http container port {ports.get('http')}")
    for name, key in (("AMQP_URL", "amqp-url"), ("INTAKE_TOKENS", None)):
        ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef")
        if not ref or (key and ref.get("key") != key):
            problems.append(f"{name_of(d)}: {name} is not read from a Secret{f' (key {key})' if key else ''}")
    names = set(env)
    for ef in c.get("envFrom", []):
        names |= set(configmaps.get(ef.get("configMapRef", {}).get("name"), {}))
    if not INTAKE_LIMITS <= names:
        problems.append(f"{name_of(d)}: request limits {sorted(INTAKE_LIMITS - names)} not set (intake-settings)")
    if any(n.startswith("AWS_") or n == "EVENTS_URL" for n in names):
        problems.append(f"{name_of(d)}: has storage settings {sorted(n for n in names if n.startswith('AWS_') or n == 'EVENTS_URL')}; it only publishes")
    services = [sv for sv in by_kind.get("Service", []) if selects(sv["spec"].get("selector", {}), labels)]
    if not any(p.get("targetPort") == "http" for sv in services for p in sv["spec"]["ports"]):
        problems.append(f"{name_of(d)}: no Service exposes its http port")
    if by_kind.get("ServiceMonitor") and not any(
        selects(sm["spec"]["selector"]["matchLabels"], sv["metadata"].get("labels", {})) and sm["spec"]["endpoints"][0].get("port") == "http"
        for sm in by_kind["ServiceMonitor"] for sv in services
    ):
        problems.append(f"{name_of(d)}: no ServiceMonitor scrapes its /metrics (port http)")
    if by_kind.get("PodDisruptionBudget") and not any(
        selects(p["spec"]["selector"]["matchLabels"], labels) for p in by_kind["PodDisruptionBudget"]
    ):
        problems.append(f"{name_of(d)}: no PodDisruptionBudget keeps an intake pod")
    hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", []) if h["spec"]["scaleTargetRef"]["name"] == d["metadata"]["name"]]
    if hpas:
        spec = hpas[0]["spec"]
        cpu = [m["resource"] for m in spec.get("metrics", []) if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
        if len(hpas) > 1 or len(cpu) != 1 or len(spec["metrics"]) != 1:
            problems.append(f"{name_of(hpas[0])}: the intake scales on CPU alone, by one HPA")
        elif cpu[0]["target"].get("type") != "Utilization" or not 1 <= cpu[0]["target"].get("averageUtilization", 0) <= 100:
            problems.append(f"{name_of(hpas[0])}: CPU target {cpu[0]['target']}, expected Utilization 1-100%")
        if not 1 <= spec.get("minReplicas", 1) <= spec["maxReplicas"]:
            problems.append(f"{name_of(hpas[0])}: min/max replicas {spec.get('minReplicas')}/{spec['maxReplicas']}")
        if "replicas" in d["spec"]:
            problems.append(f"{name_of(d)}: sets spec.replicas although its HPA owns the count")
        if not c.get("resources", {}).get("requests", {}).get("cpu"):
            problems.append(f"{name_of(d)}: no CPU request for its HPA's utilisation")
        scaling = f"HPA on CPU ({spec.get('minReplicas', 1)}-{spec['maxReplicas']})"
    else:
        if not d["spec"].get("replicas"):
            problems.append(f"{name_of(d)}: neither an HPA nor a replica count")
        scaling = f"{d['spec'].get('replicas')} replicas"
    r.check(not problems, f"{source}: intake Deployment, Service, ServiceMonitor, PDB and {scaling} wired as specified",
            "; ".join(problems[:8]))

    # Shutdown: a request in flight waits up to AMQP_CONFIRM_TIMEOUT for its confirm; SIGTERM gives requests
    # SHUTDOWN_GRACE (default: the confirm timeout + 5s), after the preStop pause; the pod must get both.
    def seconds(name: str, default: float) -> float:
        value = env.get(name, {}).get("value")
        for ef in c.get("envFrom", []):
            value = value or configmaps.get(ef.get("configMapRef", {}).get("name"), {}).get(name)
        return duration_seconds(value) if value else default
    confirm = seconds("AMQP_CONFIRM_TIMEOUT", 30.0)
    grace = seconds("SHUTDOWN_GRACE", confirm + 5.0)
    pre_stop = (c.get("lifecycle", {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    period = d["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    r.check(pre_stop > 0 and grace > confirm and pre_stop + grace <= period,
            f"{source}: the intake drains before it goes: preStop sleep {pre_stop}s, SHUTDOWN_GRACE {grace:g}s > "
            f"AMQP_CONFIRM_TIMEOUT {confirm:g}s, preStop + grace <= terminationGracePeriodSeconds {period}")

    # Who reaches it. A producer's pod must, Prometheus too; nobody else, and the producer not pool-selector.
    nps = by_kind.get("NetworkPolicy", [])
    if not nps:
        r.check((HELM_VALUES.get(source, {}).get("networkPolicy") or {}).get("enabled") is False,
                f"{source}: no NetworkPolicy rendered (networkPolicy.enabled false): every pod reaches the intake")
        return
    port = ports.get("http", 0)
    selector = next((o for o in deployments_of(objs, "pool-selector")), None)
    relay = next((o for o in deployments_of(objs, "relay")), None)
    problems = []
    if not ingress_admits(nps, labels, "http", port, PRODUCER):
        problems.append(f"a producer pod {PRODUCER[1]} in a namespace {PRODUCER[0]} cannot reach the intake's port {port}")
    if not ingress_admits(nps, labels, "http", port, PROMETHEUS):
        problems.append("Prometheus cannot reach the intake's port (/metrics)")
    if ingress_admits(nps, labels, "http", port, OUTSIDER, ipblocks_admit=True):
        problems.append(f"a pod of a namespace without the producer label {OUTSIDER[0]} reaches the intake")
    if relay is not None and ingress_admits(nps, labels, "http", port,
                                            (PLATFORM_NAMESPACE, relay["spec"]["template"]["metadata"]["labels"], True),
                                            ipblocks_admit=True):
        problems.append("a pod of the platform's own namespace (the relay) reaches the intake")
    if selector is not None:
        sc = selector["spec"]["template"]["spec"]["containers"][0]
        sport = {p.get("name"): p["containerPort"] for p in sc.get("ports", [])}.get("http", 0)
        if ingress_admits(nps, selector["spec"]["template"]["metadata"]["labels"], "http", sport, PRODUCER, ipblocks_admit=True):
            problems.append("the producer pod reaches pool-selector directly")
    r.check(not problems, f"{source}: NetworkPolicies admit a producer namespace's pod and Prometheus to the intake's port "
            f"{port}, and not an unlabelled namespace, the platform's own pods, nor the producer to pool-selector",
            "; ".join(problems))


def launcher_ingress_problems(np: dict) -> list[str]:
    """The launcher's ingress: its clients' namespaces (selected by some label or expression, never all of
    them) and Prometheus, on its `http` port only. POST /launch starts Spark jobs: not open to everyone."""
    problems = []
    clients = prometheus = False
    for rule in np["spec"].get("ingress", []):
        peers = rule.get("from")
        ports = [p.get("port") for p in rule.get("ports", [])]
        if not peers:
            problems.append(f"{name_of(np)}: a rule admits every source to the launcher")
            continue
        if ports != ["http"]:
            problems.append(f"{name_of(np)}: admits ports {ports}; only the launcher's port http")
        for peer in peers:
            ns = peer.get("namespaceSelector")
            if "ipBlock" in peer:
                problems.append(f"{name_of(np)}: an ipBlock peer admits addresses to the launcher")
            elif is_prometheus_peer(peer):
                prometheus = True
            elif ns is None or not (ns.get("matchLabels") or ns.get("matchExpressions")):
                problems.append(f"{name_of(np)}: a peer that is no labelled client namespace: {peer}")
            else:
                clients = True
    if not clients:
        problems.append(f"{name_of(np)}: admits no client namespace")
    if not prometheus:
        problems.append(f"{name_of(np)}: does not admit Prometheus (the launcher's /metrics shares its port)")
    return problems


def launcher_templates() -> dict[str, str]:
    """deploy/launch-templates as the ConfigMap must hold it: every template and job file (not README.md)."""
    return {f.name: f.read_text() for f in sorted(LAUNCHER_TEMPLATES.iterdir())
            if f.is_file() and f.suffix in (".yaml", ".py")}


def check_launcher(r: Report, source: str, objs: list[dict]) -> None:
    """The launcher: its Deployment (BACKEND=kubernetes, port, /health and /ready, INTAKE_TOKEN and REDIS_URL
    from its Secret, RELAY_URL and INTAKE_URL the rendered Services), the templates ConfigMap identical to
    deploy/launch-templates (a), its RBAC limited to SparkApplications and reading pods in SPARK_NAMESPACE
    (b), its Service, ServiceMonitor and PDB; who reaches it, and that it reaches the intake."""
    mine = [o for o in objs if owner_component(o) == LAUNCHER]
    if source in LAUNCHER_DISABLED:
        r.check(not mine, f"{source}: no launcher resources", f"{sorted(name_of(o) for o in mine)}")
        return
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    deployments = deployments_of(objs, LAUNCHER)
    if len(deployments) != 1:
        r.fail(f"{source}: the launcher must be one Deployment, got {sorted(name_of(o) for o in deployments)}")
        return
    d = deployments[0]
    pod = d["spec"]["template"]
    labels = pod["metadata"].get("labels", {})
    c = pod["spec"]["containers"][0]
    env = container_env(c)
    value = {k: v.get("value") for k, v in env.items()}
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    services = by_kind.get("Service", [])
    problems: list[str] = []
    if value.get("BACKEND") != "kubernetes":
        problems.append(f"{name_of(d)}: BACKEND is {value.get('BACKEND')}, not kubernetes")
    if "http" not in ports or value.get("PORT") != str(ports["http"]):
        problems.append(f"{name_of(d)}: PORT {value.get('PORT')} is not its http container port {ports.get('http')}")
    for name, key in (("INTAKE_TOKEN", "intake-token"), ("REDIS_URL", "redis-url")):
        ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef")
        if not ref or ref.get("key") != key:
            problems.append(f"{name_of(d)}: {name} is not read from its Secret (key {key})")
    for name, comp in (("RELAY_URL", "relay"), ("INTAKE_URL", INTAKE)):
        url = urllib.parse.urlparse(value.get(name) or "")
        target = next((dd for dd in deployments_of(objs, comp)), None)
        svc = next((sv for sv in services if sv["metadata"]["name"] == url.hostname), None)
        if target is None or svc is None or not selects(svc["spec"].get("selector", {}), target["spec"]["template"]["metadata"].get("labels", {})):
            problems.append(f"{name_of(d)}: {name} {value.get(name)} is not the {comp} Service")
        elif url.port not in {pp["port"] for pp in svc["spec"]["ports"]}:
            problems.append(f"{name_of(d)}: {name} port {url.port} is not a port of {name_of(svc)}")
    if d["spec"].get("replicas", 1) != 1 or d["spec"].get("strategy", {}).get("type") != "Recreate":
        problems.append(f"{name_of(d)}: must run one replica, recreated (two launchers would watch the same launches)")
    if not any(p.get("targetPort") == "http" for sv in services if selects(sv["spec"].get("selector", {}), labels) for p in sv["spec"]["ports"]):
        problems.append(f"{name_of(d)}: no Service exposes its http port")
    if by_kind.get("ServiceMonitor") and not any(
        selects(sm["spec"]["selector"]["matchLabels"], sv["metadata"].get("labels", {})) and sm["spec"]["endpoints"][0].get("port") == "http"
        for sm in by_kind["ServiceMonitor"] for sv in services if selects(sv["spec"].get("selector", {}), labels)
    ):
        problems.append(f"{name_of(d)}: no ServiceMonitor scrapes its /metrics (port http)")
    if HELM_VALUES.get(source, {}).get("launcher", {}).get("pdb", {}).get("enabled", True) and not any(
        selects(pdb["spec"]["selector"]["matchLabels"], labels) for pdb in by_kind.get("PodDisruptionBudget", [])
    ):
        problems.append(f"{name_of(d)}: no PodDisruptionBudget")
    r.check(not problems, f"{source}: launcher Deployment (BACKEND=kubernetes), Service, ServiceMonitor and PDB wired as specified",
            "; ".join(problems[:8]))

    # (a) The templates: the ConfigMap mounted at LAUNCH_TEMPLATES holds exactly deploy/launch-templates.
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    mounted = [volumes.get(n, {}).get("configMap", {}).get("name") for n, path in mounts.items()
               if path.rstrip("/") == (value.get("LAUNCH_TEMPLATES") or "").rstrip("/")]
    configmaps = {o["metadata"]["name"]: o.get("data", {}) or {} for o in by_kind.get("ConfigMap", [])}
    want = launcher_templates()
    if len(mounted) != 1 or mounted[0] not in configmaps:
        r.fail(f"{source}: LAUNCH_TEMPLATES {value.get('LAUNCH_TEMPLATES')} is not a mounted, rendered ConfigMap ({mounted})")
    else:
        got = configmaps[mounted[0]]
        drift = sorted(set(want) ^ set(got)) + sorted(k for k in set(want) & set(got) if want[k] != got[k])
        r.check(bool(want) and not drift, f"{source}: ConfigMap {mounted[0]} holds exactly deploy/launch-templates ({', '.join(sorted(want))})",
                f"differs in {drift}: copy deploy/launch-templates/*.yaml and *.py to k8s/base/launch-templates/ and "
                "helm/pool-selector-platform/files/launch-templates/")

    # (b) RBAC: one Role in SPARK_NAMESPACE with exactly LAUNCHER_RULES, bound to the launcher's account only.
    # The only other Role is the Spark driver's, in the same namespace (check_spark_jobs).
    problems = []
    namespace = value.get("SPARK_NAMESPACE")
    account = pod["spec"].get("serviceAccountName")
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        if by_kind.get(kind):
            problems.append(f"{kind}s rendered: {[name_of(o) for o in by_kind[kind]]}")
    roles = [o for o in by_kind.get("Role", []) if component(o) == LAUNCHER]
    bindings = [o for o in by_kind.get("RoleBinding", []) if component(o) == LAUNCHER]
    others = [name_of(o) for o in by_kind.get("Role", []) + by_kind.get("RoleBinding", [])
              if component(o) not in (LAUNCHER, "spark-driver")]
    if len(roles) != 1 or len(bindings) != 1 or others:
        problems.append(f"expected one Role and one RoleBinding of the launcher (and the Spark driver's), got "
                        f"{[name_of(o) for o in roles + bindings] + others}")
    for role in roles:
        if role["metadata"].get("namespace") != namespace:
            problems.append(f"{name_of(role)}: namespace {role['metadata'].get('namespace')} is not SPARK_NAMESPACE {namespace}")
        got = role_rules(role, problems)
        if got != LAUNCHER_RULES:
            problems.append(f"{name_of(role)}: rules {sorted((k, sorted(v)) for k, v in got.items())}, expected exactly "
                            f"{sorted((k, sorted(v)) for k, v in LAUNCHER_RULES.items())}")
    for rb in bindings:
        ref = rb.get("roleRef", {})
        subjects = rb.get("subjects", [])
        if rb["metadata"].get("namespace") != namespace or ref.get("kind") != "Role" or \
                ref.get("name") not in {ro["metadata"]["name"] for ro in roles}:
            problems.append(f"{name_of(rb)}: does not bind the launcher's Role in {namespace}")
        platform_ns = d["metadata"].get("namespace", "pool-selector")
        if subjects != [{"kind": "ServiceAccount", "name": account, "namespace": platform_ns}]:
            problems.append(f"{name_of(rb)}: subjects {subjects}, expected the launcher's ServiceAccount {platform_ns}/{account}")
    tokens = [name_of(o) for comp, o, t in workloads(objs) if t["spec"].get("automountServiceAccountToken") is not False and comp != LAUNCHER]
    if tokens:
        problems.append(f"workloads other than the launcher mount an API token: {tokens}")
    r.check(not problems, f"{source}: launcher RBAC: a Role in {namespace} allowing exactly sparkapplications "
            "(get, list, create, delete) and pods (list), no wildcard, no watch, no deletecollection, bound to its account only",
            "; ".join(problems[:6]))

    # Who reaches it, and whether it reaches the intake (the platform namespace's policies).
    platform_ns = d["metadata"].get("namespace")
    nps = [np for np in by_kind.get("NetworkPolicy", []) if np["metadata"].get("namespace") == platform_ns]
    if not nps:
        return
    port = ports.get("http", 0)
    problems = []
    if not ingress_admits(nps, labels, "http", port, LAUNCHER_CLIENT):
        problems.append(f"a client pod in a namespace {LAUNCHER_CLIENT[0]} cannot reach the launcher")
    if not ingress_admits(nps, labels, "http", port, PROMETHEUS):
        problems.append("Prometheus cannot reach the launcher's port (/metrics)")
    if ingress_admits(nps, labels, "http", port, OUTSIDER, ipblocks_admit=True):
        problems.append(f"a pod of a namespace without the client label {OUTSIDER[0]} reaches the launcher")
    intake = next(iter(deployments_of(objs, INTAKE)), None)
    if intake is not None:
        ic = intake["spec"]["template"]["spec"]["containers"][0]
        iport = {p.get("name"): p["containerPort"] for p in ic.get("ports", [])}.get("http", 0)
        if not ingress_admits(nps, intake["spec"]["template"]["metadata"]["labels"], "http", iport, (PLATFORM_NAMESPACE, labels, True)):
            problems.append("the launcher cannot reach the intake (its outcomes)")
    r.check(not problems, f"{source}: NetworkPolicies admit a client namespace's pod and Prometheus to the launcher, not an "
            "unlabelled namespace; the launcher reaches the intake", "; ".join(problems))


def role_rules(role: dict, problems: list[str]) -> dict[tuple[str, str], set[str]]:
    """A Role's verbs per (API group, resource); a wildcard, resource name or non-resource rule is a problem."""
    got: dict[tuple[str, str], set[str]] = {}
    for rule in role.get("rules", []):
        words = rule.get("apiGroups", []) + rule.get("resources", []) + rule.get("verbs", []) + rule.get("resourceNames", [])
        if "*" in words or rule.get("nonResourceURLs"):
            problems.append(f"{name_of(role)}: a wildcard or non-resource rule {rule}")
        for g in rule.get("apiGroups", []):
            for res in rule.get("resources", []):
                got.setdefault((g, res), set()).update(rule.get("verbs", []))
    return got


def launcher_backend_calls() -> dict[tuple[str, str], set[str]]:
    """The verbs of the Kubernetes API calls the launcher's kubernetes backend makes, per (group,
    resource), read from its source (LAUNCHER_BACKEND): every `.<method>(` of a kube-rs Api on
    `self.applications()` (SparkApplications) or on an `Api<Pod>`, and `watcher(` on either."""
    text = re.sub(r"//[^\n]*", "", LAUNCHER_BACKEND.read_text())
    out: dict[tuple[str, str], set[str]] = {}
    apps = ("sparkoperator.k8s.io", "sparkapplications")
    pods = ("", "pods")
    # The names bound to an Api<Pod>: `let pods: Api<Pod> = ...`.
    pod_vars = set(re.findall(r"let\s+(\w+)\s*:\s*Api<Pod>", text))
    # A statement (up to `;` or `?`-chained await) calling a method on the applications Api or a pod Api.
    for m in re.finditer(r"(self\s*\.\s*applications\s*\(\s*\)|\b(\w+)\b)\s*\.\s*(\w+)\s*\(", text):
        receiver, var, method = m.group(1), m.group(2), m.group(3)
        target = apps if receiver.startswith("self") else pods if var in pod_vars else None
        if target is None or method not in KUBE_RS_VERBS:
            continue
        out.setdefault(target, set()).add(KUBE_RS_VERBS[method])
    if re.search(r"\bwatcher\s*\(", text):
        for target in (apps, pods):
            if target in out:
                out[target] |= {"list", "watch"}
    return out


def check_launcher_rbac_source(r: Report) -> None:
    """LAUNCHER_RULES (the Role of every rendering) are exactly the verbs of the calls the launcher's
    kubernetes backend makes, and k8s/README.md says which call needs which verb."""
    calls = launcher_backend_calls()
    r.check(calls == LAUNCHER_RULES, f"the launcher's Role allows exactly the verbs of its backend's kube-rs calls "
            f"({LAUNCHER_BACKEND.relative_to(ROOT)}: {sorted((k[1], sorted(v)) for k, v in calls.items())})",
            f"calls need {sorted((k, sorted(v)) for k, v in calls.items())}, the Role allows "
            f"{sorted((k, sorted(v)) for k, v in LAUNCHER_RULES.items())}: change both Roles (k8s/base/launcher-rbac.yaml, "
            "the chart's templates/launcher.yaml), LAUNCHER_RULES and k8s/README.md together")
    readme = (K8S / "README.md").read_text()
    section_text = readme[readme.find("### The launcher's Role"):]
    section_text = section_text[:section_text.find("\n## ", 1)] if "\n## " in section_text else section_text
    missing = [f"{res} {verb}" for (g, res), verbs in LAUNCHER_RULES.items() for verb in verbs
               if not re.search(rf"\|[^\n]*\b{verb}\b[^\n]*\|[^\n]*{res}", section_text)]
    r.check(bool(section_text) and not missing, "k8s/README.md (\"The launcher's Role\") names the call behind every verb of the Role",
            f"no table row for {missing}")


def find_launcher() -> Path | None:
    """The launcher binary, like scripts/check_env_vars.py finds binaries: TARGET_DIR/{release,debug}
    (TARGET_DIR: $CARGO_TARGET_DIR, else ./target), the more recently built."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    found = [p for p in (target / "release" / LAUNCHER, target / "debug" / LAUNCHER) if p.is_file() and os.access(p, os.X_OK)]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def check_spark_applications(r: Report) -> None:
    """Every SparkApplication the launcher's kubernetes backend would create (`launcher render`: every template
    in every size, for a sample pool) validates against the Spark Operator's CRD schema, and carries the
    placement: executors on the pool (instance-type and zone nodeSelector, spot affinity), the driver on
    on-demand capacity, the launch labels, the size preset."""
    schema = json.loads(SPARK_APPLICATION_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    binary = find_launcher()
    if not r.check(binary is not None, "the launcher binary is built (cargo build -p launcher)",
                   "no launcher in $CARGO_TARGET_DIR/{release,debug}: build first"):
        return
    # `--templates` before the subcommand: a top-level flag (also given as LAUNCH_TEMPLATES) or a global one.
    p = subprocess.run([str(binary), "--templates", str(LAUNCHER_TEMPLATES), "render"], capture_output=True, text=True,
                       timeout=120, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LAUNCH_TEMPLATES": str(LAUNCHER_TEMPLATES)})
    if not r.check(p.returncode == 0, f"{binary} --templates deploy/launch-templates render", p.stderr.strip()[-500:]):
        return
    try:
        apps = json.loads(p.stdout)
    except ValueError as e:
        r.fail(f"launcher render: not JSON: {e}")
        return
    templates = sorted(f.stem for f in LAUNCHER_TEMPLATES.glob("*.yaml"))
    r.check(isinstance(apps, list) and len(apps) == len(templates) * len(SIZES),
            f"launcher render: {len(apps) if isinstance(apps, list) else '?'} SparkApplications "
            f"({len(templates)} templates x {len(SIZES)} sizes)")
    bad = copy.deepcopy(apps[0]) if apps else None
    if bad is not None:
        bad["spec"]["executor"]["nodeSelectr"] = bad["spec"]["executor"].pop("nodeSelector", {})
        r.check(any(True for _ in validator.iter_errors(bad)), "the SparkApplication schema rejects a misspelt field")
    errors: list[str] = []
    for app in apps if isinstance(apps, list) else []:
        name = app.get("metadata", {}).get("name", "?")
        errors.extend(f"{name}: {'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(app))
        errors.extend(f"{name}: {why}" for why in spark_application_problems(app))
    r.check(not errors, f"every rendered SparkApplication validates against {SPARK_APPLICATION_SCHEMA.name} and is placed as "
            "specified (executors: instance type, zone, spot; driver: on-demand; labels; size)", "; ".join(errors[:8]))


def spark_application_problems(app: dict) -> list[str]:
    problems = []
    meta = app.get("metadata", {})
    labels = meta.get("labels", {}) or {}
    pool = labels.get("pool-selector.io/pool-id", "")
    for key in ("pool-selector.io/launch-id", "pool-selector.io/job-id", "pool-selector.io/pool-id", "pool-selector.io/attempt"):
        if not labels.get(key):
            problems.append(f"label {key} missing")
    if labels.get("app.kubernetes.io/managed-by") != "pool-selector-launcher":
        problems.append("label app.kubernetes.io/managed-by is not pool-selector-launcher")
    spec = app.get("spec", {})
    executor, driver = spec.get("executor", {}), spec.get("driver", {})
    selector = executor.get("nodeSelector", {}) or {}
    itype, zone = selector.get("node.kubernetes.io/instance-type"), selector.get("topology.kubernetes.io/zone")
    if not itype or not zone or pool != f"pool-{itype}-{zone}":
        problems.append(f"executor nodeSelector {selector} is not the pool {pool}")

    def capacity_terms(pod: dict) -> list[set[tuple[str, str, tuple[str, ...]]]]:
        terms = (((pod.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
        return [{(e.get("key"), e.get("operator"), tuple(e.get("values", []))) for e in t.get("matchExpressions", [])} for t in terms]

    spot = [{("karpenter.sh/capacity-type", "In", ("spot",))}, {("eks.amazonaws.com/capacityType", "In", ("SPOT",))}]
    on_demand = [{("karpenter.sh/capacity-type", "In", ("on-demand",))}, {("eks.amazonaws.com/capacityType", "In", ("ON_DEMAND",))}]
    for who, pod, want in (("executor", executor, spot), ("driver", driver, on_demand)):
        terms = capacity_terms(pod)
        # Terms are ORed: each must require one of the two capacity labels (Karpenter's or EKS's), both covered.
        if not all(any(w <= t for w in want) for t in terms) or not all(any(w <= t for t in terms) for w in want):
            problems.append(f"{who} node affinity {terms} is not {'spot' if want is spot else 'on-demand'} capacity (Karpenter or EKS)")
    if (driver.get("nodeSelector") or {}).get("node.kubernetes.io/instance-type"):
        problems.append("the driver is pinned to the spot pool's instance type")
    sizes = {(driver.get("cores"), driver.get("memory"), executor.get("cores"), executor.get("memory"), executor.get("instances"))}
    presets = {(d[0], d[1], e[0], e[1], e[2]) for d, e in SIZES.values()}
    if not sizes <= presets:
        problems.append(f"resources {sizes} are none of the size presets")
    if (spec.get("restartPolicy") or {}).get("type") != "Never":
        problems.append("restartPolicy is not Never (the launcher retries on another pool)")
    return problems


def deployments_of(objs: list[dict], comp: str) -> list[dict]:
    return [o for o in objs if o["kind"] == "Deployment" and component(o) == comp]


# ---------------------------------------------------------------------------------------------------
# Hardening: service accounts, Secrets, pool-selector's access, egress, image digests, the relay's admin
# port, the IAM policies


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against pod labels; {} selects every pod."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key, object()) in values) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def workloads(objs: list[dict]) -> list[tuple[str, dict, dict]]:
    """(component, owner, pod template) of every Deployment and CronJob."""
    out = []
    for o in objs:
        if o["kind"] == "Deployment":
            out.append((component(o), o, o["spec"]["template"]))
        elif o["kind"] == "CronJob":
            out.append((component(o), o, o["spec"]["jobTemplate"]["spec"]["template"]))
    return out


def secret_refs(pod: dict) -> set[str]:
    """Every Secret a pod reads: env secretKeyRef, envFrom secretRef, secret and projected volumes."""
    out = set()
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                out.add(ref.get("name"))
        for ef in c.get("envFrom", []):
            if "secretRef" in ef:
                out.add(ef["secretRef"].get("name"))
    for v in pod.get("volumes", []):
        if "secret" in v:
            out.add(v["secret"].get("secretName"))
        for src in v.get("projected", {}).get("sources", []):
            if "secret" in src:
                out.add(src["secret"].get("name"))
    return out


def is_prometheus_peer(peer: dict) -> bool:
    labels = peer.get("podSelector", {}).get("matchLabels", {})
    return "ipBlock" not in peer and "namespaceSelector" in peer and all(labels.get(k) == v for k, v in PROMETHEUS_PEER.items())


def relay_ingress_problems(np: dict) -> list[str]:
    """The relay's ingress: everyone may reach its public port `http`, only Prometheus its `admin` port."""
    problems = []
    admin_admitted = False
    for rule in np["spec"].get("ingress", []):
        ports = [p.get("port") for p in rule.get("ports", [])]
        peers = rule.get("from")
        if not ports:
            problems.append(f"{name_of(np)}: a rule admits {'everyone' if not peers else peers} to every port of the relay")
        elif not peers and ports != ["http"]:
            problems.append(f"{name_of(np)}: admits everyone to ports {ports}; only the public port http may be open to all")
        elif peers and "admin" in ports:
            if all(is_prometheus_peer(p) for p in peers):
                admin_admitted = True
            else:
                problems.append(f"{name_of(np)}: admits sources other than Prometheus to the admin port: {peers}")
        if any(isinstance(p, int) for p in ports):
            problems.append(f"{name_of(np)}: numeric ports {ports}; name them (http, admin) so the admin port cannot slip in")
    if not admin_admitted:
        problems.append(f"{name_of(np)}: does not admit Prometheus to the relay's admin port")
    return problems


def endpoint_port(url: str) -> int:
    """The TCP port an S3 endpoint URL is reached on (AWS itself when empty: HTTPS)."""
    if not url:
        return 443
    u = urllib.parse.urlparse(url)
    return u.port or (80 if u.scheme == "http" else 443)


def prefix_length(cidr: str) -> int:
    """The prefix length of an IPv4 or IPv6 CIDR (0 for a malformed one: as wide as it gets)."""
    import ipaddress
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen
    except ValueError:
        return 0


def kube_api_block_problems(api_rules: list[dict]) -> list[str]:
    """The Kubernetes API server's egress: ipBlocks of its endpoints, each no wider than /KUBE_API_MIN_PREFIX,
    without exceptions (a private range as a whole, or 0.0.0.0/0 minus something, is not the API server)."""
    problems = []
    blocks = [peer["ipBlock"] for rule in api_rules for peer in rule.get("to") or []]
    if not blocks:
        problems.append("no ipBlock names the Kubernetes API server")
    for b in blocks:
        if prefix_length(b.get("cidr", "")) < KUBE_API_MIN_PREFIX or b.get("except"):
            problems.append(f"the API server ipBlock {b} is wider than a /{KUBE_API_MIN_PREFIX} (name its endpoints' addresses)")
    return problems


def storage_egress_problems(comp: str, endpoint: str, rules: list[tuple[dict, dict]]) -> list[str]:
    """Storage egress names the endpoint when the configuration names one (AWS_ENDPOINT_URL): an in-cluster
    server by its namespace and pods (both selectors non-empty), or an ipBlock of its address (/16 or
    narrower, no exceptions). Without an endpoint (AWS's public S3, which has no fixed addresses), HTTPS
    outside the private and link-local ranges, or narrower ipBlocks (a VPC endpoint's)."""
    port = endpoint_port(endpoint)
    problems = []
    peers = [peer for np, rule in rules if port in [p.get("port") for p in rule.get("ports", []) or []]
             for peer in rule.get("to") or []]
    if not peers:
        return [f"{comp}: no egress rule reaches the storage port {port}"]
    outside = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}
    for peer in peers:
        block = peer.get("ipBlock")
        if block is not None:
            wide = prefix_length(block.get("cidr", "")) < 16
            if endpoint and (wide or block.get("except")):
                problems.append(f"{comp}: storage egress to {block} although AWS_ENDPOINT_URL names {endpoint}: name that endpoint")
            elif not endpoint and wide and not outside <= set(block.get("except") or []):
                problems.append(f"{comp}: storage egress to {block} reaches the private or link-local ranges")
            continue
        ns, pods = peer.get("namespaceSelector"), peer.get("podSelector")
        named = lambda s: bool(s) and bool(s.get("matchLabels") or s.get("matchExpressions"))  # noqa: E731
        if not endpoint:
            problems.append(f"{comp}: storage egress to pods {peer} although no AWS_ENDPOINT_URL names an in-cluster server")
        elif not (named(ns) and named(pods)) and not (ns is None and named(pods)):
            problems.append(f"{comp}: storage egress to {peer}: name the S3 server's namespace and pods")
    return problems


def check_hardening(r: Report, source: str, objs: list[dict]) -> None:
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    loads = workloads(objs)
    configmaps = {o["metadata"]["name"]: o.get("data", {}) or {} for o in by_kind.get("ConfigMap", [])}

    # 1. A ServiceAccount per service, no token.
    accounts = {o["metadata"]["name"]: o for o in by_kind.get("ServiceAccount", [])}
    problems: list[str] = []
    owner_of: dict[str, str] = {}
    for comp, owner, t in loads:
        spec = t["spec"]
        sa = spec.get("serviceAccountName")
        if not sa or sa == "default":
            problems.append(f"{name_of(owner)}: runs as the namespace's default ServiceAccount")
            continue
        if sa not in accounts:
            problems.append(f"{name_of(owner)}: ServiceAccount {sa} is not rendered")
            continue
        if accounts[sa].get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{sa}: automountServiceAccountToken is not false")
        if comp == LAUNCHER:
            if spec.get("automountServiceAccountToken") is not True:
                problems.append(f"{name_of(owner)}: the launcher mounts no API token")
        elif spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name_of(owner)}: automountServiceAccountToken is not false")
        if component(accounts[sa]) != comp:
            problems.append(f"ServiceAccount/{sa}: labelled {component(accounts[sa])}, used by {comp}")
        if owner_of.setdefault(sa, comp) != comp:
            problems.append(f"ServiceAccount/{sa}: shared by {owner_of[sa]} and {comp}")
    r.check(bool(loads) and not problems,
            f"{source}: each of {len(loads)} Deployments/CronJobs runs as a ServiceAccount of its own, without a token "
            "(but the launcher's pod)",
            "; ".join(problems[:8]))

    # 2. No Secret read by two services, but the rollup signing key's (the compactor and pool-selector must
    # hold the same key; check_rollup_signing).
    users: dict[str, set[str]] = {}
    for comp, owner, t in loads:
        for secret in secret_refs(t["spec"]):
            users.setdefault(secret, set()).add(comp)
    rollup_secret = rollup_secret_name(source)
    shared = {s: sorted(c) for s, c in users.items() if len(c) > 1 and not (s == rollup_secret and c <= ROLLUP_HOLDERS)}
    r.check(bool(users) and not shared,
            f"{source}: no Secret is read by two services ({len(users)} Secrets, one per service; {rollup_secret} only by "
            "the compactor and pool-selector)", f"shared: {shared}")

    # 3. pool-selector: S3 read credentials only; no AMQP/RabbitMQ setting or credential, no intake setting
    # (POST /events is the intake's).
    problems = []
    selector_loads = [(o, t) for comp, o, t in loads if comp == "pool-selector"]
    for owner, t in selector_loads:
        for c in t["spec"]["containers"]:
            names = set(container_env(c))
            for ef in c.get("envFrom", []):
                if "configMapRef" in ef:
                    names |= {ef.get("prefix", "") + k for k in configmaps.get(ef["configMapRef"]["name"], {})}
                else:
                    problems.append(f"{name_of(owner)}: envFrom {ef}: keys that cannot be checked")
            bad = sorted(n for n in names if n.startswith(NOT_FOR_SELECTOR))
            if bad:
                problems.append(f"{name_of(owner)}: sets {bad}")
            allowed = {"aws-access-key-id", "aws-secret-access-key", ROLLUP_SECRET_KEY}
            keys = {e["valueFrom"]["secretKeyRef"].get("key") for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
            if not keys <= allowed:
                problems.append(f"{name_of(owner)}: reads Secret keys {sorted(keys - allowed)}")
    r.check(bool(selector_loads) and not problems,
            f"{source}: pool-selector reads only S3 credentials and the rollup signing key (no "
            f"{'/'.join(p + '*' for p in NOT_FOR_SELECTOR)} setting, no other Secret key)",
            "; ".join(problems[:6]))

    # 4. Images: `repo@sha256:...` exactly where a digest is set.
    problems = []
    pinned = by_tag = 0
    values = HELM_VALUES.get(source, {})
    for comp, owner, t in loads:
        for c in t["spec"]["containers"]:
            image = c["image"]
            if source.startswith("helm:"):
                want = ((values.get(VALUES_KEY.get(comp, ""), {}) or {}).get("image", {}) or {}).get("digest")
            else:
                want = None
            if source in PINNED and not DIGEST.search(image):
                problems.append(f"{name_of(owner)}: image {image} is not pinned by digest")
            elif want and image != image.split("@")[0] + "@" + want:
                problems.append(f"{name_of(owner)}: image {image}, expected <repository>@{want}")
            elif want or source in PINNED:
                if ":" in image.split("@")[0].rsplit("/", 1)[-1]:
                    problems.append(f"{name_of(owner)}: image {image} has both a tag and a digest")
                pinned += 1
            elif "@" in image or ":" not in image.rsplit("/", 1)[-1]:
                problems.append(f"{name_of(owner)}: image {image}: no digest set, so it must be <repository>:<tag>")
            else:
                by_tag += 1
    r.check(not problems, f"{source}: images by digest exactly where one is set ({pinned} by digest, {by_tag} by tag)",
            "; ".join(problems[:6]))

    # 5. The relay: /metrics and /docs on the admin port only; the public Service leaves it out; the
    # ServiceMonitor scrapes it; only Prometheus reaches it (ingress: consistency()).
    problems = []
    relay = next(((o, t) for comp, o, t in loads if comp == "relay"), None)
    if relay is None:
        problems.append("no relay Deployment")
    else:
        owner, t = relay
        c = t["spec"]["containers"][0]
        cports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        env = {k: v.get("value") for k, v in container_env(c).items()}
        admin, public = cports.get("admin"), cports.get("http")
        if admin is None or public is None or admin == public:
            problems.append(f"{name_of(owner)}: container ports {cports}: expected distinct http and admin")
        if env.get("ADMIN_PORT") != str(admin):
            problems.append(f"{name_of(owner)}: ADMIN_PORT {env.get('ADMIN_PORT')} is not the admin container port {admin}")
        if env.get("PORT") != str(public):
            problems.append(f"{name_of(owner)}: PORT {env.get('PORT')} is not the http container port {public}")
        labels = t["metadata"].get("labels", {})
        services = [s for s in by_kind.get("Service", []) if selects(s["spec"].get("selector", {}), labels)]

        def target(p: dict) -> Any:
            tp = p.get("targetPort", p["port"])
            return cports.get(tp) if isinstance(tp, str) else tp

        public_svcs = [s for s in services if s["spec"].get("clusterIP") != "None"]
        if not any(target(p) == public for s in public_svcs for p in s["spec"]["ports"]):
            problems.append("no public Service exposes the relay's http port")
        for s in public_svcs:
            if any(target(p) == admin or p["port"] == admin for p in s["spec"]["ports"]):
                problems.append(f"{name_of(s)}: the public Service exposes the admin port {admin}")
        monitors = [sm for sm in by_kind.get("ServiceMonitor", [])
                    if any(selects(sm["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {})) for s in services)]
        if by_kind.get("ServiceMonitor") and not monitors:
            problems.append("no ServiceMonitor scrapes the relay")
        for sm in monitors:
            for s in services:
                if not selects(sm["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {})):
                    continue
                by_name = {p.get("name"): p for p in s["spec"]["ports"]}
                for ep in sm["spec"]["endpoints"]:
                    p = by_name.get(ep.get("port"))
                    if p is None or target(p) != admin:
                        problems.append(f"{name_of(sm)}: scrapes {name_of(s)} port {ep.get('port')}, not the relay's admin port")
    r.check(not problems, f"{source}: relay /metrics and /docs on ADMIN_PORT only: public Service without it, scraped there",
            "; ".join(problems[:6]))

    # 6. Egress: denied by default, DNS for every pod, each service its dependencies' ports and nothing else.
    all_nps = by_kind.get("NetworkPolicy", [])
    if not all_nps:
        r.check((values.get("networkPolicy") or {}).get("enabled") is False,
                f"{source}: no NetworkPolicy rendered (networkPolicy.enabled false)")
        return
    egress_nps = [np for np in all_nps if "Egress" in np["spec"].get("policyTypes", [])]
    problems = []
    if not any(np["spec"].get("podSelector") in ({}, None) and not np["spec"].get("egress") for np in egress_nps):
        problems.append("no default-deny egress policy (podSelector {}, policyTypes [Egress], no rule)")
    pod_ports = {comp: {p.get("name"): p["containerPort"] for c in t["spec"]["containers"] for p in c.get("ports", [])}
                 for comp, o, t in loads}
    selector_pods = next((t["metadata"].get("labels", {}) for comp, o, t in loads if comp == "pool-selector"), None)
    summary = []
    for comp, owner, t in loads:
        labels = t["metadata"].get("labels", {})
        rules = [(np, rule) for np in egress_nps if selector_matches(np["spec"].get("podSelector"), labels)
                 for rule in np["spec"].get("egress", []) or []]
        dns = set()
        allowed: set[int] = set()
        for np, rule in rules:
            if not rule.get("to"):
                problems.append(f"{name_of(np)}: a rule lets {comp} reach every destination")
            if not rule.get("ports"):
                problems.append(f"{name_of(np)}: a rule lets {comp} reach every port")
            for p in rule.get("ports", []) or []:
                port, proto = p.get("port"), p.get("protocol", "TCP")
                if not isinstance(port, int) or "endPort" in p:
                    problems.append(f"{name_of(np)}: egress port {port} (a name or a range) for {comp}")
                elif port == 53:
                    dns.add(proto)
                elif proto != "TCP":
                    problems.append(f"{name_of(np)}: {proto} {port} for {comp}")
                else:
                    allowed.add(port)
            if any(p.get("port") == 53 for p in rule.get("ports", []) or []) and not all(
                    "namespaceSelector" in peer and "podSelector" in peer for peer in rule.get("to") or [{}]):
                problems.append(f"{name_of(np)}: DNS allowed to more than the cluster DNS pods: {rule.get('to')}")
        if dns != {"UDP", "TCP"}:
            problems.append(f"{comp}: DNS (UDP and TCP 53) not allowed (got {sorted(dns)})")
        storage_cm = next((configmaps[ef["configMapRef"]["name"]] for c in t["spec"]["containers"] for ef in c.get("envFrom", [])
                           if "AWS_ENDPOINT_URL" in configmaps.get(ef.get("configMapRef", {}).get("name"), {})), None)
        want: set[int] = set()
        for need in EGRESS_NEEDS.get(comp, set()):
            if need == "storage":
                if storage_cm is None:
                    problems.append(f"{comp}: reads no storage ConfigMap (AWS_ENDPOINT_URL)")
                else:
                    endpoint = storage_cm.get("AWS_ENDPOINT_URL", "")
                    want.add(endpoint_port(endpoint))
                    problems.extend(storage_egress_problems(comp, endpoint, rules))
            elif need == "amqp":
                want |= AMQP_PORTS
            elif need == "management":
                want |= MANAGEMENT_PORTS
            elif need == "redis":
                want |= REDIS_PORTS
            elif need in ("relay", "intake"):
                # The launcher: exactly that service's pods on its http port.
                peer_labels = next((t2["metadata"].get("labels", {}) for c2, o2, t2 in loads if c2 == need), None)
                port = pod_ports.get(need, {}).get("http")
                want.add(port)
                if peer_labels is None or not any(
                        port in [p.get("port") for p in rule.get("ports", []) or []]
                        and all(set(peer) == {"podSelector"} and selector_matches(peer["podSelector"], peer_labels)
                                for peer in rule.get("to") or [{}])
                        for np, rule in rules):
                    problems.append(f"{comp}: no rule allows exactly the {need}'s pods on its port {port}")
            elif need == "kubeapi":
                # The API server's endpoints: addresses (ipBlocks, each a /24 or narrower: never the private
                # ranges as a whole) on 443/6443 only.
                api_rules = [rule for np, rule in rules if rule.get("to") and all("ipBlock" in peer for peer in rule["to"])]
                api = {p.get("port") for rule in api_rules for p in rule.get("ports", []) or []}
                if not api or not api <= KUBE_API_PORTS:
                    problems.append(f"{comp}: Kubernetes API egress on {sorted(api)}, expected ipBlocks on some of {sorted(KUBE_API_PORTS)}")
                problems.extend(f"{comp}: {why}" for why in kube_api_block_problems(api_rules))
                want |= api
            elif need == "upstream":
                up = pod_ports.get("pool-selector", {}).get("http")
                want.add(up)
                ok = selector_pods is not None and any(
                    up in [p.get("port") for p in rule.get("ports", []) or []]
                    and all(set(peer) == {"podSelector"} and selector_matches(peer["podSelector"], selector_pods)
                            for peer in rule.get("to") or [{}])
                    for np, rule in rules)
                if not ok:
                    problems.append(f"{comp}: no rule allows exactly pool-selector's pods on its port {up}")
        if allowed != want:
            problems.append(f"{comp}: egress to TCP {sorted(allowed)}, expected {sorted(want)}")
        summary.append(f"{comp} {sorted(allowed)}")
    r.check(not problems, f"{source}: egress denied by default; DNS for all; only each service's dependencies "
            f"({'; '.join(sorted(set(summary)))})", "; ".join(problems[:8]))


# ---------------------------------------------------------------------------------------------------
# Namespaces: Pod Security admission, default deny, the Spark jobs namespace; zone spread; alerts; the
# dashboard ConfigMap


def rollup_secret_name(source: str) -> str:
    """The Secret holding ROLLUP_HMAC_KEY in a rendering (the chart: credentials.rollupSigning.existingSecret)."""
    values = HELM_VALUES.get(source, {}) if source.startswith("helm:") else {}
    return ((values.get("credentials") or {}).get("rollupSigning") or {}).get("existingSecret") or ROLLUP_SECRET


def rollup_secret_key(source: str) -> str:
    """The key of ROLLUP_HMAC_KEY in its Secret (the chart: credentials.keys.rollupHmacKey)."""
    values = HELM_VALUES.get(source, {}) if source.startswith("helm:") else {}
    return ((values.get("credentials") or {}).get("keys") or {}).get("rollupHmacKey") or ROLLUP_SECRET_KEY


def check_rollup_signing(r: Report, source: str, objs: list[dict]) -> None:
    """The compactor (Deployment or CronJob) and pool-selector read ROLLUP_HMAC_KEY from the same Secret key
    (required, never inline), so what one signs the other accepts; no other workload reads that Secret."""
    want = (rollup_secret_name(source), rollup_secret_key(source))
    problems: list[str] = []
    refs: dict[str, set[tuple[str, str]]] = {}
    for comp, owner, t in workloads(objs):
        spec = t["spec"]
        if comp in ROLLUP_HOLDERS:
            for c in spec["containers"]:
                e = container_env(c).get(ROLLUP_ENV)
                ref = (e or {}).get("valueFrom", {}).get("secretKeyRef")
                if not ref:
                    problems.append(f"{name_of(owner)} container {c['name']}: {ROLLUP_ENV} "
                                    f"{'set inline' if e else 'not set'}, not from a Secret")
                    continue
                if ref.get("optional"):
                    problems.append(f"{name_of(owner)}: {ROLLUP_ENV} is optional (a missing Secret would run unsigned)")
                refs.setdefault(comp, set()).add((ref.get("name"), ref.get("key")))
        else:
            for c in spec["containers"] + spec.get("initContainers", []):
                if ROLLUP_ENV in container_env(c):
                    problems.append(f"{name_of(owner)}: {comp} gets {ROLLUP_ENV}")
            if want[0] in secret_refs(spec):
                problems.append(f"{name_of(owner)}: {comp} reads the Secret {want[0]}")
    expected = {"pool-selector"} | (set() if source in COMPACTOR_DISABLED else {"compactor"})
    if set(refs) != expected:
        problems.append(f"{ROLLUP_ENV} from a Secret on {sorted(refs)}, expected {sorted(expected)}")
    got = set().union(*refs.values()) if refs else set()
    if got and got != {want}:
        problems.append(f"read from {sorted(got)}, expected only {want[0]}/{want[1]}")
    kinds = sorted({f"{o['kind']}/{comp}" for comp, o, _ in workloads(objs) if comp in ROLLUP_HOLDERS})
    r.check(not problems, f"{source}: {' and '.join(kinds)} read {ROLLUP_ENV} from the same Secret key {want[0]}/{want[1]}; "
            "no other workload reads it", "; ".join(problems[:6]))


def platform_namespace(objs: list[dict]) -> str | None:
    """The namespace the platform's workloads are rendered into (None: the one the rendering is applied to,
    as for k8s/base and the Helm chart)."""
    return next((o["metadata"].get("namespace") for o in objs if o["kind"] in ("Deployment", "CronJob")), None)


def platform_objects(objs: list[dict]) -> list[dict]:
    """The objects of the platform's own namespace (not the Spark jobs namespace's, not Namespaces)."""
    ns = platform_namespace(objs)
    return [o for o in objs if o["kind"] != "Namespace" and o["metadata"].get("namespace") == ns]


def spark_namespace(source: str, objs: list[dict]) -> str:
    """The Spark jobs namespace of a rendering: the launcher's SPARK_NAMESPACE, else the chart's value."""
    for d in deployments_of(objs, LAUNCHER):
        for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if e["name"] == "SPARK_NAMESPACE":
                return e.get("value", "")
    return ((HELM_VALUES.get(source, {}) or {}).get("sparkJobs") or {}).get("namespace") or SPARK_NAMESPACE_DEFAULT


def restricted_pod_problems(where: str, pod: dict) -> list[str]:
    """What the `restricted` Pod Security profile refuses in a pod spec (a model of its checks: host
    namespaces and ports, privileged, capabilities, privilege escalation, non-root, seccomp, volume types)."""
    problems = []
    psc = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            problems.append(f"{where}: {key}")
    for v in pod.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= PSA_VOLUMES:
            problems.append(f"{where}: volume {v.get('name')} of type {sorted(kinds - PSA_VOLUMES)}")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        sc = c.get("securityContext") or {}
        cw = f"{where}/{c.get('name')}"
        if sc.get("privileged"):
            problems.append(f"{cw}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cw}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []) or set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{cw}: capabilities {caps} (drop ALL, add at most NET_BIND_SERVICE)")
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
            problems.append(f"{cw}: runAsNonRoot is not true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            problems.append(f"{cw}: runAsUser 0")
        if ((sc.get("seccompProfile") or {}).get("type") or pod_seccomp) not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{cw}: no RuntimeDefault (or Localhost) seccomp profile")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            problems.append(f"{cw}: a hostPort")
    return problems


def default_deny_problems(nps: list[dict], namespace: str | None, egress: bool) -> list[str]:
    """A namespace's default deny: policies selecting every pod that, together, deny ingress (and egress when
    `egress`) without a rule; and no policy of the namespace opens every pod to every peer."""
    mine = [np for np in nps if np["metadata"].get("namespace") == namespace]
    everyone = [np for np in mine if not (np["spec"].get("podSelector") or {}).get("matchLabels")
                and not (np["spec"].get("podSelector") or {}).get("matchExpressions")]
    denied = {ty for np in everyone for ty in policy_types(np)
              if not np["spec"].get("ingress" if ty == "Ingress" else "egress")}
    want = {"Ingress", "Egress"} if egress else {"Ingress"}
    problems = [] if want <= denied else [f"namespace {namespace or '(the platform)'}: no default deny for {sorted(want - denied)}"]
    return problems


def check_namespaces(r: Report, source: str, objs: list[dict]) -> None:
    """Every namespace the rendering creates carries the Pod Security labels (enforce, audit and warn
    `restricted`); every pod of the rendering meets `restricted` (so the platform's namespace can carry them
    too); every namespace it deploys into (the platform's and the Spark jobs namespace) has a default deny
    for ingress and egress."""
    created = [o for o in objs if o["kind"] == "Namespace"]
    problems = [f"Namespace/{o['metadata']['name']}: labels {({k: (o['metadata'].get('labels') or {}).get(k) for k in PSA_LABELS})}"
                for o in created if any((o["metadata"].get("labels") or {}).get(k) != v for k, v in PSA_LABELS.items())]
    r.check(not problems, f"{source}: every Namespace it creates ({[o['metadata']['name'] for o in created]}) enforces, "
            "audits and warns Pod Security `restricted`", "; ".join(problems))
    problems = []
    for comp, owner, t in workloads(objs):
        problems.extend(restricted_pod_problems(name_of(owner), t["spec"]))
    r.check(bool(workloads(objs)) and not problems, f"{source}: every pod meets the Pod Security `restricted` profile",
            "; ".join(problems[:8]))
    values = HELM_VALUES.get(source, {}) or {}
    if (values.get("networkPolicy") or {}).get("enabled") is False:
        r.check(not [o for o in objs if o["kind"] == "NetworkPolicy"], f"{source}: networkPolicy.enabled false: no NetworkPolicy")
        return
    nps = [o for o in objs if o["kind"] == "NetworkPolicy"]
    egress = ((values.get("networkPolicy") or {}).get("egress") or {}).get("enabled") is not False
    # The platform's namespace and every namespace the rendering creates (the Spark jobs namespace, unless
    # the values say it exists already and is looked after elsewhere).
    namespaces = {platform_namespace(objs)} | {o["metadata"]["name"] for o in created}
    problems = [p for ns in sorted(namespaces, key=str) for p in default_deny_problems(nps, ns, egress)]
    r.check(not problems, f"{source}: a default deny ({'ingress and egress' if egress else 'ingress'}) in every namespace it "
            f"deploys into ({sorted(ns or '(the platform)' for ns in namespaces)})", "; ".join(problems))


def check_spark_jobs(r: Report, source: str, objs: list[dict]) -> None:
    """The Spark jobs namespace: created (Pod Security `restricted`, an event producer) unless the values say
    it exists; the Spark driver's ServiceAccount (the launcher's SPARK_SERVICE_ACCOUNT) with exactly the
    driver's Role, bound to it alone; the launcher's Role there (check_launcher); its NetworkPolicies:
    default deny, the namespace's pods among themselves, DNS, and the drivers to the API server (the same
    addresses as the launcher's) and to the intake; a driver there reaches the intake."""
    values = HELM_VALUES.get(source, {}) or {}
    create = (values.get("sparkJobs") or {}).get("create", True)
    ns = spark_namespace(source, objs)
    mine = [o for o in objs if o["metadata"].get("namespace") == ns or (o["kind"] == "Namespace" and o["metadata"]["name"] == ns)]
    if not create:
        r.check(not any(o["kind"] in ("Namespace", "ServiceAccount", "NetworkPolicy") for o in mine),
                f"{source}: sparkJobs.create false: only the launcher's Role and RoleBinding in {ns}",
                f"{sorted(name_of(o) for o in mine)}")
        return
    problems: list[str] = []
    namespace = next((o for o in mine if o["kind"] == "Namespace"), None)
    # The API server adds kubernetes.io/metadata.name to every namespace.
    ns_labels = {**((namespace or {}).get("metadata", {}).get("labels") or {}), "kubernetes.io/metadata.name": ns}
    if namespace is None:
        problems.append(f"no Namespace {ns}")
    elif ns_labels.get("pool-selector.io/event-producer") != "true":
        problems.append(f"Namespace/{ns} is not labelled pool-selector.io/event-producer=true (its drivers post events)")
    launcher = next(iter(deployments_of(objs, LAUNCHER)), None)
    account = SPARK_DRIVER_ACCOUNT
    if launcher is not None:
        env = container_env(launcher["spec"]["template"]["spec"]["containers"][0])
        account = env.get("SPARK_SERVICE_ACCOUNT", {}).get("value")
    accounts = [o for o in mine if o["kind"] == "ServiceAccount"]
    if [a["metadata"]["name"] for a in accounts] != [account]:
        problems.append(f"ServiceAccounts {[a['metadata']['name'] for a in accounts]} in {ns}, expected the driver's {account}")
    roles = [o for o in mine if o["kind"] == "Role" and component(o) != LAUNCHER]
    bindings = [o for o in mine if o["kind"] == "RoleBinding" and component(o) != LAUNCHER]
    if len(roles) != 1 or len(bindings) != 1:
        problems.append(f"expected the Spark driver's Role and RoleBinding in {ns}, got {[name_of(o) for o in roles + bindings]}")
    for role in roles:
        got = role_rules(role, problems)
        if got != SPARK_DRIVER_RULES:
            problems.append(f"{name_of(role)}: rules {sorted((k, sorted(v)) for k, v in got.items())}, expected the driver's "
                            f"{sorted((k, sorted(v)) for k, v in SPARK_DRIVER_RULES.items())}")
    for rb in bindings:
        if rb.get("roleRef", {}).get("name") not in {ro["metadata"]["name"] for ro in roles} or \
                rb.get("subjects") != [{"kind": "ServiceAccount", "name": account, "namespace": ns}]:
            problems.append(f"{name_of(rb)}: binds {rb.get('roleRef')} to {rb.get('subjects')}, expected the driver's Role to {ns}/{account}")
    r.check(not problems, f"{source}: Spark jobs namespace {ns}: created, an event producer; the driver's account {account} "
            "with exactly pods, services, configmaps and persistentvolumeclaims, bound to it alone", "; ".join(problems[:6]))

    if (values.get("networkPolicy") or {}).get("enabled") is False:
        return
    nps = [o for o in mine if o["kind"] == "NetworkPolicy"]
    platform = platform_objects(objs)
    platform_nps = [o for o in platform if o["kind"] == "NetworkPolicy"]
    problems = []
    # Egress: the namespace's own pods, kube-dns, the API server's addresses (the launcher's), the intake.
    launcher_api = {peer["ipBlock"]["cidr"] for np in platform_nps if launcher is not None
                    and selector_matches(np["spec"].get("podSelector"), launcher["spec"]["template"]["metadata"]["labels"])
                    for rule in np["spec"].get("egress") or [] for peer in rule.get("to") or [] if "ipBlock" in peer}
    driver = {"spark-role": "driver", "spark-app-selector": "spark-0123"}
    intake = next(iter(deployments_of(objs, INTAKE)), None)
    api_seen = set()
    for np in nps:
        for rule in np["spec"].get("ingress") or []:
            if not rule.get("from") or any(set(peer) != {"podSelector"} for peer in rule["from"]):
                problems.append(f"{name_of(np)}: admits from outside the namespace: {rule.get('from')}")
        for rule in np["spec"].get("egress") or []:
            ports = {p.get("port") for p in rule.get("ports") or []}
            for peer in rule.get("to") or [{}]:
                if set(peer) == {"podSelector"}:
                    continue  # the namespace's own pods
                if "ipBlock" in peer:
                    api_seen.add(peer["ipBlock"].get("cidr"))
                    if not ports or not ports <= KUBE_API_PORTS:
                        problems.append(f"{name_of(np)}: an ipBlock on ports {sorted(ports, key=str)}: only the API server's")
                    if not selector_matches(np["spec"].get("podSelector"), driver) or np["spec"].get("podSelector") in ({}, None):
                        problems.append(f"{name_of(np)}: the API server for pods other than the drivers")
                elif (peer.get("podSelector") or {}).get("matchLabels", {}).get("k8s-app") == "kube-dns":
                    if not ports <= {53}:
                        problems.append(f"{name_of(np)}: DNS peer on ports {sorted(ports)}")
                elif intake is not None and selector_matches(peer.get("podSelector"), intake["spec"]["template"]["metadata"]["labels"]) \
                        and peer.get("namespaceSelector"):
                    continue
                else:
                    problems.append(f"{name_of(np)}: egress to {peer} on {sorted(ports, key=str)}")
    problems.extend(f"{ns}: {why}" for why in kube_api_block_problems(
        [rule for np in nps for rule in np["spec"].get("egress") or [] if any("ipBlock" in peer for peer in rule.get("to") or [])]))
    if launcher_api and api_seen != launcher_api:
        problems.append(f"the drivers' API server addresses {sorted(api_seen)} differ from the launcher's {sorted(launcher_api)}")
    if intake is not None and namespace is not None:
        iport = {p.get("name"): p["containerPort"] for p in intake["spec"]["template"]["spec"]["containers"][0].get("ports", [])}.get("http", 0)
        if not ingress_admits(platform_nps, intake["spec"]["template"]["metadata"]["labels"], "http", iport, (ns_labels, driver, False)):
            problems.append(f"a Spark driver of {ns} (its namespace's labels {ns_labels}) cannot reach the intake")
    r.check(not problems, f"{source}: {ns}'s NetworkPolicies: its pods among themselves, DNS, the drivers to the API server "
            "(the launcher's addresses) and the intake, nothing else; a driver there reaches the intake", "; ".join(problems[:6]))


def check_zone_spread(r: Report, source: str, objs: list[dict]) -> None:
    """Every replicated service (REPLICATED) spreads over zones (a topologySpreadConstraint on
    topology.kubernetes.io/zone, maxSkew 1, selecting its own pods), runs at least two replicas (its HPA's
    or KEDA's minimum, else spec.replicas), and has a PDB keeping at least one pod that a drain can still
    satisfy (minimum replicas > minAvailable)."""
    values = HELM_VALUES.get(source, {}) or {}
    problems = []
    checked = []
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    for comp in REPLICATED:
        for d in deployments_of(objs, comp):
            checked.append(comp)
            pod = d["spec"]["template"]
            labels = pod["metadata"].get("labels", {})
            zone = [c for c in pod["spec"].get("topologySpreadConstraints") or [] if c.get("topologyKey") == ZONE_KEY]
            if len(zone) != 1 or zone[0].get("maxSkew") != 1 or zone[0].get("whenUnsatisfiable") not in ("ScheduleAnyway", "DoNotSchedule") \
                    or not selects((zone[0].get("labelSelector") or {}).get("matchLabels", {}), labels):
                problems.append(f"{name_of(d)}: no zone spread (maxSkew 1 on {ZONE_KEY}, its own pods): {zone}")
            name = d["metadata"]["name"]
            mins = [h["spec"].get("minReplicas", 1) for h in by_kind.get("HorizontalPodAutoscaler", []) if h["spec"]["scaleTargetRef"]["name"] == name] + \
                   [s["spec"].get("minReplicaCount", 0) for s in by_kind.get("ScaledObject", []) if s["spec"]["scaleTargetRef"]["name"] == name]
            least = min(mins) if mins else d["spec"].get("replicas", 1)
            if least < 2:
                problems.append(f"{name_of(d)}: at least {least} replica(s); a replicated service runs two at least (one per zone)")
            pdbs = [p for p in by_kind.get("PodDisruptionBudget", []) if selects(p["spec"]["selector"].get("matchLabels", {}), labels)]
            key = VALUES_KEY.get(comp, "")
            if ((values.get(key) or {}).get("pdb") or {}).get("enabled") is False:
                continue
            if len(pdbs) != 1 or not isinstance(pdbs[0]["spec"].get("minAvailable"), int) or pdbs[0]["spec"]["minAvailable"] < 1:
                problems.append(f"{name_of(d)}: no PDB with minAvailable >= 1: {[p['spec'] for p in pdbs]}")
            elif least <= pdbs[0]["spec"]["minAvailable"]:
                problems.append(f"{name_of(d)}: minAvailable {pdbs[0]['spec']['minAvailable']} with {least} replica(s) blocks every drain")
    r.check(bool(checked) and not problems, f"{source}: {sorted(set(checked))} spread over zones, two replicas at least, a PDB "
            "keeping one", "; ".join(problems[:6]))


def runbook_anchors() -> set[str]:
    """The GitHub anchors of docs/runbooks.md's headings."""
    anchors = set()
    for line in RUNBOOKS.read_text().splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def promtool_rules(groups: list[dict]) -> tuple[bool, str]:
    """`promtool check rules` on rule groups (a PrometheusRule's spec)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return False, "promtool is not installed (Debian package prometheus)"
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": groups}, f)
    try:
        p = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    return p.returncode == 0, (p.stdout + p.stderr).strip()[-600:]


def promtool_test_rules(groups: list[dict], tests: Path) -> tuple[bool, str]:
    """`promtool test rules` on `tests`, run in a temporary folder holding a copy of it and the rule groups
    written as the rules file its rule_files names (ALERT_TESTS_RULES)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return False, "promtool is not installed (Debian package prometheus)"
    with tempfile.TemporaryDirectory(prefix="alert-tests-") as d:
        (Path(d) / ALERT_TESTS_RULES).write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        shutil.copyfile(tests, Path(d) / tests.name)
        p = subprocess.run([promtool, "test", "rules", tests.name], cwd=d, capture_output=True, text=True)
    return p.returncode == 0, (p.stdout + p.stderr).strip()[-3000:]


def alert_test_coverage(alerts: set[str], tests: dict) -> list[str]:
    """What the alert tests leave out: an alert of the rule file with no case where it fires (an
    exp_alerts entry) or none where it stays quiet (exp_alerts []); a case naming no alert of the file
    (it would pass without testing anything)."""
    fires: set[str] = set()
    quiet: set[str] = set()
    named: set[str] = set()
    for t in tests.get("tests") or []:
        for a in t.get("alert_rule_test") or []:
            name = a.get("alertname")
            named.add(name)
            (fires if a.get("exp_alerts") else quiet).add(name)
    problems = [f"{n}: no case where it fires" for n in sorted(alerts - fires)]
    problems += [f"{n}: no case where it stays quiet" for n in sorted(alerts - quiet)]
    problems += [f"{n}: tested, but no alert of the rule file" for n in sorted(named - alerts, key=str)]
    return problems


def check_alert_tests(r: Report) -> None:
    """The alerts' unit tests (ALERT_TESTS): they read the rules from ALERT_TESTS_RULES, `promtool test
    rules` passes, and every alert of k8s/base/prometheusrule.yaml has a case where it fires and one where
    it stays quiet."""
    where = ALERT_TESTS.relative_to(ROOT)
    if not r.check(ALERT_TESTS.exists(), f"{where} exists (the alerts' promtool unit tests)"):
        return
    try:
        tests = yaml.safe_load(ALERT_TESTS.read_text()) or {}
    except yaml.YAMLError as e:
        r.fail(f"{where} parses: {e}")
        return
    r.check(tests.get("rule_files") == [ALERT_TESTS_RULES], f"{where} reads the rules from {ALERT_TESTS_RULES} (written at check time)",
            f"rule_files {tests.get('rule_files')}")
    groups = yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]["groups"]
    alerts = {rule["alert"] for g in groups for rule in g.get("rules", []) if "alert" in rule}
    ok, out = promtool_test_rules(groups, ALERT_TESTS)
    r.check(ok, f"promtool test rules {where} ({PROMETHEUS_RULE.relative_to(ROOT)} spec.groups)", out)
    problems = alert_test_coverage(alerts, tests)
    r.check(bool(alerts) and not problems, f"{where}: each of the {len(alerts)} alerts fires in a case and stays quiet in another",
            "; ".join(problems[:10]))


def check_prometheus_rules(r: Report, renderings: dict[str, list[dict]]) -> None:
    """The alerts: k8s/base/prometheusrule.yaml and the chart's copy are identical; promtool accepts the
    groups; the operator's alerts (REQUIRED_ALERTS) are there, each with its metrics, a severity and a
    runbook_url to its own section of docs/runbooks.md; every rendering with rules carries the same
    groups (the chart's runbook base URL aside)."""
    base = yaml.safe_load(PROMETHEUS_RULE.read_text())
    r.check(CHART_PROMETHEUS_RULE.exists() and CHART_PROMETHEUS_RULE.read_text() == PROMETHEUS_RULE.read_text(),
            f"{CHART_PROMETHEUS_RULE.relative_to(ROOT)} is a copy of {PROMETHEUS_RULE.relative_to(ROOT)}",
            f"cp {PROMETHEUS_RULE.relative_to(ROOT)} {CHART_PROMETHEUS_RULE.relative_to(ROOT)}")
    groups = base["spec"]["groups"]
    ok, out = promtool_rules(groups)
    r.check(ok, f"promtool check rules ({PROMETHEUS_RULE.relative_to(ROOT)} spec.groups)", out)
    names = [g["name"] for g in groups]
    r.check(len(names) == len(set(names)), "rule group names are unique (the CRD's list-map key)", f"{names}")
    alerts = {rule["alert"]: rule for g in groups for rule in g.get("rules", []) if "alert" in rule}
    anchors = runbook_anchors() if RUNBOOKS.exists() else set()
    problems = []
    for name, metrics in REQUIRED_ALERTS.items():
        rule = alerts.get(name)
        if rule is None:
            problems.append(f"no alert {name}")
        elif not promql_metric_names(str(rule["expr"])) & set(metrics):
            problems.append(f"{name}: its expression uses none of {metrics}")
    for name, rule in alerts.items():
        url = (rule.get("annotations") or {}).get("runbook_url", "")
        base_url, _, anchor = url.partition("#")
        if not base_url.endswith("docs/runbooks.md") or anchor != name.lower() or anchor not in anchors:
            problems.append(f"{name}: runbook_url {url!r} is not docs/runbooks.md#{name.lower()} (a section of {RUNBOOKS.relative_to(ROOT)})")
        if (rule.get("labels") or {}).get("severity") not in ("page", "ticket"):
            problems.append(f"{name}: severity {rule.get('labels')}, expected page or ticket")
        if not (rule.get("annotations") or {}).get("summary"):
            problems.append(f"{name}: no summary")
    r.check(not problems, f"alerts {sorted(alerts)}: the operator's alerts, each with a severity, a summary and its runbook section",
            "; ".join(problems[:8]))
    want = json.dumps(groups, sort_keys=True)
    for source, objs in renderings.items():
        rules = [o for o in objs if o["kind"] == "PrometheusRule"]
        values = HELM_VALUES.get(source, {}) or {}
        if (values.get("prometheusRule") or {}).get("enabled") is False:
            r.check(not rules, f"{source}: prometheusRule.enabled false: no PrometheusRule")
            continue
        got = [json.dumps(o["spec"]["groups"], sort_keys=True) for o in rules]
        if source.startswith("helm:"):
            url = ((values.get("prometheusRule") or {}).get("runbookBaseUrl"))
            if url:
                got = [g.replace(url, "https://git.example.com/pool-selector/blob/main/docs/runbooks.md") for g in got]
        r.check(got == [want], f"{source}: one PrometheusRule with the alerts of {PROMETHEUS_RULE.relative_to(ROOT)}",
                f"{len(rules)} PrometheusRules" if len(rules) != 1 else "its groups differ")


def dashboard_files() -> dict[str, str]:
    return {f.name: f.read_text() for f in sorted(DASHBOARDS.glob("*.json"))}


def check_dashboard_configmaps(r: Report, renderings: dict[str, list[dict]]) -> None:
    """The dashboards as ConfigMaps for the Grafana sidecar: the copies kustomize and Helm read are
    identical to deploy/grafana/dashboards, and every rendering has one ConfigMap labelled
    grafana_dashboard: "1" holding exactly those files."""
    want = dashboard_files()
    for copy_dir in DASHBOARD_COPIES:
        got = {f.name: f.read_text() for f in sorted(copy_dir.glob("*.json"))}
        r.check(got == want, f"{copy_dir.relative_to(ROOT)} is a copy of {DASHBOARDS.relative_to(ROOT)}",
                f"cp {DASHBOARDS.relative_to(ROOT)}/*.json {copy_dir.relative_to(ROOT)}/")
    for source, objs in renderings.items():
        values = HELM_VALUES.get(source, {}) or {}
        cms = [o for o in objs if o["kind"] == "ConfigMap" and (o["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
        if (values.get("grafanaDashboard") or {}).get("enabled") is False:
            r.check(not cms, f"{source}: grafanaDashboard.enabled false: no dashboard ConfigMap")
            continue
        r.check(len(cms) == 1 and (cms[0].get("data") or {}) == want,
                f"{source}: a ConfigMap labelled grafana_dashboard: \"1\" holds exactly {sorted(want)}",
                f"{[name_of(o) for o in cms]}")


def worker_max_message_bytes() -> int:
    """ingest-worker's MAX_MESSAGE_BYTES default, from its settings (`pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 512 * 1024;`)."""
    m = re.search(r"DEFAULT_MAX_MESSAGE_BYTES:\s*usize\s*=\s*([0-9_ *]+);", WORKER_SETTINGS.read_text())
    value = 1
    for factor in (m.group(1) if m else "0").replace("_", "").split("*"):
        value *= int(factor.strip())
    return value


def rabbitmq_max_message_size(text: str) -> list[int]:
    return [int(v) for v in re.findall(r"max_message_size\s*=\s*([0-9]+)", text)]


def check_rabbitmq_configs(r: Report, renderings: dict[str, list[dict]]) -> None:
    """RabbitMQ's max_message_size is ingest-worker's MAX_MESSAGE_BYTES default wherever RabbitMQ is
    configured: compose's rabbitmq.conf (mounted into the broker), k8s/dependencies' values, the chart's
    rabbitmq dependency values, and `make up`'s broker (the rabbitmq.conf its prepare step writes)."""
    want = worker_max_message_bytes()
    r.check(want > 0, f"ingest-worker's DEFAULT_MAX_MESSAGE_BYTES is {want} ({WORKER_SETTINGS.relative_to(ROOT)})")
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in RABBITMQ_CONFIGS}
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    sources["helm values.yaml rabbitmq.extraConfiguration"] = (chart_values.get("rabbitmq") or {}).get("extraConfiguration", "")
    for f in HELM_VALUES_FILES:
        extra = ((yaml.safe_load(f.read_text()) or {}).get("rabbitmq") or {}).get("extraConfiguration")
        if extra is not None:
            sources[f"helm ci/{f.name} rabbitmq.extraConfiguration"] = extra
    # make up's broker: the lines `stack.sh rabbitmq-config` prints, and the rabbitmq.conf the broker's
    # prepare step (scripts/lib/rabbitmq-node.sh prepare, named by deploy/stack.toml) writes from them.
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([str(STACK_SCRIPT), "rabbitmq-config"], capture_output=True, text=True,
                           env=dict(os.environ, STACK_DIR=str(Path(tmp) / "state")))
        sources["make up: scripts/stack.sh rabbitmq-config"] = p.stdout if p.returncode == 0 else p.stderr
        settings = Path(tmp) / "rabbitmq-settings.conf"
        settings.write_text(p.stdout)
        rabbit_dir = Path(tmp) / "rabbitmq"
        p = subprocess.run([str(RABBIT_NODE_SCRIPT), "prepare", str(settings)], capture_output=True, text=True,
                           env=dict(os.environ, RABBIT_DIR=str(rabbit_dir), MGMT_PORT="2"))
        conf = rabbit_dir / "rabbitmq.conf"
        sources["make up: the rabbitmq.conf its prepare step writes"] = (
            conf.read_text() if p.returncode == 0 and conf.exists() else p.stderr)
    for where, text in sources.items():
        got = rabbitmq_max_message_size(text)
        r.check(got == [want], f"{where}: RabbitMQ max_message_size = {want} (ingest-worker's MAX_MESSAGE_BYTES)",
                f"got {got}{'' if got else ': ' + text.strip()[:300]}")


def iam_allows(policy: dict, action: str, resource: str, prefix: str | None = None) -> bool:
    """Whether an identity-based policy allows `action` on `resource` (S3 ARNs; `*` and `?` wildcards),
    with `s3:prefix` for a ListBucket: an explicit Deny wins, otherwise some Allow must match, its
    StringLike / StringEquals conditions on s3:prefix included. Enough for these example policies."""
    def matches(patterns, value: str) -> bool:
        patterns = [patterns] if isinstance(patterns, str) else patterns
        return any(fnmatch.fnmatchcase(value, p) for p in patterns)

    def condition_holds(cond: dict) -> bool:
        for op, tests in cond.items():
            for key, want in tests.items():
                if key != "s3:prefix" or prefix is None:
                    return False
                if op == "StringLike" and not matches(want, prefix):
                    return False
                if op == "StringEquals" and prefix not in ([want] if isinstance(want, str) else want):
                    return False
                if op not in ("StringLike", "StringEquals"):
                    return False
        return True

    allowed = False
    for st in policy.get("Statement", []):
        if not (matches(st.get("Action", []), action) and matches(st.get("Resource", []), resource)):
            continue
        if "Condition" in st and not condition_holds(st["Condition"]):
            continue
        if st.get("Effect") == "Deny":
            return False
        allowed = allowed or st.get("Effect") == "Allow"
    return allowed


def check_iam(r: Report) -> None:
    """The example IAM policies, evaluated against what each service does and must not do, on the base's
    events bucket and prefix: pool-selector reads and lists only; ingest-worker writes raw hourly objects
    (dt=…/hr=…/) only, and cannot read, list, delete or touch rollups; the compactor reads and lists the
    events and writes and deletes rollups (_rollups/) only, never raw objects."""
    base = subprocess.run(["kubectl", "kustomize", str(K8S / "base")], capture_output=True, text=True)
    storage = next((o.get("data", {}) for o in docs(base.stdout) if o["kind"] == "ConfigMap" and "EVENTS_URL" in o.get("data", {})), {})
    url = urllib.parse.urlparse(storage.get("EVENTS_URL", ""))
    bucket, prefix = url.netloc, url.path.lstrip("/")
    arn = f"arn:aws:s3:::{bucket}"
    raw = f"{arn}/{prefix}dt=2026-11-22/hr=07/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.json"
    hour_rollup = f"{arn}/{prefix}_rollups/dt=2026-11-22/hr=07.parquet"
    day_rollup = f"{arn}/{prefix}_rollups/dt=2026-11-22/day.parquet"
    elsewhere = f"{arn}/other/dt=2026-11-22/hr=07/x.json"
    at_root = f"{arn}/{prefix}x.json"
    # (action, resource, s3:prefix for ListBucket) -> allowed?
    cases = {
        "pool-selector-s3-readonly.json": {
            ("s3:ListBucket", arn, prefix): True, ("s3:ListBucket", arn, f"{prefix}dt=2026-11-22/"): True,
            ("s3:GetObject", raw, None): True, ("s3:GetObject", day_rollup, None): True,
            ("s3:ListBucket", arn, "other/"): False, ("s3:GetObject", elsewhere, None): False,
            ("s3:PutObject", raw, None): False, ("s3:PutObject", hour_rollup, None): False,
            ("s3:DeleteObject", raw, None): False, ("s3:DeleteObject", day_rollup, None): False,
        },
        "ingest-worker-s3-writer.json": {
            ("s3:PutObject", raw, None): True,
            ("s3:PutObject", hour_rollup, None): False, ("s3:PutObject", day_rollup, None): False,
            ("s3:PutObject", at_root, None): False, ("s3:PutObject", elsewhere, None): False,
            ("s3:GetObject", raw, None): False, ("s3:DeleteObject", raw, None): False,
            ("s3:ListBucket", arn, prefix): False,
        },
        "compactor-s3-writer.json": {
            ("s3:ListBucket", arn, prefix): True, ("s3:GetObject", raw, None): True,
            ("s3:GetObject", hour_rollup, None): True,
            ("s3:PutObject", hour_rollup, None): True, ("s3:PutObject", day_rollup, None): True,
            ("s3:DeleteObject", hour_rollup, None): True,
            ("s3:PutObject", raw, None): False, ("s3:DeleteObject", raw, None): False,
            ("s3:PutObject", at_root, None): False, ("s3:PutObject", elsewhere, None): False,
            ("s3:GetObject", elsewhere, None): False, ("s3:ListBucket", arn, "other/"): False,
        },
    }
    for name, expected in cases.items():
        path = IAM / name
        try:
            policy = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            r.fail(f"k8s/iam/{name}: {e}")
            continue
        wrong = [f"{action} {res.removeprefix(arn)}{f' prefix={p!r}' if p is not None else ''}: "
                 f"{'allowed' if not want else 'denied'}"
                 for (action, res, p), want in expected.items() if iam_allows(policy, action, res, p) != want]
        r.check(not wrong, f"k8s/iam/{name}: allows what its service does on s3://{bucket}/{prefix} and nothing "
                f"else ({len(expected)} cases)", "; ".join(wrong))


def kinds_per_component(objs: list[dict]) -> set[tuple[str, str]]:
    out = set()
    for o in objs:
        if o["kind"] in ("Namespace", "ConfigMap", "ServiceAccount"):
            continue
        comp = component(o)
        if o["kind"] in ("PodDisruptionBudget", "NetworkPolicy"):
            comp = (o["spec"].get("selector") or o["spec"].get("podSelector", {})).get("matchLabels", {}).get("app.kubernetes.io/name")
        out.add((o["kind"], comp or "?"))
    return out


def parity(r: Report, renderings: dict[str, list[dict]]) -> None:
    pairs = [("kustomize:base", "helm:defaults"), ("kustomize:overlays/example-keda", "helm:keda"),
             ("kustomize:overlays/example-compactor-cronjob", "helm:compactor-cronjob")]
    for a, b in pairs:
        if a in renderings and b in renderings:
            ka, kb = kinds_per_component(renderings[a]), kinds_per_component(renderings[b])
            r.check(ka == kb, f"{a} and {b} render the same resources per component",
                    f"only in {a}: {sorted(ka - kb)}; only in {b}: {sorted(kb - ka)}")


# ---------------------------------------------------------------------------------------------------
# Adapter rule, compose, Dockerfile, Prometheus, Grafana


def read_name(rule: dict) -> str:
    m = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", rule["seriesQuery"])
    assert m, f"seriesQuery without a metric name: {rule['seriesQuery']}"
    return m.group(1)


def adapter_metric_names() -> tuple[set[str], set[str]]:
    """(series the adapter rules read, names they serve to the HPA)."""
    values = yaml.safe_load(ADAPTER_VALUES.read_text())
    read, served = set(), set()
    for rule in values["rules"]["external"]:
        read.add(read_name(rule))
        served.add(rule["name"]["as"])
    return read, served


def check_adapter(r: Report, renderings: dict[str, list[dict]]) -> None:
    values = yaml.safe_load(ADAPTER_VALUES.read_text())
    r.check(values["rules"].get("default") is False, "adapter: default rules off (only the ones we need)")
    read, served = adapter_metric_names()
    for rule in values["rules"]["external"]:
        q = rule["metricsQuery"]
        r.check("<<.Series>>" in q and "<<.LabelMatchers>>" in q, f"adapter rule {rule['name']['as']}: metricsQuery uses the series and label matchers")
        r.check("namespace" in rule["resources"]["overrides"], f"adapter rule {rule['name']['as']}: namespace label mapped")
        r.check(re.search(rule["name"]["matches"], read_name(rule)) is not None,
                f"adapter rule {rule['name']['as']}: name pattern matches its series {read_name(rule)}")
    hpa_metrics = {
        m["external"]["metric"]["name"]
        for objs in renderings.values() for o in objs if o["kind"] == "HorizontalPodAutoscaler"
        for m in o["spec"]["metrics"] if m["type"] == "External"
    }
    r.check(bool(hpa_metrics) and hpa_metrics <= served, f"every HPA external metric {sorted(hpa_metrics)} is served by an adapter rule", f"served: {sorted(served)}")


def duration_seconds(text: str) -> float:
    """Seconds of a duration as the services write them: `30`, `30s`, `500ms`, `2m`, `1h`."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


def workspace_binaries() -> set[str]:
    out = set()
    for cargo in (ROOT / "crates").glob("*/Cargo.toml"):
        if (cargo.parent / "src" / "main.rs").exists():
            m = re.search(r'^name\s*=\s*"([^"]+)"', cargo.read_text(), re.M)
            if m:
                out.add(m.group(1))
    return out


def check_dockerfile(r: Report) -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.strip().startswith("#")]
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    r.check(len(froms) >= 2, f"Dockerfile is multi-stage ({len(froms)} stages)")
    final = lines[lines.index(froms[-1]):]
    users = [l.split()[1] for l in final if l.upper().startswith("USER ")]
    r.check(bool(users) and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0",
            f"Dockerfile final stage runs as a numeric non-root user ({users[-1] if users else 'none'})")
    r.check(any("cargo build --release" in l for l in lines), "Dockerfile builds with cargo build --release")
    r.check(any(l.upper().startswith("ENTRYPOINT") for l in final), "Dockerfile final stage has an ENTRYPOINT")
    r.check((DEPLOY / "Dockerfile.dockerignore").exists(), "Dockerfile has a .dockerignore (target/ and .venv/ excluded)")
    # Base images by name only, resolved against the engine's configured registry or mirror: the first
    # path component of a reference is a host when it has a dot or a port, or is localhost.
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", "\n".join(lines), re.M))
    bases = [re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), l.split()[1]) for l in froms]
    hosted = [b for b in bases if "/" in b and re.search(r"[.:]|^localhost$", b.split("/")[0])]
    r.check(not hosted, f"Dockerfile base images name no registry host ({', '.join(bases)})", f"hosted: {hosted}")


# Registry hosts (container images, charts, packages): the project names none anywhere, so that every
# pull goes through the registry or mirror the operator configured. Cargo.lock is exempt (cargo writes
# the crates' source into it).
REGISTRY_HOSTS = re.compile(
    r"(?<![\w.-])(?:[\w-]+\.)*(?:docker\.io|docker\.com|gcr\.io|ghcr\.io|quay\.io|cgr\.dev|registry\.k8s\.io|"
    r"public\.ecr\.aws|mcr\.microsoft\.com|crates\.io|pypi\.org|pythonhosted\.org|npmjs\.(?:org|com)|"
    r"deb\.debian\.org|charts\.bitnami\.com|charts\.min\.io|prometheus-community\.github\.io|"
    r"kubeflow\.github\.io)(?![\w-])", re.I)


def check_registry_hosts(r: Report) -> None:
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True)
    if not r.check(files.returncode == 0, "git ls-files lists the repository's files", files.stderr[-300:]):
        return
    found = []
    for name in files.stdout.split("\0"):
        path = ROOT / name
        if not name or name == "Cargo.lock" or name.endswith("/Cargo.lock") or not path.is_file():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            m = REGISTRY_HOSTS.search(line)
            if m:
                found.append(f"{name}:{n}: {m.group(0)}")
    r.check(not found, "no registry host named anywhere in the repository (but Cargo.lock)", "; ".join(found[:20]))


def check_compose(r: Report) -> None:
    compose = DEPLOY / "docker-compose.yml"
    exe = shutil.which("docker-compose")
    if r.check(exe is not None, "docker-compose is installed (scripts/install-deps.sh)"):
        # With a .env as scripts/compose-env.sh writes it, and nothing from the caller's environment.
        with tempfile.TemporaryDirectory() as tmp:
            env_file = compose_env_file(Path(tmp))
            p = subprocess.run([exe, "--env-file", str(env_file), "-f", str(compose), "config"], capture_output=True, text=True,
                               cwd=DEPLOY, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        r.check(p.returncode == 0, "docker-compose config parses deploy/docker-compose.yml with a generated .env (no engine needed)",
                p.stderr.strip()[:500])
        resolved = yaml.safe_load(p.stdout) if p.returncode == 0 else None
    else:
        resolved = None
    if resolved is None:
        return
    svcs = resolved["services"]
    want = {"rabbitmq", "redis", "minio", "minio-init", "prometheus", "grafana", "pool-selector-1", "pool-selector-2",
            "pool-selector-lb", "relay", "intake", "ingest-worker", "monitor", "compactor", "event-generator", LAUNCHER}
    r.check(want <= set(svcs), "compose has every service of the stack", f"missing {sorted(want - set(svcs))}")
    r.check("management" in svcs["rabbitmq"]["image"], "compose RabbitMQ has the management plugin")
    bins = workspace_binaries()
    for name, s in svcs.items():
        if "build" in s:
            b = s["build"]
            ok = Path(b["dockerfile"]).name == "Dockerfile" and b.get("args", {}).get("BIN") in bins
            r.check(ok, f"compose {name}: built from deploy/Dockerfile with BIN={b.get('args', {}).get('BIN')}", f"binaries: {sorted(bins)}")
            r.check(s.get("read_only") is True and str(s.get("user", "0")).split(":")[0] not in ("0", "root"),
                    f"compose {name}: read-only, non-root")
    lb_conf = (DEPLOY / "nginx" / "pool-selector-lb.conf").read_text()
    r.check("pool-selector-1:5050" in lb_conf and "pool-selector-2:5050" in lb_conf, "compose: the balancer spreads over both pool-selector replicas")
    r.check(svcs["relay"]["environment"]["UPSTREAM_URL"] == "http://pool-selector-lb:5050", "compose: the relay calls the balancer")
    # The compactor: a pass every interval (serving /metrics), on pool-selector's storage settings.
    compactor = svcs.get("compactor", {})
    cmd = compactor.get("command") or []
    r.check("--every" in cmd and cmd.index("--every") + 1 < len(cmd) and DURATION.match(cmd[cmd.index("--every") + 1]) is not None
            and "--once" not in cmd, f"compose compactor runs --every <interval> ({cmd})")
    storage_keys = ("EVENTS_URL", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    sel_env, comp_env = svcs["pool-selector-1"]["environment"], compactor.get("environment", {})
    r.check(all(comp_env.get(k) == sel_env.get(k) for k in storage_keys),
            "compose compactor has pool-selector's storage settings",
            f"differs: {[k for k in storage_keys if comp_env.get(k) != sel_env.get(k)]}")
    # ROLLUP_HMAC_KEY: the compactor signs rollups with it, both pool-selector replicas use only rollups
    # signed with it: the same value from .env on the three, on no other service.
    holders = ("compactor", "pool-selector-1", "pool-selector-2")
    keys = {name: str((s.get("environment") or {}).get(ROLLUP_ENV, "")) for name, s in svcs.items()}
    others = sorted(n for n, k in keys.items() if k and n not in holders)
    r.check(all(keys.get(n) for n in holders) and len({keys.get(n) for n in holders}) == 1 and not others,
            f"compose: the compactor and both pool-selector replicas get the same {ROLLUP_ENV} from .env, no other service",
            f"set on {sorted(n for n, k in keys.items() if k)}; equal on the three: {len({keys.get(n) for n in holders}) == 1}")
    for name, s in svcs.items():
        for v in s.get("volumes", []):
            src = v["source"] if isinstance(v, dict) else v.split(":")[0]
            if src.startswith("/") or src.startswith("."):
                r.check(Path(src).exists(), f"compose {name}: mounted {src} exists")
    # POST /events is the intake's: its tokens, and the broker ingest-worker consumes from. pool-selector
    # only reads the bucket.
    intake_env = svcs.get("intake", {}).get("environment", {})
    r.check(bool(intake_env.get("INTAKE_TOKENS")), "compose intake: INTAKE_TOKENS set (POST /events is on)")
    worker_amqp = svcs["ingest-worker"]["environment"].get("AMQP_URL")
    r.check(bool(worker_amqp) and intake_env.get("AMQP_URL") == worker_amqp,
            "compose intake: publishes to the broker ingest-worker consumes from (AMQP_URL)",
            f"intake {intake_env.get('AMQP_URL')}, ingest-worker {worker_amqp}")
    for name in ("pool-selector-1", "pool-selector-2"):
        bad = sorted(k for k in svcs[name]["environment"] if k.startswith(NOT_FOR_SELECTOR))
        r.check(not bad, f"compose {name}: no AMQP or intake setting (POST /events is the intake's)", f"sets {bad}")
        r.check("rabbitmq" not in (svcs[name].get("depends_on") or {}), f"compose {name}: does not wait for RabbitMQ")
    # The relay: public PORT 8080, /metrics (and /docs) on ADMIN_PORT, published on the host's loopback only.
    relay_env = svcs["relay"].get("environment", {})
    admin = relay_env.get("ADMIN_PORT")
    r.check(admin is not None and admin != relay_env.get("PORT"), f"compose relay: ADMIN_PORT {admin} apart from PORT {relay_env.get('PORT')}")
    def port_mapping(p: Any) -> tuple[str | None, str]:
        """(host address, container port) of a compose port, long form or `[ip:]host:container`."""
        if isinstance(p, dict):
            return p.get("host_ip"), str(p.get("target"))
        parts = str(p).split("/")[0].split(":")
        return (parts[0] if len(parts) == 3 else None), parts[-1]

    published = [port_mapping(p) for p in svcs["relay"].get("ports", [])]
    r.check(all(ip == "127.0.0.1" for ip, target in published if target == str(admin)),
            "compose relay: the admin port is published on 127.0.0.1 only", f"{published}")
    # Only the relay's public port listens on every interface; the seeds' ports: pool-selector 5050 (its
    # balancer), the relay 8080.
    exposed = {(name, ip, target) for name, s in svcs.items() for ip, target in (port_mapping(p) for p in s.get("ports", []))
               if ip != "127.0.0.1"}
    r.check(exposed == {("relay", None, "8080")} or exposed == {("relay", "0.0.0.0", "8080")},
            "compose publishes every port on 127.0.0.1 but the relay's 8080", f"on every interface: {sorted(exposed, key=str)}")
    r.check(("127.0.0.1", "5050") in [port_mapping(p) for p in svcs["pool-selector-lb"].get("ports", [])],
            "compose publishes pool-selector (its balancer) on the seed's port 5050 (127.0.0.1)")
    # RabbitMQ reads max_message_size from the mounted rabbitmq.conf (check_rabbitmq_configs).
    mounts = [v if isinstance(v, dict) else {"source": v.split(":")[0], "target": v.split(":")[1]} for v in svcs["rabbitmq"].get("volumes", [])]
    r.check(any(Path(m.get("source", "")).resolve() == (DEPLOY / "rabbitmq" / "rabbitmq.conf").resolve()
                and m.get("target", "").startswith("/etc/rabbitmq/conf.d/") for m in mounts),
            "compose rabbitmq mounts deploy/rabbitmq/rabbitmq.conf into /etc/rabbitmq/conf.d/", f"{mounts}")
    # The launcher: local backend, simulated runs (no Spark in the image), the templates and a truth file
    # mounted, the relay, the intake (with the intake's token) and Redis.
    launcher = svcs.get(LAUNCHER, {})
    lenv = launcher.get("environment", {})
    lmounts = {v.get("target") if isinstance(v, dict) else v.split(":")[1]: v.get("source") if isinstance(v, dict) else v.split(":")[0]
               for v in launcher.get("volumes", [])}
    problems = []
    if lenv.get("BACKEND") != "local" or str(lenv.get("SIMULATE_ONLY")).lower() != "true":
        problems.append(f"BACKEND {lenv.get('BACKEND')}, SIMULATE_ONLY {lenv.get('SIMULATE_ONLY')}: expected local, true")
    for var in ("LAUNCH_TEMPLATES", "SIMULATE_TRUTH"):
        if lenv.get(var) not in lmounts or not Path(lmounts.get(lenv.get(var)) or "/nonexistent").exists():
            problems.append(f"{var} {lenv.get(var)} is not a mounted file or folder of the repository")
    truth = lmounts.get(lenv.get("SIMULATE_TRUTH"))
    if truth and Path(truth).is_file():
        pools = [pl.get("pool_id", "") for pl in json.loads(Path(truth).read_text()).get("pools", [])]
        if not pools or not all(re.fullmatch(r"pool-[a-z0-9]+\.[a-z0-9]+-[a-z]{2}-[a-z]+-[0-9][a-z]", pl) for pl in pools):
            problems.append(f"the truth file {truth} has no pools or malformed pool ids")
    if lenv.get("RELAY_URL") != "http://relay:8080" or lenv.get("INTAKE_URL") != f"http://intake:{INTAKE_PORT}":
        problems.append(f"RELAY_URL {lenv.get('RELAY_URL')}, INTAKE_URL {lenv.get('INTAKE_URL')}")
    if not lenv.get("INTAKE_TOKEN") or lenv.get("INTAKE_TOKEN") not in str(intake_env.get("INTAKE_TOKENS", "")).split(","):
        problems.append("INTAKE_TOKEN is not one of the intake's INTAKE_TOKENS")
    if not str(lenv.get("REDIS_URL", "")).startswith("redis://redis:"):
        problems.append(f"REDIS_URL {lenv.get('REDIS_URL')} is not the stack's Redis")
    r.check(bool(launcher) and not problems, "compose launcher: local backend with simulated runs, the templates and a truth file "
            "mounted, the relay, the intake (with its token) and Redis", "; ".join(problems))
    # Prometheus targets are compose services on the ports serving their /metrics.
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    listen = {"pool-selector-1": "5050", "pool-selector-2": "5050", "relay": "8080", "ingest-worker": "9091", "monitor": "8090",
              "compactor": COMPACTOR_PORT, "intake": INTAKE_PORT, LAUNCHER: "8100"}
    for name, port in listen.items():
        env = svcs[name].get("environment", {})
        r.check(env.get("PORT", env.get("METRICS_PORT")) == port, f"compose {name} listens on {port}")
    scraped = dict(listen, relay=admin)
    targets = [t for job in prom["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    for t in targets:
        host, port = t.split(":")
        r.check(host == "localhost" or (host in svcs and scraped.get(host) == port), f"prometheus target {t} is a compose service's metrics port")
    relay_targets = [t for j in prom["scrape_configs"] if j["job_name"] == "relay" for sc in j.get("static_configs", []) for t in sc["targets"]]
    r.check(relay_targets == [f"relay:{admin}"], f"deploy/prometheus.yml scrapes the relay on its admin port (relay:{admin})",
            f"targets: {relay_targets}")
    jobs = {j["job_name"] for j in prom["scrape_configs"]}
    r.check(set(COMPONENTS) | {LAUNCHER} <= jobs, "prometheus scrapes every service, the launcher too", f"jobs: {sorted(jobs)}")


def template_files() -> list[tuple[Path, dict]]:
    return [(f, yaml.safe_load(f.read_text())) for f in sorted(LAUNCHER_TEMPLATES.glob("*.yaml"))]


def make_recipe(target: str) -> list[str]:
    """The recipe lines of a Makefile target (tab-indented lines after `target:`)."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next((i for i, l in enumerate(lines) if re.match(rf"^{re.escape(target)}:", l)), None)
    if start is None:
        return []
    out = []
    for l in lines[start + 1:]:
        if not l.startswith("\t"):
            break
        out.append(l.strip())
    return out


def check_spark_image(r: Report) -> None:
    """deploy/spark-job: the image the launch templates name. Its Spark version is the templates'
    sparkVersion, it runs as a numeric non-root user (the uid the templates' pods run as), it copies every
    template's job file (identical to deploy/launch-templates') to the folder mainApplicationFile names,
    and `make spark-image` builds it under the templates' image name. The templates' driver and executor
    meet Pod Security `restricted` (the Spark jobs namespace enforces it)."""
    dockerfile = SPARK_JOB / "Dockerfile"
    if not r.check(dockerfile.exists(), f"{dockerfile.relative_to(ROOT)} exists"):
        return
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", "\n".join(lines), re.M))
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    users = [l.split()[1] for l in lines if l.upper().startswith("USER ")]
    uid = users[-1].split(":")[0] if users else ""
    r.check(uid.isdigit() and uid != "0", f"{dockerfile.relative_to(ROOT)} runs as a numeric non-root user (USER {users[-1] if users else 'none'})")
    r.check((SPARK_JOB / ".dockerignore").exists(), f"{SPARK_JOB.relative_to(ROOT)}/.dockerignore exists")
    templates = template_files()
    versions = {app["spec"].get("sparkVersion") for _, app in templates}
    r.check(bool(froms) and "${SPARK_VERSION}" in froms[-1] and versions == {args.get("SPARK_VERSION")},
            f"the Spark job image's Spark ({args.get('SPARK_VERSION')}, FROM {froms[-1] if froms else '?'}) is the templates' sparkVersion {sorted(versions, key=str)}")
    copies = [l for l in lines if l.upper().startswith("COPY ")]
    problems = []
    for f, app in templates:
        main = app["spec"].get("mainApplicationFile", "")
        path = main.removeprefix("local://")
        folder, name = path.rsplit("/", 1)
        job = SPARK_JOB / "jobs" / name
        if not job.exists() or job.read_text() != (LAUNCHER_TEMPLATES / name).read_text():
            problems.append(f"{f.name}: {job.relative_to(ROOT)} is not a copy of {(LAUNCHER_TEMPLATES / name).relative_to(ROOT)} "
                            f"(cp {(LAUNCHER_TEMPLATES / name).relative_to(ROOT)} {job.parent.relative_to(ROOT)}/)")
        if not any(re.search(r"\bjobs/", c) and c.split()[-1].rstrip("/") == folder for c in copies):
            problems.append(f"{f.name}: no COPY of jobs/ into {folder}/ (mainApplicationFile {main})")
        for role in ("driver", "executor"):
            spec = app["spec"].get(role) or {}
            pod = {"securityContext": spec.get("podSecurityContext"),
                   "containers": [{"name": role, "securityContext": spec.get("securityContext")}]}
            problems.extend(f"{f.name}: {why}" for why in restricted_pod_problems(role, pod))
            if str((spec.get("podSecurityContext") or {}).get("runAsUser")) != uid:
                problems.append(f"{f.name}: {role} runs as {(spec.get('podSecurityContext') or {}).get('runAsUser')}, not the image's user {uid}")
        if (app["spec"].get("driver") or {}).get("serviceAccount") != SPARK_DRIVER_ACCOUNT:
            problems.append(f"{f.name}: driver.serviceAccount is not {SPARK_DRIVER_ACCOUNT} (the account k8s/base/spark-jobs.yaml creates)")
    r.check(bool(templates) and not problems, "every template's job file is in the image at its mainApplicationFile, its pods meet "
            "Pod Security `restricted` as the image's user", "; ".join(problems[:6]))
    images = {app["spec"].get("image") for _, app in templates}
    recipe = " ".join(make_recipe("spark-image"))
    m = re.search(r"docker build (?:.*\s)?-t\s+(\S+)\s+(?:.*\s)?(\S+)$", recipe)
    built, context = (m.group(1), m.group(2)) if m else (None, None)
    r.check(len(images) == 1 and built in images and context == str(SPARK_JOB.relative_to(ROOT)),
            f"`make spark-image` builds {built} from {context}: the templates' image {sorted(images, key=str)}", f"recipe: {recipe!r}")


def doc_positions(text: str, needles: list[str], heading: str = "## From an empty cluster") -> list[int]:
    """Where each needle first appears in the section under `heading` (-1: not there)."""
    start = text.find(heading)
    if start < 0:
        return [-1] * len(needles)
    end = text.find("\n## ", start + len(heading))
    section = text[start:end if end > 0 else len(text)]
    return [section.find(n) for n in needles]


def check_install_docs(r: Report, renderings: dict[str, list[dict]]) -> None:
    """From an empty cluster to a working platform, in order, one command each: kube-prometheus-stack (the
    ServiceMonitor and PrometheusRule CRDs), the dependencies, the platform, then the Spark Operator
    watching the jobs namespace (which the platform creates); in k8s/README.md (kustomize) and the chart's
    README.md (Helm). The Secrets: every Secret and key the example overlay's pods read (the launcher's
    LAUNCHER_TOKENS too) is in k8s/README.md's table and has a placeholder in
    overlays/example/secrets.example.yaml, which is no resource of the overlay."""
    readme = (K8S / "README.md").read_text()
    chart_readme = (CHART / "README.md").read_text()
    operator = "helm install spark-operator spark-operator/spark-operator"
    jobs = "spark.jobNamespaces={spark-jobs}"
    steps = ["helm install kube-prometheus-stack", "helm install rabbitmq", "helm install redis", "helm install minio",
             "kubectl apply -f k8s/overlays/example/namespace.yaml", "kubectl apply -k k8s/overlays/example", operator]
    pos = doc_positions(readme, steps)
    section = readme[readme.find("## From an empty cluster"):]
    r.check(all(p >= 0 for p in pos) and pos == sorted(pos) and jobs in section[pos[-1]:pos[-1] + 300],
            "k8s/README.md (\"From an empty cluster\") installs, in order: kube-prometheus-stack, RabbitMQ, Redis, MinIO, the namespace, the platform, "
            f"the Spark Operator watching spark-jobs ({jobs})", f"positions {dict(zip(steps, pos))}")
    steps = ["helm install kube-prometheus-stack", "helm dependency build", "helm install minio", "helm install psp", operator]
    pos = doc_positions(chart_readme, steps)
    section = chart_readme[chart_readme.find("## From an empty cluster"):]
    r.check(all(p >= 0 for p in pos) and pos == sorted(pos) and jobs in section[pos[-1]:pos[-1] + 300],
            "the chart's README.md (\"From an empty cluster\") installs, in order: kube-prometheus-stack, the dependencies, the chart, the Spark Operator "
            f"({jobs})", f"positions {dict(zip(steps, pos))}")
    r.check("VPC endpoint" in readme and "prefix list" in readme,
            "k8s/README.md says how to restrict S3 egress on AWS (a VPC endpoint and its prefix list)")
    # The Secrets the example overlay reads, with their keys.
    objs = renderings.get("kustomize:overlays/example", [])
    read: dict[str, set[str]] = {}
    for comp, owner, t in workloads(objs):
        for c in t["spec"]["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    read.setdefault(ref["name"], set()).add(ref["key"])
    read.setdefault("launcher-credentials", set()).update({"redis-url", "intake-token", "launcher-tokens"})
    example = K8S / "overlays" / "example" / "secrets.example.yaml"
    placeholders = {o["metadata"]["name"]: set((o.get("stringData") or {}) | (o.get("data") or {}))
                    for o in docs(example.read_text()) if o.get("kind") == "Secret"} if example.exists() else {}
    invalid = []
    for o in docs(example.read_text()) if example.exists() else []:
        try:
            kubernetes_validate.validate(o, KUBE_VERSIONS[0], strict=True)
        except (kubernetes_validate.ValidationError, kv_utils.SchemaNotFoundError) as e:
            invalid.append(f"{name_of(o)}: {getattr(e, 'message', e)}")
    r.check(example.exists() and not invalid, f"{example.relative_to(ROOT)}: valid Secrets (Kubernetes schema, strict)", "; ".join(invalid))
    missing = {s: sorted(keys - placeholders.get(s, set())) for s, keys in read.items() if keys - placeholders.get(s, set())}
    kustomization = yaml.safe_load((K8S / "overlays" / "example" / "kustomization.yaml").read_text())
    r.check(bool(read) and not missing and example.name not in json.dumps(kustomization.get("resources", [])),
            f"overlays/example/secrets.example.yaml has a placeholder of every Secret and key the example reads ({len(read)} Secrets) "
            "and is no resource of the overlay", f"missing {missing}")
    table = readme[readme.find("| Secret |"):]
    missing = [f"{s} {k}" for s, keys in read.items() for k in keys
               if not re.search(rf"^\|\s*`{re.escape(s)}`\s*\|[^\n]*`{re.escape(k)}`", table, re.M)]
    r.check(not missing, "k8s/README.md's table of Secrets lists every Secret and key (launcher-credentials: redis-url, "
            "intake-token, launcher-tokens)", f"missing {missing}")
    gitignore = (ROOT / ".gitignore").read_text().split()
    r.check("secrets.yaml" in gitignore, ".gitignore keeps filled-in secrets.yaml files out of git")


# Where the launcher's callers are documented: its examples of launcher-tokens and of curls to POST /launch.
LAUNCHER_DOCS = [ROOT / "README.md", K8S / "README.md", K8S / "overlays" / "example" / "kustomization.yaml",
                 K8S / "overlays" / "example" / "secrets.example.yaml", CHART / "README.md", CHART / "values.yaml",
                 CHART / "templates" / "NOTES.txt", DEPLOY / "README.md", DEPLOY / "launch-templates" / "README.md",
                 ROOT / "docs" / "security.md", DEPLOY / "stack.toml", ROOT / ".env.example"]
# A LAUNCHER_TOKENS entry: caller:token (the token may be left for a tool to fill in, as .env.example's).
CALLER_ENTRY = re.compile(r"^[A-Za-z0-9._-]{1,64}:")


def shell_commands(text: str) -> list[str]:
    """Each line holding `curl` with its continuation lines (ending in `\\`) joined."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if "curl " not in line:
            continue
        cmd, j = line, i
        while cmd.rstrip().endswith("\\") and j + 1 < len(lines):
            j += 1
            cmd = cmd.rstrip()[:-1] + " " + lines[j].strip()
        out.append(cmd)
    return out


def check_launcher_docs(r: Report) -> None:
    """The launcher's callers as documented: every example of launcher-tokens (LAUNCHER_TOKENS) is
    comma-separated `caller:token` pairs (the launcher refuses bare tokens and does not start), and every
    example curl to POST /launch sends `Authorization: Bearer` (directly, or through a variable set to it)."""
    bad_tokens, bad_curls, n_tokens, n_curls = [], [], 0, 0
    for path in LAUNCHER_DOCS:
        if not path.exists():
            bad_tokens.append(f"{path.relative_to(ROOT)} is missing")
            continue
        text = path.read_text()
        where = path.relative_to(ROOT)
        # Values given to the Secret key (kubectl --from-literal=launcher-tokens=...) or the variable.
        for m in re.finditer(r"(?:launcher-tokens|LAUNCHER_TOKENS)=(.+)$", text, re.M):
            value = m.group(1).strip().strip("'\"")
            entries = [e.strip().strip("'\"") for e in value.split(",") if e.strip()]
            n_tokens += 1
            if not entries or not all(CALLER_ENTRY.match(e) for e in entries):
                bad_tokens.append(f"{where}: launcher-tokens {value[:80]}")
        bearer_vars = set(re.findall(r"\b(\w+)=[\"']Authorization: Bearer ", text))
        for cmd in shell_commands(text):
            if not re.search(r"/launch(?![a-z])", cmd):
                continue
            n_curls += 1
            via_var = any(re.search(rf"-H \"\${{?{v}}}?\"", cmd) for v in bearer_vars)
            if "Authorization: Bearer" not in cmd and not via_var:
                bad_curls.append(f"{where}: {cmd.strip()[:120]}")
    r.check(n_tokens > 0 and not bad_tokens, f"every example of launcher-tokens is caller:token pairs ({n_tokens} examples)",
            "; ".join(bad_tokens[:6]))
    r.check(n_curls > 0 and not bad_curls, f"every example curl to POST /launch sends Authorization: Bearer ({n_curls} curls)",
            "; ".join(bad_curls[:6]))
    example = K8S / "overlays" / "example" / "secrets.example.yaml"
    value = next((str((o.get("stringData") or {}).get("launcher-tokens", "")) for o in docs(example.read_text())
                  if o.get("kind") == "Secret" and o["metadata"]["name"] == "launcher-credentials"), "")
    entries = [e for e in value.split(",") if e.strip()]
    r.check(len(entries) >= 1 and all(CALLER_ENTRY.match(e.strip()) for e in entries),
            f"secrets.example.yaml launcher-credentials launcher-tokens is caller:token pairs ({value})")
    readme = (K8S / "README.md").read_text()
    r.check("once it supports" not in readme, "k8s/README.md does not say the launcher will support its tokens later")


def compose_env_file(directory: Path) -> Path:
    """A .env for the compose checks, written by scripts/compose-env.sh (random secrets)."""
    path = directory / ".env"
    subprocess.run([str(COMPOSE_ENV), str(path)], check=True, capture_output=True, text=True)
    return path


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def check_root_compose(r: Report) -> None:
    """`docker compose up` from the repository root: docker-compose.yml includes deploy/docker-compose.yml;
    its settings come from .env (the seeds' names, every interpolated variable in .env.example), the
    secrets are required (`${VAR:?...}`, compose fails without them) and no default password appears;
    scripts/compose-env.sh writes a .env with random secrets once and never overwrites one; `make compose`
    runs it, then `docker compose up -d`; .env is git-ignored."""
    if not r.check(ROOT_COMPOSE.exists(), "docker-compose.yml at the repository root"):
        return
    root = yaml.safe_load(ROOT_COMPOSE.read_text()) or {}
    paths = [i if isinstance(i, str) else (i or {}).get("path") for i in root.get("include") or []]
    r.check(paths == ["deploy/docker-compose.yml"] and set(root) == {"include"},
            "docker-compose.yml includes deploy/docker-compose.yml (and defines nothing itself)", f"{root}")
    exe = shutil.which("docker-compose")
    with tempfile.TemporaryDirectory() as tmp:
        env_file = compose_env_file(Path(tmp))
        clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if exe:
            p = subprocess.run([exe, "--env-file", str(env_file), "-f", str(ROOT_COMPOSE), "config"], capture_output=True,
                               text=True, cwd=ROOT, env=clean)
            if p.returncode == 0:
                r.ok("docker-compose config renders docker-compose.yml (include supported)")
            else:
                # docker-compose 1.x predates `include` (Compose 2.20): the structure is checked above.
                r.check("include" in p.stderr, "docker-compose.yml: `include` needs Compose 2.20 (docker-compose 1.x here: "
                        "structure checked with PyYAML, deploy/docker-compose.yml rendered on its own)", p.stderr.strip()[:300])
            empty = Path(tmp) / "empty.env"
            empty.write_text("")
            p = subprocess.run([exe, "--env-file", str(empty), "-f", str(DEPLOY / "docker-compose.yml"), "config"],
                               capture_output=True, text=True, cwd=DEPLOY, env=clean)
            r.check(p.returncode != 0 and "Missing mandatory value" in p.stderr,
                    "without .env, compose refuses to start (the secrets are required)", (p.stdout + p.stderr).strip()[:300])
        # compose-env.sh: random secrets, owner-only, never overwritten.
        values = {}
        for line in env_file.read_text().splitlines():
            m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
            if m:
                values[m.group(1)] = m.group(2)
        required = [k for k, v in env_example().items() if v == ""]
        secrets = [values.get(k, "") for k in required]
        r.check(bool(required) and all(re.fullmatch(r"[0-9a-f]{32,}", s) for s in secrets) and len(set(secrets)) == len(secrets)
                and (env_file.stat().st_mode & 0o077) == 0,
                f"scripts/compose-env.sh fills every required secret of .env.example ({required}) with a distinct random value, "
                "file readable by its owner only", f"{dict(zip(required, secrets))}, mode {oct(env_file.stat().st_mode)}")
        before = env_file.read_text()
        subprocess.run([str(COMPOSE_ENV), str(env_file)], check=True, capture_output=True)
        mine = Path(tmp) / "mine.env"
        mine.write_text("RABBITMQ_PASSWORD=mine\n")
        subprocess.run([str(COMPOSE_ENV), str(mine)], check=True, capture_output=True)
        r.check(env_file.read_text() == before and mine.read_text() == "RABBITMQ_PASSWORD=mine\n",
                "scripts/compose-env.sh never overwrites an existing .env")
    # Variables: the seeds' names, every interpolated one documented, secrets required.
    texts = {p.relative_to(ROOT): p.read_text() for p in (ROOT_COMPOSE, DEPLOY / "docker-compose.yml")}
    compose_text = texts[Path("deploy/docker-compose.yml")]
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", compose_text))
    example = env_example()
    r.check(SEED_ENV <= set(example), f".env.example carries the seeds' variables {sorted(SEED_ENV)}", f"missing {sorted(SEED_ENV - set(example))}")
    r.check(used <= set(example), f".env.example lists every variable deploy/docker-compose.yml reads ({len(used)})",
            f"missing {sorted(used - set(example))}")
    loose = sorted({v for v in COMPOSE_SECRETS for m in re.finditer(rf"\$\{{{v}(:?[-?])?", compose_text) if m.group(1) != ":?"})
    r.check(COMPOSE_SECRETS <= used and not loose, f"compose requires {sorted(COMPOSE_SECRETS)} from .env (${{VAR:?...}}, never a default)",
            f"not required: {loose}; unused: {sorted(COMPOSE_SECRETS - used)}")
    scanned = {**texts, ENV_EXAMPLE.relative_to(ROOT): ENV_EXAMPLE.read_text(), COMPOSE_ENV.relative_to(ROOT): COMPOSE_ENV.read_text(),
               Path("deploy/README.md"): (DEPLOY / "README.md").read_text(),
               Path("deploy/rabbitmq/rabbitmq.conf"): (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()}
    found = {str(p): sorted({m.group(0) for m in DEFAULT_PASSWORDS.finditer(t)}) for p, t in scanned.items() if DEFAULT_PASSWORDS.search(t)}
    r.check(not found, "no default password in the compose artifacts (admin/admin, guest/guest, dev-token, minioadmin, ...)", f"{found}")
    gitignore = (ROOT / ".gitignore").read_text().split()
    r.check("/.env" in gitignore or ".env" in gitignore, ".gitignore keeps .env out of git")
    recipe = make_recipe("compose")
    r.check(len(recipe) >= 2 and recipe[0].startswith("scripts/compose-env.sh") and re.match(r"docker compose up -d\b", recipe[-1]) is not None,
            "`make compose` runs scripts/compose-env.sh, then `docker compose up -d`", f"recipe: {recipe}")


def shell_block(text: str, start: str) -> str:
    """The lines of a shell script from the first line starting with `start` to the end of that command:
    a function's body up to its closing `}`, else the command's continuation lines (ending in `\\`)."""
    lines = text.splitlines()
    i = next((n for n, l in enumerate(lines) if l.lstrip().startswith(start)), None)
    if i is None:
        return ""
    if lines[i].rstrip().endswith("{"):
        end = next((n for n in range(i + 1, len(lines)) if lines[n].startswith("}")), len(lines))
        return "\n".join(lines[i:end + 1])
    end = i
    while end < len(lines) - 1 and lines[end].rstrip().endswith("\\"):
        end += 1
    return "\n".join(lines[i:end + 1])


STACK_SCRIPT = ROOT / "scripts" / "stack.sh"
# What `make up` runs (the stack manager, crates/stack, reads it) and the broker's shell steps it names.
STACK_FILE = DEPLOY / "stack.toml"
RABBIT_NODE_SCRIPT = ROOT / "scripts" / "lib" / "rabbitmq-node.sh"


def stack_components() -> dict[str, dict]:
    """deploy/stack.toml's components by name."""
    return {c["name"]: c for c in tomllib.loads(STACK_FILE.read_text()).get("component", [])}


def stack_show(state: Path) -> tuple[dict[str, dict[str, str]], str]:
    """`scripts/stack.sh show` with the chaos topology on and `state` as its (not started) state folder:
    per component the environment `up` gives it, and the error when it failed. Starts nothing."""
    p = subprocess.run([str(STACK_SCRIPT), "show"], capture_output=True, text=True,
                       env=dict(os.environ, STACK_DIR=str(state), STACK_CHAOS="1"))
    if p.returncode != 0:
        return {}, (p.stderr or p.stdout).strip()[-400:]
    out: dict[str, dict[str, str]] = {}
    name = ""
    for line in p.stdout.splitlines():
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1]
            out[name] = {}
        elif line.startswith("env ") and name:
            k, _, v = line[4:].partition("=")
            out[name][k] = v
    return out, ""


def check_stack_rollup_key(r: Report) -> None:
    """`make up` gives the compactor and pool-selector (and the chaos topology's second replica) the same
    ROLLUP_HMAC_KEY: random, kept owner-only in the state folder, the same on every later start; no
    other component gets it. Reads what the stack manager would start (`stack.sh show`, twice)."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        first, err = stack_show(state)
        second, err2 = stack_show(state)
        if not r.check(bool(first) and not err and not err2, "scripts/stack.sh show prints what `make up` starts", err or err2):
            return
        key_file = state / "rollup-hmac-key"
        stored = key_file.read_text().strip() if key_file.exists() else ""
        holders = ("pool-selector", "pool-selector-2", "compactor")
        problems = []
        for run in (first, second):
            for name, env in run.items():
                got = env.get(ROLLUP_ENV)
                if name in holders:
                    if got != stored or not re.fullmatch(r"[0-9a-f]{64}", stored):
                        problems.append(f"{name}: {ROLLUP_ENV} {got!r}, the state's key {'set' if stored else 'missing'}")
                elif got is not None:
                    problems.append(f"{name} gets {ROLLUP_ENV}")
        missing = [h for h in holders if h not in first]
        if missing:
            problems.append(f"not started: {missing}")
        if key_file.exists() and key_file.stat().st_mode & 0o077:
            problems.append(f"{key_file.name} mode {oct(key_file.stat().st_mode)}")
        others = sorted(n for n in first if n not in holders)
        r.check(not problems, f"deploy/stack.toml (make up): the compactor and pool-selector (and the chaos replica) get the "
                f"same random {ROLLUP_ENV}, kept owner-only in the state folder and reused on a restart; "
                f"{', '.join(others)} do not", "; ".join(sorted(set(problems))[:6]))


def check_scripts(r: Report) -> None:
    """`make up` (deploy/stack.toml) and the fuzzer (scripts/fuzz.sh) run pool-selector without broker or
    intake settings, and the intake with its tokens and the broker; `make up` shares its rollup signing
    key between the compactor and pool-selector only."""
    fuzz = (ROOT / "scripts" / "fuzz.sh").read_text()
    forbidden = re.compile(r"\b(AMQP_\w*|INTAKE_\w*|RABBITMQ_\w*)=|amqp_url|AMQP_ENV|selector_env")
    components = stack_components()
    for name in ("pool-selector", "pool-selector-2"):
        env = components.get(name, {}).get("env", {})
        bad = sorted(k for k in env if re.match(r"(AMQP_|INTAKE_|RABBITMQ_)", k))
        bad += sorted(k for k, v in env.items() if "amqp" in str(v).lower() or "PRODUCER" in str(v))
        r.check(name in components and not bad, f"deploy/stack.toml: {name} started without AMQP or intake settings",
                f"found {bad}" if name in components else f"no component {name}")
    block = shell_block(fuzz, "start pool-selector ")
    bad = sorted({m.group(0) for m in forbidden.finditer(block)})
    r.check(bool(block) and not bad, "scripts/fuzz.sh: pool-selector started without AMQP or intake settings",
            f"found {bad}" if block else "no `start pool-selector ` in scripts/fuzz.sh")
    intake_env = components.get("intake", {}).get("env", {})
    r.check("INTAKE_TOKENS" in intake_env and "AMQP_URL" in intake_env,
            "deploy/stack.toml: the intake started with INTAKE_TOKENS and the broker's AMQP_URL", f"env: {sorted(intake_env)}")
    block = shell_block(fuzz, "start intake ")
    r.check("INTAKE_TOKENS=" in block and ("AMQP_URL=" in block or "AMQP_ENV" in block),
            "scripts/fuzz.sh: the intake started with INTAKE_TOKENS and the broker's AMQP_URL",
            block[:300] or "no `start intake ` in scripts/fuzz.sh")
    check_stack_rollup_key(r)


def check_prometheus(r: Report) -> None:
    def job_targets(config: dict, name: str) -> list[str]:
        job = next((j for j in config["scrape_configs"] if j["job_name"] == name), {})
        if job.get("metrics_path", "/metrics") != "/metrics":
            return []
        return [t for sc in job.get("static_configs", []) for t in sc["targets"]]

    def compactor_targets(config: dict) -> list[str]:
        return job_targets(config, COMPACTOR)

    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    r.check(compactor_targets(prom) == [f"compactor:{COMPACTOR_PORT}"],
            f"deploy/prometheus.yml scrapes the compactor (job compactor, compactor:{COMPACTOR_PORT}/metrics)",
            f"targets: {compactor_targets(prom)}")
    r.check(job_targets(prom, INTAKE) == [f"intake:{INTAKE_PORT}"],
            f"deploy/prometheus.yml scrapes the intake (job intake, intake:{INTAKE_PORT}/metrics)",
            f"targets: {job_targets(prom, INTAKE)}")
    promtool = shutil.which("promtool")
    if not r.check(promtool is not None, "promtool is installed (Debian package prometheus)"):
        return
    p = subprocess.run([promtool, "check", "config", str(DEPLOY / "prometheus.yml")], capture_output=True, text=True)
    r.check(p.returncode == 0, "promtool check config deploy/prometheus.yml", (p.stdout + p.stderr).strip()[-500:])
    local = subprocess.run([str(ROOT / "scripts" / "stack.sh"), "prometheus-config"], capture_output=True, text=True)
    if r.check(local.returncode == 0, "stack.sh prometheus-config generates the make-up variant", local.stderr[-300:]):
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write(local.stdout)
        try:
            p = subprocess.run([promtool, "check", "config", f.name], capture_output=True, text=True)
            r.check(p.returncode == 0, "promtool check config (make-up variant)", (p.stdout + p.stderr).strip()[-500:])
        finally:
            os.unlink(f.name)
        r.check(not re.search(r"(pool-selector-\d|relay|monitor|ingest-worker|compactor|intake|launcher):\d", local.stdout),
                "make-up variant has only local targets")
        local_config = yaml.safe_load(local.stdout)
        for name in (COMPACTOR, INTAKE, LAUNCHER):
            local_targets = job_targets(local_config, name)
            r.check(len(local_targets) == 1 and local_targets[0].startswith("127.0.0.1:"),
                    f"make-up variant scrapes the local {name}", f"targets: {local_targets}")


def dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append(t["expr"])
    return out


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, label names
    (inside {} or by/without(...)) or range/duration literals."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS or word.startswith("$"):
            continue
        if m.start() > 0 and e[m.start() - 1] in "$.0123456789":
            continue
        names.add(word)
    return names


def check_grafana(r: Report) -> None:
    dash = json.loads(DASHBOARD.read_text())
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uids = {d["uid"] for d in ds["datasources"]}
    panel_uids = {t["datasource"]["uid"] for p in dash["panels"] for t in p.get("targets", [])}
    r.check(bool(panel_uids) and panel_uids <= uids, f"dashboard queries use the provisioned datasource {sorted(uids)}")
    prov = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "pool-selector.yml").read_text())
    r.check(prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards", "dashboard provider reads the mounted folder")
    names = set().union(*(promql_metric_names(q) for q in dashboard_queries()))
    prefixes = ("pool_selector_", "relay_", "ingest_worker_", "pool_monitor_", "compactor_", "intake_", "launcher_")
    r.check(len(names) >= 20 and all(n.startswith(prefixes) for n in names),
            f"dashboard uses {len(names)} service metrics", f"unexpected: {sorted(n for n in names if not n.startswith(prefixes))}")
    ids = [p["id"] for p in dash["panels"]]
    r.check(len(ids) == len(set(ids)), "dashboard panel ids are unique")
    # The compactor: its lag and pending hours in one panel, and how fast hours get compacted.
    def panel_names(p: dict) -> set[str]:
        return set().union(*(promql_metric_names(t["expr"]) for t in p.get("targets", [])))
    lag = [p for p in dash["panels"] if {"compactor_lag_seconds", "compactor_pending_hours"} <= panel_names(p)]
    r.check(bool(lag) and lag[0]["title"] == "Compaction lag",
            "dashboard panel \"Compaction lag\" queries compactor_lag_seconds and compactor_pending_hours",
            f"panels: {[p['title'] for p in lag]}")
    r.check(any("compactor_hours_compacted_total" in panel_names(p) for p in dash["panels"]),
            "dashboard has a panel of hours compacted (compactor_hours_compacted_total)")
    # POST /events moved from pool-selector to the intake, and its counter with it.
    r.check("intake_events_accepted_total" in names and "pool_selector_events_accepted_total" not in names,
            "dashboard counts accepted events with intake_events_accepted_total (not pool-selector's old counter)")
    # The launcher's row: launches by state, attempts by outcome (relaunches), attempt durations, the outbox.
    panels = dash["panels"]
    row = next((i for i, p in enumerate(panels) if p["type"] == "row" and "launcher" in p["title"].lower()), None)
    after = panels[row + 1:] if row is not None else []
    after = after[:next((i for i, p in enumerate(after) if p["type"] == "row"), len(after))]
    row_names = set().union(set(), *(panel_names(p) for p in after))
    want = {"launcher_launches_total", "launcher_attempts_total", "launcher_attempt_duration_seconds_bucket", "launcher_outbox_depth"}
    by_state = any("by (state)" in t["expr"] and "launcher_launches_total" in t["expr"] for p in after for t in p.get("targets", []))
    by_outcome = any("by (outcome)" in t["expr"] and "launcher_attempts_total" in t["expr"] for p in after for t in p.get("targets", []))
    r.check(row is not None and want <= row_names and by_state and by_outcome,
            "dashboard row \"Launcher\": launches by state, attempts by outcome, attempt duration quantiles, outbox depth",
            f"row panels use {sorted(row_names)}")


# ---------------------------------------------------------------------------------------------------
# Chaos Mesh experiments (k8s/chaos)

CHAOS_MESH = K8S / "chaos"
CHAOS_MESH_SCHEMAS = {
    ("chaos-mesh.org/v1alpha1", "PodChaos"): K8S / "crds-schemas" / "podchaos-chaos-mesh-v1alpha1.json",
    ("chaos-mesh.org/v1alpha1", "NetworkChaos"): K8S / "crds-schemas" / "networkchaos-chaos-mesh-v1alpha1.json",
}


def check_chaos_mesh(r: Report) -> None:
    """k8s/chaos: every Chaos Mesh resource validates against its CRD schema (strict, as the API server would
    with --validate=strict), the validators reject a misspelt field, lasting faults have a duration, a
    selector in the platform's namespace names components that exist, and the experiments cover an
    availability zone's pods, S3 latency and a broker restart."""
    validators = {k: jsonschema.Draft202012Validator(json.loads(p.read_text())) for k, p in CHAOS_MESH_SCHEMAS.items()}
    for v in validators.values():
        jsonschema.Draft202012Validator.check_schema(v.schema)
    objs = [(path.name, obj) for path in sorted(CHAOS_MESH.glob("*.yaml")) for obj in docs(path.read_text())]
    r.check(bool(objs), f"k8s/chaos: {len(objs)} Chaos Mesh resources", "none found")
    for fname, obj in objs:
        key = (obj.get("apiVersion"), obj.get("kind"))
        if key not in validators:
            r.fail(f"k8s/chaos/{fname}: {key} has no CRD schema in k8s/crds-schemas")
            continue
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validators[key].iter_errors(obj)]
        spec = obj.get("spec") or {}
        if (key[1] == "NetworkChaos" or spec.get("action") == "pod-failure") and not spec.get("duration"):
            errors.append("a lasting fault needs spec.duration (else it lasts until the resource is deleted)")
        for sel in (spec.get("selector") or {}, (spec.get("target") or {}).get("selector") or {}):
            if "pool-selector" not in (sel.get("namespaces") or []):
                continue
            names = {(sel.get("labelSelectors") or {}).get("app.kubernetes.io/name")} - {None}
            for e in sel.get("expressionSelectors") or []:
                if e.get("key") == "app.kubernetes.io/name":
                    names |= set(e.get("values") or [])
            unknown = sorted(names - set(COMPONENTS))
            if unknown:
                errors.append(f"selects components that do not exist: {unknown}")
        r.check(not errors, f"k8s/chaos/{fname}: {name_of(obj)} valid (CRD schema, strict)", "; ".join(errors))
    for key, v in validators.items():
        sample = next((o for _, o in objs if (o.get("apiVersion"), o.get("kind")) == key), None)
        if sample is None:
            r.fail(f"k8s/chaos has no {key[1]} to test its validator with")
            continue
        bad = copy.deepcopy(sample)
        bad["spec"]["selector"]["labelSelector"] = {"app": "typo"}
        r.check(bool(list(v.iter_errors(bad))), f"{key[1]} validator rejects a misspelt field (spec.selector.labelSelector)")
    kinds = [(o.get("kind"), o.get("spec") or {}) for _, o in objs]
    r.check(any(k == "PodChaos" and "topology.kubernetes.io/zone" in (s.get("selector", {}).get("nodeSelectors") or {})
                for k, s in kinds), "k8s/chaos kills an availability zone's pods (PodChaos by topology.kubernetes.io/zone)")
    r.check(any(k == "NetworkChaos" and s.get("action") == "delay" for k, s in kinds),
            "k8s/chaos adds S3 latency (NetworkChaos delay)")
    r.check(any(k == "PodChaos" and "rabbitmq" in json.dumps(s.get("selector")) for k, s in kinds),
            "k8s/chaos restarts a broker (PodChaos on RabbitMQ)")


def kube_version_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def check_kube_floor(r: Report, renderings: dict[str, list[dict]]) -> None:
    """The oldest Kubernetes supported is one floor everywhere: Chart.yaml's kubeVersion is `>=KUBE_MIN.0-0`,
    the objects are validated against KUBE_MIN, k8s/README.md and the chart's README state it, and a pod
    with a `sleep` lifecycle action (the intake's preStop) needs no feature gate there (1.30+)."""
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    want = f">={KUBE_MIN}.0-0"
    r.check(meta.get("kubeVersion") == want and KUBE_VERSIONS[0] == KUBE_MIN,
            f"Chart.yaml kubeVersion {want!r}: the oldest version the objects are validated against ({KUBE_MIN})",
            f"Chart.yaml kubeVersion {meta.get('kubeVersion')!r}, validated against {KUBE_VERSIONS}")
    for doc in KUBE_MIN_DOCS:
        text = re.sub(r"\s+", " ", doc.read_text())
        stated = set(re.findall(r"Kubernetes (\d+\.\d+) or later", text))
        r.check(stated == {KUBE_MIN}, f"{doc.relative_to(ROOT)} states the floor: Kubernetes {KUBE_MIN} or later",
                f"states {sorted(stated) or 'none'}")
    def sleeps(c: dict) -> bool:
        hooks = c.get("lifecycle") or {}
        return any("sleep" in (hooks.get(h) or {}) for h in ("preStop", "postStart"))
    users = sorted({f"{source}: {name_of(owner)}" for source, objs in renderings.items()
                    for _, owner, t in workloads(objs)
                    for c in t["spec"].get("containers", []) + t["spec"].get("initContainers", []) if sleeps(c)})
    floor = ".".join(map(str, SLEEP_ACTION_ON_BY_DEFAULT))
    r.check(not users or kube_version_tuple(KUBE_MIN) >= SLEEP_ACTION_ON_BY_DEFAULT,
            f"the `sleep` lifecycle action ({len(users)} workloads over the renderings: the intake's preStop) needs "
            f"no feature gate at Kubernetes {KUBE_MIN} (on by default from {floor})",
            f"used by {users[:3]}, but the floor {KUBE_MIN} is below {floor}")


def cmd_static() -> int:
    r = Report()
    section("kustomize")
    renderings = render_kustomize(r)
    section("helm (Helm v4 library through helm-python-sdk)")
    renderings.update(render_helm(r))
    section("schemas (kubernetes-validate strict; CRD schemas in k8s/crds-schemas)")
    validate_objects(r, renderings)
    check_kube_floor(r, renderings)
    # The platform's own namespace; the Spark jobs namespace's objects are check_spark_jobs's.
    platform = {source: platform_objects(objs) for source, objs in renderings.items()}
    section("consistency")
    for source, objs in platform.items():
        consistency(r, source, objs)
    parity(r, renderings)
    section("compactor")
    for source, objs in platform.items():
        check_compactor(r, source, objs)
    section("intake: objects, and who reaches it (producers, Prometheus; nobody else)")
    for source, objs in platform.items():
        check_intake(r, source, objs)
    section("hardening: accounts, Secrets, pool-selector read only, the rollup signing key, egress (storage, API server), digests, "
            "relay admin port, IAM")
    for source, objs in platform.items():
        check_hardening(r, source, objs)
        check_rollup_signing(r, source, objs)
    check_iam(r)
    section("namespaces: Pod Security `restricted`, default deny both ways; zone spread and PDBs")
    for source, objs in renderings.items():
        check_namespaces(r, source, objs)
        check_zone_spread(r, source, platform[source])
    section("launcher: objects, templates ConfigMap, RBAC (against its backend's calls), who reaches it; its SparkApplications")
    for source, objs in renderings.items():
        check_launcher(r, source, objs)
    check_launcher_rbac_source(r)
    check_spark_applications(r)
    section("the Spark jobs namespace, its driver's RBAC and policies; the Spark job image")
    for source, objs in renderings.items():
        check_spark_jobs(r, source, objs)
    check_spark_image(r)
    section("alerts (PrometheusRule, promtool check and test rules, runbooks) and the dashboard ConfigMap")
    check_prometheus_rules(r, renderings)
    check_alert_tests(r)
    check_dashboard_configmaps(r, renderings)
    section("dependencies: RabbitMQ's max_message_size; documented install order and Secrets")
    check_rabbitmq_configs(r, renderings)
    check_install_docs(r, renderings)
    check_launcher_docs(r)
    section("prometheus adapter")
    check_adapter(r, renderings)
    section("Dockerfile and docker-compose (root compose.yaml, .env, no default password); no registry host anywhere")
    check_registry_hosts(r)
    check_dockerfile(r)
    check_compose(r)
    check_root_compose(r)
    section("local scripts (make up, the fuzzer)")
    check_scripts(r)
    section("Prometheus")
    check_prometheus(r)
    section("Grafana")
    check_grafana(r)
    section("Chaos Mesh experiments (k8s/chaos) against their CRD schemas")
    check_chaos_mesh(r)
    return r.done("artifact checks")


# ---------------------------------------------------------------------------------------------------
# Live checks against a running stack


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def exposed_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def read_env(path: str) -> dict[str, str]:
    env = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"export (\w+)='(.*)'$", line)
        if m:
            env[m.group(1)] = m.group(2)
    return env


def process_env(pid_file: Path) -> dict[str, str] | None:
    """The environment of the process whose pid is in pid_file (None: no such process, or unreadable)."""
    try:
        raw = Path(f"/proc/{pid_file.read_text().strip()}/environ").read_bytes()
    except (OSError, ValueError):
        return None
    return dict(v.split("=", 1) for v in raw.decode(errors="replace").split("\0") if "=" in v)


def check_live_stack_settings(r: Report, env: dict[str, str]) -> None:
    """The running compactor and pool-selector hold the same ROLLUP_HMAC_KEY, the stack's key
    (STACK_DIR/rollup-hmac-key), and no other service has it; the running broker's rabbitmq.conf
    (RABBIT_DIR of STACK_DIR/settings) sets max_message_size to ingest-worker's MAX_MESSAGE_BYTES."""
    state = Path(env.get("STACK_DIR", ""))
    if not r.check(bool(env.get("STACK_DIR")) and (state / "run").is_dir(), f"the env file names the stack's folder ({state})"):
        return
    key_file = state / "rollup-hmac-key"
    stored = key_file.read_text().strip() if key_file.exists() else ""
    problems = []
    for pid_file in sorted((state / "run").glob("*.pid")):
        name = pid_file.stem
        penv = process_env(pid_file)
        if penv is None:
            if name in ROLLUP_HOLDERS:
                problems.append(f"{name}: its environment cannot be read")
            continue
        got = penv.get(ROLLUP_ENV)
        if name in ROLLUP_HOLDERS or name == "pool-selector-2":
            if not stored or got != stored:
                problems.append(f"{name}: {ROLLUP_ENV} {'is not the stack key' if got else 'not set'}")
        elif got is not None:
            problems.append(f"{name} has {ROLLUP_ENV}")
    r.check(bool(stored) and not problems, f"the running compactor and pool-selector hold the stack's {ROLLUP_ENV} "
            f"({key_file}), no other process of the stack does", "; ".join(problems[:6]) or "no key file")
    # STACK_DIR/settings: NAME=value lines, values quoted by bash's printf %q.
    settings = {}
    if (state / "settings").exists():
        for line in (state / "settings").read_text().splitlines():
            m = re.match(r"^(\w+)=(.*)$", line)
            if m:
                settings[m.group(1)] = (shlex.split(m.group(2)) or [""])[0]
    conf = Path(settings.get("RABBIT_DIR") or "/nonexistent") / "rabbitmq.conf"
    want = worker_max_message_bytes()
    got = rabbitmq_max_message_size(conf.read_text()) if conf.exists() else []
    r.check(got == [want], f"the running broker's {conf}: max_message_size = {want} (ingest-worker's MAX_MESSAGE_BYTES)",
            f"got {got}")


def cmd_live(env_file: str) -> int:
    env = read_env(env_file)
    r = Report()
    urls = {
        "pool-selector": env["STACK_SELECTOR_URL"],
        "relay": env["STACK_RELAY_URL"],
        "ingest-worker": env["STACK_WORKER_URL"],
        "monitor": env["STACK_MONITOR_URL"],
        "compactor": env["STACK_COMPACTOR_URL"],
        "intake": env["STACK_INTAKE_URL"],
    }
    if env.get("STACK_LAUNCHER_URL"):
        urls[LAUNCHER] = env["STACK_LAUNCHER_URL"]
    # The relay serves /metrics on its admin listener only.
    metrics_urls = dict(urls, relay=env.get("STACK_RELAY_ADMIN_URL", env["STACK_RELAY_URL"]))
    section("metrics exported by the running services")
    exported: set[str] = set()
    for comp, url in metrics_urls.items():
        status, text = http_get(url + "/metrics")
        names = exposed_names(text) if status == 200 else set()
        r.check(status == 200 and bool(names), f"{comp} /metrics answers ({len(names)} series names)", f"HTTP {status}")
        exported |= names
    used: dict[str, set[str]] = {}
    for q in dashboard_queries():
        for n in promql_metric_names(q):
            used.setdefault(n, set()).add("dashboard")
    read, served = adapter_metric_names()
    for n in read:
        used.setdefault(n, set()).add("prometheus adapter rule")
    used.setdefault(DESIRED_METRIC, set()).add("HPA")
    missing = {n: sorted(w) for n, w in used.items() if n not in exported}
    r.check(not missing, f"all {len(used)} metric names used by the dashboard, adapter and HPA are exported",
            "; ".join(f"{n} (used by {', '.join(w)})" for n, w in sorted(missing.items())))

    section("probe paths of the manifests on the running services")
    p = subprocess.run(["kubectl", "kustomize", str(K8S / "base")], capture_output=True, text=True, check=True)
    for d in docs(p.stdout):
        if d["kind"] != "Deployment":
            continue
        comp = d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        if comp not in urls:
            r.fail(f"{comp}: not running in this stack (no STACK_{comp.upper()}_URL in the env file)")
            continue
        c = d["spec"]["template"]["spec"]["containers"][0]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if kind in c:
                path = c[kind]["httpGet"]["path"]
                status, body = http_get(urls[comp] + path)
                r.check(status == 200, f"{comp} {kind} GET {path} → 200", f"HTTP {status} {body[:200]}")

    section("make up's processes: the rollup signing key, the broker's max_message_size")
    check_live_stack_settings(r, env)

    section("Prometheus (config generated from deploy/prometheus.yml)")
    prom = env["STACK_PROMETHEUS_URL"]
    deadline = time.time() + 60
    bad: list[str] = ["not read yet"]
    while time.time() < deadline:
        status, body = http_get(prom + "/api/v1/targets")
        if status == 200:
            targets = json.loads(body)["data"]["activeTargets"]
            bad = [f"{t['labels']['job']} {t['health']} {t.get('lastError', '')}" for t in targets if t["health"] != "up"]
            jobs = {t["labels"]["job"] for t in targets}
            if not bad and set(COMPONENTS) <= jobs:
                break
        time.sleep(2)
    r.check(not bad, "every Prometheus target is up", "; ".join(bad))
    queries = dashboard_queries()
    deadline = time.time() + 90
    pending = {q: "not run" for q in queries}
    while pending and time.time() < deadline:
        for q in list(pending):
            expr = q.replace("$__rate_interval", "30s").replace("$__range", "5m")
            status, body = http_get(prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            if status != 200:
                pending[q] = f"HTTP {status}: {body[:200]}"
                if status == 400:
                    break
                continue
            result = json.loads(body)["data"]["result"]
            if result:
                del pending[q]
            else:
                pending[q] = "no data"
        if pending:
            time.sleep(3)
    r.check(not pending, f"all {len(queries)} dashboard queries run in Prometheus and return data",
            "; ".join(f"{q} → {why}" for q, why in list(pending.items())[:6]))
    return r.done("live artifact checks")


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] == "static":
        return cmd_static()
    if len(argv) == 3 and argv[1] == "live":
        return cmd_live(argv[2])
    if len(argv) == 2 and argv[1] == "alert-tests":
        r = Report()
        section("alerts: promtool test rules")
        check_alert_tests(r)
        return r.done("alert tests")
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
