"""Tests of k8s/scripts/bootstrap-secrets.sh (k8s/README.md, "From an empty cluster", step 7): the real
script against a stub `kubectl` first on PATH, no cluster needed.

The stub keeps the cluster's Secrets per namespace in a JSON file (`get secret ... -o jsonpath={.data.KEY}`,
`create secret generic --from-file ... --dry-run=client -o yaml`, `apply -f -`), logs every call with its
stdin, runs what `exec` runs locally against a stub `rabbitmqctl` (a JSON file of the broker's users), and
only records `run` (the topology's pod, the mc pod and the mc script on its stdin).

    python3 -m unittest discover -s scripts -p 'test_*.py'      (`make python-tests` runs it)
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path
from urllib.parse import quote, unquote

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "k8s" / "scripts" / "bootstrap-secrets.sh"
SECRETS_EXAMPLE = ROOT / "k8s" / "overlays" / "example" / "secrets.example.yaml"
PERMISSIONS = ROOT / "deploy" / "rabbitmq" / "permissions.tsv"
IAM = ROOT / "k8s" / "iam"

NS = "pool-selector"
# The dependency charts' generated credentials (passwords with URL characters: the Redis URLs must encode it).
RABBITMQ_ADMIN_PASSWORD = "Rabbit-Admin-Pw-7f3a2c"
REDIS_PASSWORD = "redis/Pa55+word=9d41"
MINIO_ROOT_USER = "minio-root-user-51be"
MINIO_ROOT_PASSWORD = "Minio-Root-Pw-9c2e6b"
SEEDED = [RABBITMQ_ADMIN_PASSWORD, REDIS_PASSWORD, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD]
DEPENDENCIES = {  # namespace, Secret, key
    "RabbitMQ": ("messaging", "rabbitmq", "rabbitmq-password"),
    "Redis": ("cache", "redis", "redis-password"),
    "MinIO": ("storage", "minio", "rootUser"),  # the first key read
}

# The platform's RabbitMQ users and their roles in permissions.tsv; the MinIO users and their policies.
RABBIT_ROLES = {"pool-producer": "producer", "pool-worker": "worker", "pool-monitor": "monitor"}
S3_USERS = {
    "pool-selector": ("pool-selector-s3-readonly", "pool-selector-s3-readonly"),  # Secret, policy
    "ingest-worker": ("ingest-worker-credentials", "ingest-worker-s3-writer"),
    "compactor": ("compactor-credentials", "compactor-s3-writer"),
}

KUBECTL_STUB = r'''
import base64, json, os, subprocess, sys

state_path, log_path = os.environ["KUBECTL_STUB_STATE"], os.environ["KUBECTL_STUB_LOG"]
argv = sys.argv[1:]


def fail(message, code=1):
    sys.stderr.write(message + "\n")
    sys.exit(code)


ns, rest, i = "default", [], 0
while i < len(argv):
    a = argv[i]
    if a == "--":
        rest.extend(argv[i:])
        break
    if a in ("-n", "--namespace"):
        ns, i = argv[i + 1], i + 2
        continue
    rest.append(a)
    i += 1
head = rest[: rest.index("--")] if "--" in rest else rest
verb = rest[0] if rest else ""
reads_stdin = verb == "apply" or (verb in ("exec", "run") and ("-i" in head or "--stdin" in head))
stdin = sys.stdin.read() if reads_stdin else None
with open(log_path, "a") as log:
    log.write(json.dumps({"argv": argv, "namespace": ns, "verb": verb, "stdin": stdin}) + "\n")
with open(state_path) as f:
    state = json.load(f)
secrets = state["secrets"].setdefault(ns, {})


def option(name):
    for j, a in enumerate(head):
        if a == name and j + 1 < len(head):
            return head[j + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


if verb == "get" and rest[1] == "namespace":
    if rest[2] not in state["namespaces"]:
        fail(f'Error from server (NotFound): namespaces "{rest[2]}" not found')
    print(f"namespace/{rest[2]}")
elif verb == "get" and rest[1] == "secret":
    name, output = rest[2], option("-o")
    if not (output and output.startswith("jsonpath={.data.") and output.endswith("}")):
        fail(f"kubectl stub: unsupported output {output!r}", 2)
    if name not in secrets:
        if "--ignore-not-found" in rest:
            sys.exit(0)
        fail(f'Error from server (NotFound): secrets "{name}" not found')
    sys.stdout.write(secrets[name].get(output[len("jsonpath={.data."):-1], ""))
elif verb == "create" and rest[1:3] == ["secret", "generic"]:
    name, data = rest[3], {}
    if "--dry-run=client" not in rest or option("-o") != "yaml":
        fail("kubectl stub: create secret only with --dry-run=client -o yaml", 2)
    for a in rest[4:]:
        if a.startswith("--from-literal"):
            fail("kubectl stub: --from-literal puts the value on a command line", 2)
        if a.startswith("--from-file="):
            key, path = a[len("--from-file="):].split("=", 1)
            with open(path, "rb") as f:
                data[key] = base64.b64encode(f.read()).decode()
    lines = ["apiVersion: v1", "data:"] + [f"  {k}: {data[k]}" for k in sorted(data)]
    lines += ["kind: Secret", "metadata:", "  creationTimestamp: null", f"  name: {name}", f"  namespace: {ns}"]
    print("\n".join(lines))
elif verb == "apply":
    if rest[1:] != ["-f", "-"]:
        fail("kubectl stub: apply only -f -", 2)
    section, data, meta = None, {}, {}
    for line in stdin.splitlines():
        if not line.startswith(" "):
            section = line.rstrip(":") if line.endswith(":") else None
            if line.startswith("kind:") and line.split()[1] != "Secret":
                fail("kubectl stub: apply only a Secret", 2)
        elif section == "data":
            key, value = line.strip().split(": ", 1)
            data[key] = value
        elif section == "metadata":
            key, value = line.strip().split(": ", 1)
            meta[key] = value
    target = meta.get("namespace", ns)
    if target != ns:
        fail(f"the namespace from the provided object {target!r} does not match {ns!r}")
    if ns not in state["namespaces"]:
        fail(f'Error from server (NotFound): namespaces "{ns}" not found')
    verb = "configured" if meta["name"] in secrets else "created"
    secrets[meta["name"]] = data
    with open(state_path, "w") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    print(f"secret/{meta['name']} {verb}")
elif verb == "exec":
    command = rest[rest.index("--") + 1:]
    if command[0] not in ("sh", "rabbitmqctl"):
        fail(f"kubectl stub: exec of {command[0]}", 2)
    sys.exit(subprocess.run(command, input=(stdin or "").encode()).returncode)
elif verb == "run":
    pass  # recorded in the log (its stdin too): the test reads the pods and the mc script there
else:
    fail(f"kubectl stub: unsupported call {argv}", 2)
'''

RABBITMQCTL_STUB = r'''
import json, os, sys

path = os.environ["RABBITMQCTL_STUB_STATE"]
with open(path) as f:
    users = json.load(f)
args = [a for a in sys.argv[1:] if a not in ("--quiet", "-q")]
command, rest = args[0], args[1:]


def fail(message, code=70):
    sys.stderr.write(message + "\n")
    sys.exit(code)


if command == "list_users":
    print("user\ttags")
    for name, user in sorted(users.items()):
        print(f"{name}\t[{', '.join(user['tags'])}]")
    sys.exit(0)
if command in ("add_user", "change_password"):
    if len(rest) != 1:
        fail(f"rabbitmqctl stub: {command} takes the password on stdin, not on the command line", 64)
    if (command == "add_user") == (rest[0] in users):
        fail(f"rabbitmqctl stub: {command} {rest[0]}: user exists: {rest[0] in users}")
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        fail("rabbitmqctl stub: no password on stdin")
    users.setdefault(rest[0], {"tags": [], "permissions": {}})["password"] = password
elif command == "set_user_tags":
    users[rest[0]]["tags"] = rest[1:]
elif command == "set_permissions":
    if rest[0] != "-p" or len(rest) != 6:
        fail(f"rabbitmqctl stub: set_permissions {rest}", 64)
    users[rest[2]]["permissions"][rest[1]] = rest[3:]
else:
    fail(f"rabbitmqctl stub: unsupported {command}", 64)
with open(path, "w") as f:
    json.dump(users, f, indent=1, sort_keys=True)
'''


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def example_secrets() -> dict[str, set[str]]:
    """The Secrets of secrets.example.yaml and their keys (its stringData)."""
    out: dict[str, set[str]] = {}
    for doc in SECRETS_EXAMPLE.read_text().split("\n---\n"):
        section, name, keys = None, None, set()
        for line in doc.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line.startswith(" "):
                section = line.split(":")[0]
            elif section == "metadata" and line.strip().startswith("name:"):
                name = line.split(":", 1)[1].strip()
            elif section == "stringData":
                keys.add(line.strip().split(":")[0])
        if name:
            out[name] = keys
    return out


def manifest_secret_refs() -> set[tuple[str, str]]:
    """(Secret, key) of every secretKeyRef / secretTargetRef in k8s/base, k8s/components and the overlays."""
    refs = set()
    for folder in ("base", "components", "overlays"):
        for path in (ROOT / "k8s" / folder).rglob("*.yaml"):
            if path.name == "secrets.example.yaml":
                continue
            lines = path.read_text().splitlines()
            for i, line in enumerate(lines):
                if re.match(r"\s*(secretKeyRef|- parameter):", line):
                    near = dict(
                        m.groups()
                        for m in (re.match(r"\s*(name|key):\s*(\S+)\s*$", x) for x in lines[i + 1:i + 4])
                        if m
                    )
                    if "name" in near and "key" in near:
                        refs.add((near["name"], near["key"]))
    return refs


def permissions() -> dict[str, list[str]]:
    """permissions.tsv: role -> [configure, write, read, tags]."""
    rows = {}
    for line in PERMISSIONS.read_text().splitlines():
        if line and not line.startswith("#"):
            fields = line.split("\t")
            rows[fields[0]] = fields[1:5]
    return rows


def expected_policy(name: str, bucket: str, prefix: str) -> dict:
    """k8s/iam/NAME.json (written for s3://pool-selector-events/events/) on s3://BUCKET/PREFIX/."""

    def move(value):
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, str):
            if value.startswith("arn:aws:s3:::pool-selector-events/events/"):
                return f"arn:aws:s3:::{bucket}/{prefix}/" + value[len("arn:aws:s3:::pool-selector-events/events/"):]
            if value == "arn:aws:s3:::pool-selector-events":
                return f"arn:aws:s3:::{bucket}"
            if value.startswith("events/"):  # an s3:prefix condition
                return f"{prefix}/" + value[len("events/"):]
        return value

    return move(json.loads((IAM / f"{name}.json").read_text()))


