#!/usr/bin/env python3
"""Publish-to-visible latency of the ingestion path, measured from the outside.

Every --interval seconds one *marker* event (its own pool, `pool-zz9.bench-us-east-1a`, finished "now")
is POSTed to the intake service's /events, which publishes it to RabbitMQ behind whatever load is already
queued. A second thread polls `GET /pools?instance_types=zz9.bench&window=2h` every --poll seconds; the
marker pool's job count says how many markers are visible (the worker consumes one queue in order and
acknowledges batches in order, so markers become visible in publish order). A marker's latency is the
time from the start of its POST to the first poll that counts it: queueing behind the load, batching,
the object write and the query are all inside it.

Runs until --stop-file exists, then waits (at most --drain seconds) for the last markers and prints one
JSON object: marker count, p50/p99/max latency in ms, and the POST (publish + confirm) latency.
"""

import argparse
import json
import math
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

POOL = "pool-zz9.bench-us-east-1a"


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    k = max(0, min(len(values) - 1, math.ceil(p / 100.0 * len(values)) - 1))  # nearest rank
    return values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--intake", required=True, help="the intake service, where markers are POSTed")
    ap.add_argument("--token", required=True, help="a bearer token of the intake's INTAKE_TOKENS")
    ap.add_argument("--selector", required=True, help="pool-selector, polled until a marker counts")
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--poll", type=float, default=0.05)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--drain", type=float, default=60.0)
    ap.add_argument("--max-seconds", type=float, default=1800.0,
                    help="stop publishing after this long even without the stop file (never hang a run)")
    a = ap.parse_args()
    give_up = time.monotonic() + a.max_seconds

    def stopped() -> bool:
        # The stop file, a deadline, or the run's folder gone (the bench was killed and cleaned up).
        folder = os.path.dirname(a.stop_file) or "."
        return os.path.exists(a.stop_file) or time.monotonic() > give_up or not os.path.isdir(folder)

    run = uuid.uuid4().hex[:8]
    lock = threading.Lock()
    sent = []  # start time of each marker's POST, in publish order
    post_ms = []
    seen = []  # time each marker was first counted
    errors = {"post": 0, "poll": 0}
    done = threading.Event()

    def publish():
        i = 0
        while not stopped():
            now = datetime.now(timezone.utc)
            event = {
                "finished_at": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}",
                "job_id": f"marker-{run}-{i}",
                "pool_id": POOL,
                "status": "SUCCEEDED",
                "reason": "",
            }
            req = urllib.request.Request(
                f"{a.intake}/events",
                data=json.dumps(event).encode(),
                headers={"content-type": "application/json", "authorization": f"Bearer {a.token}"},
                method="POST",
            )
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(req, timeout=30) as res:
                    ok = res.status == 202
            except (urllib.error.URLError, OSError):
                ok = False
            t1 = time.monotonic()
            if ok:
                with lock:
                    sent.append(t0)
                    post_ms.append((t1 - t0) * 1000)
                i += 1
            else:
                errors["post"] += 1
            time.sleep(max(0.0, a.interval - (time.monotonic() - t0)))

    def poll():
        url = f"{a.selector}/pools?instance_types=zz9.bench&window=2h"
        while not done.is_set():
            try:
                with urllib.request.urlopen(url, timeout=30) as res:
                    body = json.load(res)
                jobs = sum(p["jobs"] for p in body.get("pools", []) if p["pool_id"] == POOL)
            except urllib.error.HTTPError as e:
                jobs = 0 if e.code == 404 else None
            except (urllib.error.URLError, OSError, ValueError):
                jobs = None
            t = time.monotonic()
            if jobs is None:
                errors["poll"] += 1
            else:
                with lock:
                    while len(seen) < min(jobs, len(sent)):
                        seen.append(t)
            time.sleep(a.poll)

    publisher = threading.Thread(target=publish)
    poller = threading.Thread(target=poll)
    publisher.start()
    poller.start()
    publisher.join()
    deadline = time.monotonic() + a.drain
    while time.monotonic() < deadline:
        with lock:
            if len(seen) >= len(sent):
                break
        time.sleep(0.1)
    done.set()
    poller.join()

    with lock:
        lat = [(s - p) * 1000 for p, s in zip(sent, seen)]
        out = {
            "markers": len(sent),
            "visible": len(seen),
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "max_ms": max(lat) if lat else None,
            "post_p50_ms": percentile(post_ms, 50),
            "post_p99_ms": percentile(post_ms, 99),
            "errors": errors,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
