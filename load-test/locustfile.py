"""Locust scenarios against the local stack (`make up`), run by load-test/load.sh (`make load`) and, as the
mixed load under every fault, by the chaos experiments (chaos/).

Users (pick them by class name on locust's command line; both together are the mixed scenario):

  * ReadUser: what users do through the relay (STACK_RELAY_URL). An instance-type set is drawn by a Zipf
    law (rank k with probability ∝ 1/k^LOAD_ZIPF_S) over a fixed, seeded list of sets built from the
    instance types the stack holds (singles first, then pairs, then triples), so a few sets are asked for
    all the time and a long tail rarely, as real users do; a look-back window from a weighted mix (1h,
    6h, 24h, 7d, all); 70% `/get-pool`, 20% `/get-pool` with `k=3`, 10% `/pools` with a `limit`.
  * WriteUser: what producers do through the intake (STACK_INTAKE_URL, bearer STACK_INTAKE_TOKEN):
    `POST /events` with LOAD_BATCH NDJSON events, each with a unique job_id, in pools of their own
    (`pool-ld<LOAD_RUN_ID>.<size>-<zone>`) so a check afterwards can count exactly these events.

Every request is also appended to LOAD_RECORDS (CSV: start time, endpoint, ms, ok, status, X-Cache), the
raw material of load-test/report.py and of the chaos timelines; each event the intake acknowledged (202)
is appended to LOAD_ACKED (`job_id,pool_id`). Pacing: each ReadUser makes LOAD_READ_RPS requests/s and
each WriteUser LOAD_WRITE_RPS posts/s (locust's constant_throughput), well below the intake's per-token
rate limit.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import time
import uuid
from datetime import datetime, timezone

from locust import FastHttpUser, constant_throughput, events, task

RELAY = os.environ.get("STACK_RELAY_URL", "http://127.0.0.1:16080")
INTAKE = os.environ.get("STACK_INTAKE_URL", "http://127.0.0.1:16098")
TOKEN = os.environ.get("STACK_INTAKE_TOKEN", "dev-token")
RUN_ID = os.environ.get("LOAD_RUN_ID") or uuid.uuid4().hex[:8]
ZIPF_S = float(os.environ.get("LOAD_ZIPF_S", "1.1"))
BATCH = int(os.environ.get("LOAD_BATCH", "20"))
READ_RPS = float(os.environ.get("LOAD_READ_RPS", "4"))
WRITE_RPS = float(os.environ.get("LOAD_WRITE_RPS", "2"))
SEED = int(os.environ.get("LOAD_SEED", "15"))
# How many instance-type sets the Zipf law ranks (0: all 259 with the stack's 19 types).
SETS = int(os.environ.get("LOAD_SETS", "0"))
# Used when the stack cannot be asked (the generator's families; the stack normally answers).
FALLBACK_TYPES = ["c6a.large", "c6i.large", "c7g.large", "m6a.xlarge", "m6i.xlarge", "r6i.large", "r7g.large"]
WINDOWS = [("1h", 30), ("6h", 20), ("24h", 25), ("7d", 15), ("0", 10)]
WRITE_SIZES = ["large", "xlarge", "2xlarge"]
WRITE_ZONES = ["us-east-1a", "us-east-1b", "eu-west-1a"]


class Recorder:
    """Appends one CSV row per request; flushed about once a second so a reader mid-run sees recent rows."""

    def __init__(self, path: str | None):
        self.file = open(path, "a", newline="") if path else None
        self.writer = csv.writer(self.file) if self.file else None
        self.last_flush = time.monotonic()
        if self.file and self.file.tell() == 0:
            self.writer.writerow(["start", "name", "ms", "ok", "status", "cache"])

    def row(self, *values) -> None:
        if not self.writer:
            return
        self.writer.writerow(values)
        if time.monotonic() - self.last_flush > 1.0:
            self.file.flush()
            self.last_flush = time.monotonic()

    def close(self) -> None:
        if self.file:
            self.file.close()


records = Recorder(os.environ.get("LOAD_RECORDS"))
acked_file = open(os.environ["LOAD_ACKED"], "a") if os.environ.get("LOAD_ACKED") else None
TYPE_SETS: list[str] = []
ZIPF_WEIGHTS: list[float] = []


def build_sets(types: list[str]) -> list[str]:
    """The fixed, seeded list of instance-type sets the Zipf law ranks: singles, pairs, triples."""
    rng = random.Random(SEED)
    types = sorted(types)
    singles = [(t,) for t in types]
    pairs = list(itertools.combinations(types, 2))
    triples = list(itertools.combinations(types, 3))
    for group in (singles, pairs, triples):
        rng.shuffle(group)
    sets = singles + pairs[:120] + triples[:120]
    if SETS > 0:
        # A smaller key space, the head of the same law (rank order: singles first).
        sets = sets[:SETS]
    return [",".join(s) for s in sets]


@events.test_start.add_listener
def on_start(environment, **_):
    import urllib.request

    types = FALLBACK_TYPES
    try:
        with urllib.request.urlopen(f"{RELAY}/pools?limit=10000&window=0", timeout=10) as r:
            found = sorted({p["instance_type"] for p in json.load(r)["pools"]} - {""})
            # Only the stack's own types (not pools a previous write run made).
            types = [t for t in found if not t.startswith("ld")] or FALLBACK_TYPES
    except Exception as e:  # noqa: BLE001 - a load test still runs on the fallback list
        print(f"load: could not list the stack's instance types ({e}); using {FALLBACK_TYPES}")
    TYPE_SETS[:] = build_sets(types)
    ZIPF_WEIGHTS[:] = [1.0 / (k ** ZIPF_S) for k in range(1, len(TYPE_SETS) + 1)]
    print(f"load: run {RUN_ID}: {len(types)} instance types, {len(TYPE_SETS)} sets ranked by Zipf s={ZIPF_S}")


@events.request.add_listener
def on_request(request_type, name, response_time, response_length, response=None, exception=None,
               start_time=None, **_):
    status = getattr(response, "status_code", 0) or 0
    cache = ""
    if response is not None and getattr(response, "headers", None) is not None:
        cache = response.headers.get("x-cache") or ""
    records.row(f"{start_time or time.time():.3f}", name, f"{response_time:.2f}", 0 if exception else 1, status, cache)


@events.quitting.add_listener
def on_quit(environment, **_):
    records.close()
    if acked_file:
        acked_file.close()


class ReadUser(FastHttpUser):
    """A user of the relay (see the module doc)."""

    host = RELAY
    wait_time = constant_throughput(READ_RPS)
    weight = int(os.environ.get("LOAD_READ_WEIGHT", "10"))

    def on_start(self):
        self.rng = random.Random()

    def pick(self) -> tuple[str, str]:
        sets = TYPE_SETS or build_sets(FALLBACK_TYPES)
        weights = ZIPF_WEIGHTS or [1.0 / (k ** ZIPF_S) for k in range(1, len(sets) + 1)]
        types = self.rng.choices(sets, weights)[0]
        window = self.rng.choices([w for w, _ in WINDOWS], [p for _, p in WINDOWS])[0]
        return types, window

    def get(self, path: str, name: str) -> None:
        # 200 and 404 ("no matching data" for a rare set and a short window) are answers; anything else
        # (5xx, 429, a connection error) is an error.
        with self.client.get(path, name=name, catch_response=True) as r:
            if r.status_code in (200, 404):
                r.success()
            else:
                r.failure(f"status {r.status_code}")

    @task(7)
    def get_pool(self):
        types, window = self.pick()
        self.get(f"/get-pool?instance_types={types}&window={window}", "GET /get-pool")

    @task(2)
    def get_pool_k3(self):
        types, window = self.pick()
        self.get(f"/get-pool?instance_types={types}&window={window}&k=3", "GET /get-pool k=3")

    @task(1)
    def pools(self):
        types, window = self.pick()
        limit = self.rng.choice([3, 10, 50])
        self.get(f"/pools?instance_types={types}&window={window}&limit={limit}", "GET /pools")


class WriteUser(FastHttpUser):
    """A producer posting finished jobs to the intake (see the module doc)."""

    host = INTAKE
    wait_time = constant_throughput(WRITE_RPS)
    weight = int(os.environ.get("LOAD_WRITE_WEIGHT", "1"))

    def on_start(self):
        self.rng = random.Random()
        self.user_id = uuid.uuid4().hex[:6]
        self.seq = 0

    @task
    def post_events(self):
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        lines, ids = [], []
        for _ in range(BATCH):
            self.seq += 1
            job = f"ld-{RUN_ID}-{self.user_id}-{self.seq}"
            pool = f"pool-ld{RUN_ID}.{self.rng.choice(WRITE_SIZES)}-{self.rng.choice(WRITE_ZONES)}"
            failed = self.rng.random() < 0.05
            lines.append(json.dumps({"finished_at": now, "job_id": job, "pool_id": pool,
                                     "status": "FAILED" if failed else "SUCCEEDED",
                                     "reason": "SPOT_INSTANCE_TERMINATION" if failed else ""}))
            ids.append((job, pool))
        with self.client.post("/events", data="\n".join(lines) + "\n", name="POST /events", catch_response=True,
                              headers={"authorization": f"Bearer {TOKEN}",
                                       "content-type": "application/x-ndjson"}) as r:
            if r.status_code == 202:
                r.success()
                if acked_file:
                    acked_file.write("".join(f"{j},{p}\n" for j, p in ids))
                    acked_file.flush()
            else:
                r.failure(f"status {r.status_code}")