class Cluster:
    """A temporary folder: the stubs first on PATH, their state, the log of kubectl's calls."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True)
        self.tmp = folder / "tmp"
        self.tmp.mkdir()
        self.state_path = folder / "kubectl-state.json"
        self.rabbit_path = folder / "rabbitmq-users.json"
        self.log_path = folder / "kubectl.log"
        for name, source in (("kubectl", KUBECTL_STUB), ("rabbitmqctl", RABBITMQCTL_STUB)):
            stub = self.bin / name
            stub.write_text(f"#!{sys.executable} -S\n" + textwrap.dedent(source))
            stub.chmod(0o755)
        self.write_state({
            "namespaces": [NS, "messaging", "cache", "storage"],
            "secrets": {
                "messaging": {"rabbitmq": {"rabbitmq-password": b64(RABBITMQ_ADMIN_PASSWORD)}},
                "cache": {"redis": {"redis-password": b64(REDIS_PASSWORD)}},
                "storage": {"minio": {"rootUser": b64(MINIO_ROOT_USER), "rootPassword": b64(MINIO_ROOT_PASSWORD)}},
            },
        })
        self.rabbit_path.write_text(json.dumps({
            "pool": {"password": RABBITMQ_ADMIN_PASSWORD, "tags": ["administrator"], "permissions": {"/": [".*"] * 3}},
        }))
        self.log_path.write_text("")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        self.log_path.write_text("")
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.folder),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.tmp),
            "KUBECTL_STUB_STATE": str(self.state_path),
            "KUBECTL_STUB_LOG": str(self.log_path),
            "RABBITMQCTL_STUB_STATE": str(self.rabbit_path),
        }
        return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300)

    def state(self) -> dict:
        return json.loads(self.state_path.read_text())

    def write_state(self, state: dict) -> None:
        self.state_path.write_text(json.dumps(state, indent=1, sort_keys=True))

    def rabbit_users(self) -> dict:
        return json.loads(self.rabbit_path.read_text())

    def secrets(self, namespace: str = NS) -> dict[str, dict[str, str]]:
        """The namespace's Secrets, decoded."""
        return {name: {k: base64.b64decode(v).decode() for k, v in data.items()}
                for name, data in self.state()["secrets"].get(namespace, {}).items()}

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def mc_script(self) -> str:
        runs = [c for c in self.calls() if c["verb"] == "run" and c["argv"][-2:] == ["/bin/sh", "-s"]]
        assert len(runs) == 1, runs
        return runs[0]["stdin"]

    def copy(self, folder: Path) -> "Cluster":
        """Another cluster in FOLDER, with this one's state."""
        other = Cluster(folder)
        shutil.copy(self.state_path, other.state_path)
        shutil.copy(self.rabbit_path, other.rabbit_path)
        return other


