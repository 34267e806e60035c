#!/usr/bin/env python3
"""Every environment variable the deployment artifacts set for a service is one its binary reads.

    check_env_vars.py [--target-dir DIR] [--profile auto|release|debug]

What a binary reads is derived from the binary itself: `<binary> --help` lists every clap argument with
its variable (`[env: NAME=...]`, `[env: NAME]`), and the few variables read outside clap are in
OUTSIDE_CLAP below. The binaries are taken from TARGET_DIR/release or TARGET_DIR/debug (TARGET_DIR:
--target-dir, else $CARGO_TARGET_DIR, else ./target); with --profile auto (the default) the more recently
built of the two, so a stale release build does not hide (or invent) a variable `make test`'s fresh debug
build knows.

What the artifacts set, per service container:
  * `kubectl kustomize` of k8s/base and of every overlay in k8s/overlays;
  * the Helm chart rendered with its default values, every example values file (ci/*-values.yaml) and
    the value sets scripts/check_artifacts.py renders;
  * deploy/docker-compose.yml (`environment` of the services built from deploy/Dockerfile).
Kubernetes containers: `env` names, and the keys of the ConfigMaps (and rendered Secrets) pulled in by
`envFrom` (with its prefix). A variable the container itself references as $(NAME) in its command, args or
other variables is consumed by Kubernetes and needs no reader. A container maps to a binary by its image
(`.../<binary>[:tag|@digest]`), else its name, else its command; compose services by their BIN build
argument, else their image.

Prints one line per (artifact, service, variable) a binary does not read and exits 1; exits 1 as well when
a binary is missing (build first) or a container cannot be mapped to a binary. Prints a summary when clean.
Needs kubectl and the repo venv (.venv: PyYAML, helm-python-sdk), like scripts/check_artifacts.py.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
CHART = ROOT / "helm" / "pool-selector-platform"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
ENV_IN_HELP = re.compile(r"\[env:\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=[^\]]*)?\]")
K8S_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

# Variables read outside `--help`. Every clap `env` attribute shows in --help except on hidden arguments
# (the seed-compatibility aliases S3_BUCKET_NAME, AWS_KEY_ID, ... of crates/core/src/storage.rs, which the
# artifacts must not use). Found with `grep -rn 'std::env::var\|from_env' crates/*/src`:
#   * event-generator, with an amqp:// sink, reads the AMQP_* settings through
#     pool_amqp::AmqpArgs::from_env (crates/event-generator/src/sink/amqp.rs): the arguments
#     ingest-worker takes on its command line, so their names come from ingest-worker's --help.
# Deliberately absent, because no binary reads them: RUST_LOG (the log filter is LOG_LEVEL,
# crates/core/src/telemetry.rs builds its EnvFilter from it), and the AWS SDK's standard variables other
# than those in --help (AWS_SESSION_TOKEN, AWS_DEFAULT_REGION, AWS_ALLOW_HTTP, AWS_WEB_IDENTITY_TOKEN_FILE,
# ...): the S3 client is built with object_store's AmazonS3Builder::new(), not from_env()
# (crates/core/src/storage.rs).
OUTSIDE_CLAP: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    "event-generator": [("ingest-worker", re.compile(r"^AMQP_"))],
}


def die(msg: str) -> None:
    print(f"check_env_vars: error: {msg}", file=sys.stderr)
    sys.exit(1)


def workspace_binaries() -> list[str]:
    """The workspace's binaries: every crate with a src/main.rs, by its package name."""
    out = []
    for cargo in sorted((ROOT / "crates").glob("*/Cargo.toml")):
        if (cargo.parent / "src" / "main.rs").exists():
            m = re.search(r'^name\s*=\s*"([^"]+)"', cargo.read_text(), re.M)
            if m:
                out.append(m.group(1))
    return out


def find_binary(target: Path, name: str, profile: str) -> Path | None:
    found = [p for p in (target / "release" / name, target / "debug" / name) if p.is_file() and os.access(p, os.X_OK)]
    if profile != "auto":
        found = [p for p in found if p.parent.name == profile]
    if not found:
        return None
    # The most recently built; release on a tie (max keeps the first of equals).
    return max(found, key=lambda p: p.stat().st_mtime)


