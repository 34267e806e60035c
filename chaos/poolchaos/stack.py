"""The running local stack as the experiments see it: URLs, pids, restarts, output folder, fault marks."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "scripts" / "stack.sh"


def env() -> dict[str, str]:
    """The stack's exports (`scripts/stack.sh env`) as a dict."""
    text = subprocess.run([str(STACK), "env"], check=True, capture_output=True, text=True).stdout
    out = {}
    for line in text.splitlines():
        if line.startswith("export "):
            k, v = line[len("export "):].split("=", 1)
            out[k] = shlex.split(v)[0] if v else ""
    return out


def state_dir() -> Path:
    return Path(env()["STACK_DIR"])


def pid(component: str) -> int | None:
    p = state_dir() / "run" / f"{component}.pid"
    try:
        return int(p.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def running(p: int | None) -> bool:
    if not p:
        return False
    try:
        st = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return st != "Z"
    except (FileNotFoundError, IndexError):
        return False


def out_dir() -> Path:
    d = Path(os.environ.get("CHAOS_OUT", ROOT / "reports" / "chaos" / "adhoc"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def log(msg: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    print(f"chaos: {line}", flush=True)
    with (out_dir() / "actions.log").open("a") as f:
        f.write(line + "\n")


def mark(label: str, start: float, end: float) -> None:
    """Records a fault interval (epoch seconds) for the timeline chart and the during-fault measurements."""
    with (out_dir() / "marks.jsonl").open("a") as f:
        f.write(json.dumps({"label": label, "start": start, "end": end}) + "\n")


def marks() -> list[dict]:
    p = out_dir() / "marks.jsonl"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def restart_missing(timeout: float = 180) -> float:
    """Starts every component that is not running, as a supervisor (Kubernetes) would: `stack.sh up`
    starts only what is down and waits until it is ready. Returns the seconds it took."""
    t0 = time.time()
    extra = {"STACK_BUILD": "never"}
    # The binaries the stack runs are where `make up` found them: take that folder from a running service
    # (…/release/relay), so a shell without the same CARGO_TARGET_DIR restarts the same binaries.
    for c in ("relay", "intake", "monitor"):
        try:
            extra["CARGO_TARGET_DIR"] = str(Path(os.readlink(f"/proc/{pid(c)}/exe")).parent.parent)
            break
        except (OSError, TypeError):
            continue
    with (out_dir() / "restarts.log").open("a") as f:
        subprocess.run([str(STACK), "up"], check=True, stdout=f, stderr=subprocess.STDOUT, timeout=timeout,
                       env={**os.environ, **extra})
    return time.time() - t0


def http_json(url: str, method: str = "GET", body: dict | None = None, timeout: float = 5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def queue_stats() -> dict:
    mgmt = env()["STACK_RABBITMQ_MANAGEMENT_URL"]  # http://guest:guest@127.0.0.1:PORT
    base = "http://" + mgmt.split("@", 1)[1]
    pw = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    pw.add_password(None, base, "guest", "guest")
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(pw))
    with opener.open(f"{base}/api/queues/%2f/events.ingest", timeout=3) as r:
        return json.load(r)