def url_password(url: str, user: str) -> str:
    m = re.fullmatch(rf"[a-z]+://{re.escape(user)}:([^@]+)@.*", url)
    assert m, (url, user)
    return unquote(m.group(1))


def secret_values(secrets: dict[str, dict[str, str]]) -> set[str]:
    """Every secret value in the platform's Secrets, and the parts of the URLs and token lists."""
    values = set(SEEDED) | {quote(v, safe="") for v in SEEDED}
    for name, data in secrets.items():
        for key, value in data.items():
            if key == "aws-access-key-id":
                continue  # a user name
            values.add(value)
            m = re.fullmatch(r"[a-z]+://[^:]*:([^@]+)@.*", value)
            if m:
                values |= {m.group(1), unquote(m.group(1))}
            for part in value.split(","):
                values |= {part, part.split(":", 1)[-1]}
    return {v for v in values if len(v) >= 8}


def mc_users(script: str) -> dict[str, str]:
    """`mc admin user add platform USER KEY` lines of the mc script: USER -> KEY."""
    users = {}
    for line in script.splitlines():
        words = shlex.split(line) if line.startswith("mc admin user add ") else []
        if words:
            users[words[5]] = words[6]
    return users


def bash_4() -> bool:
    """The script needs bash 4 (associative arrays): macOS's /bin/bash is 3.2."""
    return shutil.which("bash") is not None and subprocess.run(
        ["bash", "-c", "((BASH_VERSINFO[0] >= 4))"], capture_output=True).returncode == 0