def read_vars(binary: Path) -> set[str]:
    """The variables in `<binary> --help` (clap's long help lists every argument's `env`)."""
    try:
        p = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except (OSError, subprocess.TimeoutExpired) as e:
        die(f"{binary} --help: {e}")
    if p.returncode != 0:
        die(f"{binary} --help exited {p.returncode}: {p.stderr.strip()[:300]}")
    names = set(ENV_IN_HELP.findall(p.stdout))
    if not names:
        die(f"{binary} --help lists no [env: ...] at all; is it a clap binary of this workspace?")
    return names


# ---------------------------------------------------------------------------------------------------
# Renderings


def render_kustomize() -> dict[str, list[dict]]:
    out = {}
    dirs = [K8S / "base"] + sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
    for d in dirs:
        p = subprocess.run(["kubectl", "kustomize", str(d)], capture_output=True, text=True)
        if p.returncode != 0:
            die(f"kubectl kustomize {d.relative_to(ROOT)}: {p.stderr.strip()[:500]}")
        out[f"kustomize:{d.relative_to(K8S)}"] = [o for o in yaml.safe_load_all(p.stdout) if o]
    return out


def helm_value_sets() -> dict[str, dict]:
    sets: dict[str, dict] = {"defaults": {}}
    for f in sorted((CHART / "ci").glob("*-values.yaml")):
        sets[f"ci/{f.name}"] = yaml.safe_load(f.read_text()) or {}
    try:
        sys.path.insert(0, str(ROOT / "scripts"))
        from check_artifacts import HELM_VARIANTS  # the value sets the artifact checks render
        for name, values in HELM_VARIANTS.items():
            sets.setdefault(name, values)
    except ImportError as e:
        die(f"importing scripts/check_artifacts.py for its Helm value sets: {e}")
    return sets


def render_helm() -> dict[str, list[dict]]:
    try:
        import helm_python as helm
    except ImportError:
        die("helm-python-sdk is missing: run with the repo venv (.venv/bin/python), see scripts/install-deps.sh")
    out = {}
    for name, values in helm_value_sets().items():
        with helm.Chart.load(str(CHART)) as chart:
            try:
                rendered = chart.render(values or None, name="psp", namespace="pool-selector", is_install=True)
            except helm.HelmError as e:
                die(f"helm template ({name}): {e}")
        objs = []
        for path, text in sorted(rendered.items()):
            if not path.endswith("NOTES.txt"):
                objs.extend(o for o in yaml.safe_load_all(text) if o)
        out[f"helm:{name}"] = objs
    return out


# ---------------------------------------------------------------------------------------------------
# What each service container sets


def image_binary(image: str, binaries: set[str]) -> str | None:
    last = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return last if last in binaries else None


def k8s_containers(objs: list[dict], binaries: set[str]):
    """(service, binary or None, {variable: where}, variables Kubernetes itself consumes, problems)."""
    configmaps = {o["metadata"]["name"]: o.get("data") or {} for o in objs if o["kind"] == "ConfigMap"}
    secrets = {o["metadata"]["name"]: {**(o.get("data") or {}), **(o.get("stringData") or {})}
               for o in objs if o["kind"] == "Secret"}
    for o in objs:
        if o["kind"] == "Deployment" or o["kind"] == "StatefulSet" or o["kind"] == "DaemonSet" or o["kind"] == "Job":
            pod = o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            pod = o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        else:
            continue
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            service = f"{o['kind']}/{o['metadata']['name']}/{c['name']}"
            binary = (image_binary(c.get("image", ""), binaries)
                      or (c["name"] if c["name"] in binaries else None)
                      or next((Path(a).name for a in c.get("command", [])[:1] if Path(a).name in binaries), None))
            env: dict[str, str] = {}
            problems = []
            for e in c.get("env", []):
                env[e["name"]] = "env"
            for ef in c.get("envFrom", []):
                prefix = ef.get("prefix", "")
                if "configMapRef" in ef:
                    name = ef["configMapRef"]["name"]
                    if name not in configmaps:
                        problems.append(f"envFrom ConfigMap {name} is not rendered: its keys cannot be checked")
                    for k in configmaps.get(name, {}):
                        env[prefix + k] = f"ConfigMap {name}"
                elif "secretRef" in ef:
                    name = ef["secretRef"]["name"]
                    if name not in secrets:
                        problems.append(f"envFrom Secret {name} is created out of band: its keys cannot be checked "
                                        "(read each key with env[].valueFrom.secretKeyRef instead)")
                    for k in secrets.get(name, {}):
                        env[prefix + k] = f"Secret {name}"
            texts = list(c.get("command", [])) + list(c.get("args", [])) + [e.get("value", "") for e in c.get("env", [])]
            consumed = {m for t in texts for m in K8S_REF.findall(str(t))}
            yield service, binary, env, consumed, problems


def compose_services(binaries: set[str]):
    compose = yaml.safe_load(COMPOSE.read_text())
    for name, s in (compose.get("services") or {}).items():
        bin_arg = ((s.get("build") or {}).get("args") or {}).get("BIN") if isinstance(s.get("build"), dict) else None
        binary = bin_arg if bin_arg in binaries else image_binary(s.get("image", ""), binaries)
        if binary is None and not bin_arg:
            continue  # a third-party image (RabbitMQ, Redis, MinIO, Prometheus, ...)
        raw = s.get("environment") or {}
        if isinstance(raw, list):
            raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
        env = {k: "environment" for k in raw}
        problems = [] if binary else [f"build argument BIN={bin_arg} is no binary of the workspace"]
        yield name, binary, env, set(), problems


# ---------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target"))
    ap.add_argument("--profile", choices=["auto", "release", "debug"], default="auto")
    args = ap.parse_args(argv[1:])
    target = Path(args.target_dir)
    if not target.is_absolute():
        target = ROOT / target

    names = workspace_binaries()
    if not names:
        die(f"no binary crates under {ROOT / 'crates'}")
    binaries = set(names)

    artifacts: list[tuple[str, list]] = []
    for source, objs in {**render_kustomize(), **render_helm()}.items():
        artifacts.append((source, list(k8s_containers(objs, binaries))))
    artifacts.append((str(COMPOSE.relative_to(ROOT)), list(compose_services(binaries))))

    # Only the binaries the artifacts run are needed (benchmark tools are never deployed), plus those
    # whose variables a deployed one borrows.
    needed = {binary for _, containers in artifacts for _, binary, *_ in containers if binary}
    needed |= {source for b in needed for source, _ in OUTSIDE_CLAP.get(b, [])}
    paths = {n: find_binary(target, n, args.profile) for n in sorted(needed)}
    missing = sorted(n for n, p in paths.items() if p is None)
    if missing:
        where = " or ".join(str(target / p) for p in (["release", "debug"] if args.profile == "auto" else [args.profile]))
        die(f"no built binary for {', '.join(missing)} in {where}: build first "
            "(`cargo build --release --workspace`, or `make test`, whose test run builds the debug binaries)")
    reads = {n: read_vars(p) for n, p in paths.items()}
    for binary, borrowed in OUTSIDE_CLAP.items():
        for source, pattern in borrowed:
            reads.setdefault(binary, set()).update(v for v in reads.get(source, set()) if pattern.match(v))

    violations: set[tuple[str, str, str, str]] = set()
    checked_vars = checked_containers = 0
    for source, containers in artifacts:
        for service, binary, env, consumed, problems in containers:
            checked_containers += 1
            for p in problems:
                violations.add((source, service, "-", p))
            if binary is None:
                violations.add((source, service, "-", "cannot tell which binary it runs (image, name and command name none)"))
                continue
            for var, where in env.items():
                checked_vars += 1
                if var in reads[binary] or var in consumed:
                    continue
                violations.add((source, service, var, f"set ({where}) but {binary} does not read it (not in `{binary} --help`)"))

    used = ", ".join(sorted({str(p.parent.relative_to(target)) for p in paths.values()}))
    if violations:
        for source, service, var, why in sorted(violations):
            print(f"{source}  {service}  {var}: {why}")
        print(f"\ncheck_env_vars: {len(violations)} violation(s) in {checked_containers} service containers of "
              f"{len(artifacts)} renderings (binaries: {target}/{used})", file=sys.stderr)
        return 1
    print(f"check_env_vars: {checked_vars} variables set for {checked_containers} service containers in "
          f"{len(artifacts)} renderings, all read by their binaries (binaries: {target}/{used})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