class Lint(unittest.TestCase):
    def test_the_script_parses(self):
        result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_shellcheck(self):
        self.assertIsNotNone(shutil.which("shellcheck"), "shellcheck is missing: scripts/install-deps.sh installs it")
        result = subprocess.run(["shellcheck", "-S", "warning", str(SCRIPT)], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


@unittest.skipUnless(bash_4(), "bash 4 or later needed")
class FirstRun(unittest.TestCase):
    """A first run against the dependencies alone, then a second run and a --rotate run on copies."""

    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.TemporaryDirectory(prefix="test-bootstrap-secrets.")
        cls.cluster = Cluster(Path(cls.folder.name) / "first")
        cls.result = cls.cluster.run()
        cls.secrets = cls.cluster.secrets()
        cls.calls = cls.cluster.calls()

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()

    def copy(self, name: str) -> Cluster:
        return self.cluster.copy(Path(self.folder.name) / name)

    def test_a_first_run_succeeds(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        self.assertIn("bootstrap-secrets: done", self.result.stderr)

    def test_every_secret_of_the_example_with_every_key(self):
        self.assertEqual({name: set(data) for name, data in self.secrets.items()}, example_secrets())
        for name, data in self.secrets.items():
            for key, value in data.items():
                self.assertTrue(value, f"{name} {key} is empty")
                self.assertNotIn("REPLACE", value)

    def test_every_secret_key_the_manifests_read_is_written(self):
        refs = manifest_secret_refs()
        self.assertGreaterEqual(len(refs), 14, refs)  # the parse found them
        for name, key in sorted(refs):
            self.assertIn(key, self.secrets.get(name, {}), f"the manifests read {name} {key}")

    def test_amqp_urls_carry_one_user_per_service(self):
        s = self.secrets
        host = "rabbitmq.messaging"
        self.assertRegex(s["intake-credentials"]["amqp-url"], rf"^amqp://pool-producer:[^@]+@{host}:5672/%2f$")
        self.assertRegex(s["ingest-worker-credentials"]["amqp-url"], rf"^amqp://pool-worker:[^@]+@{host}:5672/%2f$")
        self.assertRegex(s["monitor-credentials"]["rabbitmq-management-url"],
                         rf"^http://pool-monitor:[^@]+@{host}:15672$")
        passwords = [
            url_password(s["intake-credentials"]["amqp-url"], "pool-producer"),
            url_password(s["ingest-worker-credentials"]["amqp-url"], "pool-worker"),
            url_password(s["monitor-credentials"]["rabbitmq-management-url"], "pool-monitor"),
        ]
        self.assertEqual(len(set(passwords)), 3, "one password per user")
        self.assertTrue(all(len(p) >= 32 for p in passwords))
        self.assertNotIn(RABBITMQ_ADMIN_PASSWORD, passwords)

    def test_redis_urls_carry_the_redis_password(self):
        password = quote(REDIS_PASSWORD, safe="")
        self.assertEqual(self.secrets["relay-credentials"]["redis-url"],
                         f"redis://:{password}@redis-master.cache:6379/0")
        self.assertEqual(self.secrets["launcher-credentials"]["redis-url"],
                         f"redis://:{password}@redis-master.cache:6379/1")

    def test_s3_keys_tokens_and_rollup_key(self):
        s = self.secrets
        keys = []
        for user, (secret, _) in S3_USERS.items():
            self.assertEqual(s[secret]["aws-access-key-id"], user)
            keys.append(s[secret]["aws-secret-access-key"])
        self.assertEqual(len(set(keys)), 3)
        self.assertTrue(all(len(k) >= 16 for k in keys))
        launcher = s["launcher-credentials"]
        self.assertIn(launcher["intake-token"], s["intake-tokens"]["tokens"].split(","))
        self.assertEqual(len(s["intake-tokens"]["tokens"].split(",")), 2)
        callers = dict(pair.split(":", 1) for pair in launcher["launcher-tokens"].split(","))
        self.assertEqual(set(callers), {"admin", "ci"})
        self.assertTrue(all(len(t) >= 32 for t in callers.values()))
        self.assertGreaterEqual(len(s["rollup-signing"]["rollup-hmac-key"]), 32)
        tokens = [*keys, *s["intake-tokens"]["tokens"].split(","), *callers.values(),
                  s["rollup-signing"]["rollup-hmac-key"]]
        self.assertEqual(len(set(tokens)), len(tokens), "every secret is its own")

    def test_b_broker_users_have_their_roles_permissions(self):
        rows, users = permissions(), self.cluster.rabbit_users()
        for user, role in RABBIT_ROLES.items():
            configure, write, read, tags = rows[role]
            self.assertEqual(users[user]["permissions"], {"/": [configure, write, read]}, user)
            self.assertEqual(users[user]["tags"], tags.split(), user)
        # The broker's passwords are the URLs'.
        s = self.secrets
        self.assertEqual(users["pool-producer"]["password"],
                         url_password(s["intake-credentials"]["amqp-url"], "pool-producer"))
        self.assertEqual(users["pool-worker"]["password"],
                         url_password(s["ingest-worker-credentials"]["amqp-url"], "pool-worker"))
        self.assertEqual(users["pool-monitor"]["password"],
                         url_password(s["monitor-credentials"]["rabbitmq-management-url"], "pool-monitor"))

    def test_b_rabbitmqctl_calls_are_the_permissions_file(self):
        rows = permissions()
        execs = [c for c in self.calls if c["verb"] == "exec"]
        self.assertTrue(execs)
        for c in execs:
            self.assertEqual(c["namespace"], "messaging")
            pod = [a for a in c["argv"][c["argv"].index("exec") + 1:c["argv"].index("--")] if a != "-i"]
            self.assertEqual(pod, ["rabbitmq-0"])
        set_permissions = sorted(c["argv"][c["argv"].index("--") + 1:] for c in execs if "set_permissions" in c["argv"])
        self.assertEqual(set_permissions, sorted(
            ["rabbitmqctl", "--quiet", "set_permissions", "-p", "/", user, *rows[role][:3]]
            for user, role in RABBIT_ROLES.items()
        ))
        set_tags = sorted(c["argv"][c["argv"].index("--") + 1:] for c in execs if "set_user_tags" in c["argv"])
        self.assertEqual(set_tags, sorted(
            ["rabbitmqctl", "--quiet", "set_user_tags", user, *rows[role][3].split()]
            for user, role in RABBIT_ROLES.items()
        ))

    def test_b_passwords_only_on_stdin(self):
        values = secret_values(self.secrets)
        self.assertGreater(len(values), 15)
        for c in self.calls:
            argv = " ".join(c["argv"])
            for value in values:
                self.assertNotIn(value, argv, f"a secret on the command line of kubectl {c['argv'][:6]}")
        # Each broker user's password went to the broker's pod on stdin.
        upserts = {c["argv"][-1]: c["stdin"] for c in self.calls if c["verb"] == "exec" and "-i" in c["argv"]}
        users = self.cluster.rabbit_users()
        self.assertEqual(upserts, {user: users[user]["password"] + "\n" for user in RABBIT_ROLES})

    def test_c_mc_script_creates_the_users_with_their_policies(self):
        runs = [c for c in self.calls if c["verb"] == "run" and c["argv"][-2:] == ["/bin/sh", "-s"]]
        self.assertEqual(len(runs), 1)
        argv = runs[0]["argv"]
        self.assertEqual(runs[0]["namespace"], "storage")
        for flag in ("--rm", "-i", "--restart=Never", "--command"):
            self.assertIn(flag, argv)
        script = runs[0]["stdin"]
        check = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
        self.assertEqual(check.returncode, 0, check.stderr)
        alias = f"mc alias set platform http://minio.storage:9000 {MINIO_ROOT_USER} {MINIO_ROOT_PASSWORD} >/dev/null"
        self.assertIn(alias, script.replace("'", ""))
        self.assertIn("mc mb --ignore-existing platform/spark-events\n", script)
        policies = {name: json.loads(body) for name, body in
                    re.findall(r"cat >/tmp/([\w-]+)\.json <<'POLICY'\n(.*?)\nPOLICY\n", script, re.S)}
        self.assertEqual(set(policies), {policy for _, policy in S3_USERS.values()})
        for name, policy in policies.items():
            self.assertEqual(policy, expected_policy(name, "spark-events", "events"), name)
            self.assertIn(f"mc admin policy create platform {name} /tmp/{name}.json\n", script)
        self.assertEqual(mc_users(script), {user: self.secrets[secret]["aws-secret-access-key"]
                                            for user, (secret, _) in S3_USERS.items()})
        for user, (_, policy) in S3_USERS.items():
            self.assertIn(f"\nattach {policy} {user}\n", script)

    def test_topology_declared_by_the_administrator_in_a_pod(self):
        runs = [c for c in self.calls if c["verb"] == "run" and c["argv"][-2:] != ["/bin/sh", "-s"]]
        self.assertEqual(len(runs), 1)
        argv = runs[0]["argv"]
        self.assertEqual(runs[0]["namespace"], "messaging")
        self.assertIn("--image=registry.example.com/pool-selector-platform/pool-amqp:0.1.0", argv)
        self.assertIn("--restart=Never", argv)
        overrides = json.loads(next(a for a in argv if a.startswith("--overrides="))[len("--overrides="):])
        container = overrides["spec"]["containers"][0]
        self.assertEqual(container["args"], ["declare"])
        env = {e["name"]: e for e in container["env"]}
        self.assertEqual(env["RABBITMQ_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"],
                         {"name": "rabbitmq", "key": "rabbitmq-password"})
        self.assertEqual(env["AMQP_URL"]["value"], "amqp://pool:$(RABBITMQ_ADMIN_PASSWORD)@rabbitmq:5672/%2f")
        self.assertTrue(container["securityContext"]["runAsNonRoot"])

    def test_d_a_second_run_keeps_every_value(self):
        cluster = self.copy("second")
        result = cluster.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(cluster.secrets(), self.secrets)
        self.assertEqual(cluster.rabbit_users(), self.cluster.rabbit_users())
        self.assertEqual(mc_users(cluster.mc_script()), mc_users(self.cluster.mc_script()))

    def test_e_rotate_changes_the_broker_and_minio_passwords_only(self):
        cluster = self.copy("rotate")
        result = cluster.run("--rotate")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("rollout restart", result.stderr)
        before, after = self.secrets, cluster.secrets()
        self.assertEqual(set(after), set(before))
        for secret, key, user in (("intake-credentials", "amqp-url", "pool-producer"),
                                  ("ingest-worker-credentials", "amqp-url", "pool-worker"),
                                  ("monitor-credentials", "rabbitmq-management-url", "pool-monitor")):
            new = url_password(after[secret][key], user)
            self.assertNotEqual(new, url_password(before[secret][key], user), user)
            self.assertEqual(cluster.rabbit_users()[user]["password"], new, user)
        for user, (secret, _) in S3_USERS.items():
            self.assertEqual(after[secret]["aws-access-key-id"], user)
            self.assertNotEqual(after[secret]["aws-secret-access-key"], before[secret]["aws-secret-access-key"], user)
            self.assertEqual(mc_users(cluster.mc_script())[user], after[secret]["aws-secret-access-key"])
        for secret, key in (("intake-tokens", "tokens"), ("launcher-credentials", "intake-token"),
                            ("launcher-credentials", "launcher-tokens"), ("launcher-credentials", "redis-url"),
                            ("relay-credentials", "redis-url"), ("rollup-signing", "rollup-hmac-key")):
            self.assertEqual(after[secret][key], before[secret][key], f"{secret} {key}")

    def test_f_dry_run_after_a_run_changes_nothing_and_prints_no_secret(self):
        cluster = self.copy("dry-run")
        state, users = cluster.state_path.read_text(), cluster.rabbit_path.read_text()
        result = cluster.run("--dry-run")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(cluster.state_path.read_text(), state)
        self.assertEqual(cluster.rabbit_path.read_text(), users)
        self.assertEqual({c["verb"] for c in cluster.calls()}, {"get"})
        for value in secret_values(self.secrets):
            self.assertNotIn(value, result.stdout)
            self.assertNotIn(value, result.stderr)
        self.assertIn("rabbitmqctl --quiet set_permissions -p / pool-worker", result.stdout)
        self.assertIn("mc admin user add platform compactor <secret key of compactor (kept)>", result.stdout)
        self.assertIn("(secret rollup-signing: rollup-hmac-key (kept))", result.stdout)


@unittest.skipUnless(bash_4(), "bash 4 or later needed")
class Runs(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory(prefix="test-bootstrap-secrets.")
        self.addCleanup(self.folder.cleanup)
        self.cluster = Cluster(Path(self.folder.name))

    def test_f_dry_run_on_a_new_cluster_changes_nothing_and_prints_no_secret(self):
        state, users = self.cluster.state_path.read_text(), self.cluster.rabbit_path.read_text()
        result = self.cluster.run("--dry-run")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.cluster.state_path.read_text(), state)
        self.assertEqual(self.cluster.rabbit_path.read_text(), users)
        self.assertEqual({c["verb"] for c in self.cluster.calls()}, {"get"})
        for value in secret_values({}):
            self.assertNotIn(value, result.stdout)
        self.assertIn("nothing is changed", result.stdout)
        for name in example_secrets():
            self.assertIn(f"create secret generic {name} ", result.stdout)
        self.assertIn("<secret key of ingest-worker (new)>", result.stdout)

    def test_g_a_missing_dependency_secret_fails_before_any_change(self):
        for what, (namespace, name, key) in DEPENDENCIES.items():
            with self.subTest(what):
                state = self.cluster.state()
                del state["secrets"][namespace][name]
                self.cluster.write_state(state)
                before = self.cluster.state_path.read_text()
                result = self.cluster.run()
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(f"bootstrap-secrets: error: no {key} in the Secret {namespace}/{name} ({what})",
                              result.stderr)
                self.assertEqual({c["verb"] for c in self.cluster.calls()}, {"get"})
                self.assertEqual(self.cluster.state_path.read_text(), before)
                # --dry-run still previews, with a warning.
                preview = self.cluster.run("--dry-run")
                self.assertEqual(preview.returncode, 0, preview.stderr)
                self.assertIn(f"warning: no {key} in the Secret {namespace}/{name}", preview.stderr)
                self.cluster = Cluster(Path(tempfile.mkdtemp(dir=self.folder.name)))

    def test_g_a_missing_namespace_fails(self):
        state = self.cluster.state()
        state["namespaces"].remove(NS)
        self.cluster.write_state(state)
        result = self.cluster.run()
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"no namespace {NS}", result.stderr)
        self.assertEqual({c["verb"] for c in self.cluster.calls()}, {"get"})

    def test_g_unknown_argument_fails(self):
        result = self.cluster.run("--no-such-option")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("unknown argument: --no-such-option", result.stderr)
        self.assertEqual(self.cluster.calls(), [])
        result = self.cluster.run("--namespace")
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(self.cluster.calls(), [])

    def test_events_url_sets_the_bucket_and_policies_and_skip_topology(self):
        result = self.cluster.run("--events-url", "s3://other-bucket/a/b/", "--skip-topology")
        self.assertEqual(result.returncode, 0, result.stderr)
        runs = [c for c in self.cluster.calls() if c["verb"] == "run"]
        self.assertEqual(len(runs), 1, "the mc pod only")
        script = self.cluster.mc_script()
        self.assertIn("mc mb --ignore-existing platform/other-bucket\n", script)
        policies = {name: json.loads(body) for name, body in
                    re.findall(r"cat >/tmp/([\w-]+)\.json <<'POLICY'\n(.*?)\nPOLICY\n", script, re.S)}
        for name, policy in policies.items():
            self.assertEqual(policy, expected_policy(name, "other-bucket", "a/b"), name)

    def test_kept_passwords_with_url_characters_round_trip(self):
        # A Secret made by hand for the script's user, its password percent-encoded: the broker gets the
        # password itself, the URL keeps it encoded.
        password = "p@ss/w:rd%é"
        state = self.cluster.state()
        state["secrets"][NS] = {"intake-credentials": {"amqp-url": b64(
            f"amqp://pool-producer:{quote(password, safe='')}@rabbitmq.messaging:5672/%2f")}}
        self.cluster.write_state(state)
        result = self.cluster.run("--skip-topology")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.cluster.rabbit_users()["pool-producer"]["password"], password)
        self.assertEqual(self.cluster.secrets()["intake-credentials"]["amqp-url"],
                         f"amqp://pool-producer:{quote(password, safe='')}@rabbitmq.messaging:5672/%2f")


if __name__ == "__main__":
    unittest.main()
