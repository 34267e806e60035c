"""The live view's HTTP benchmark (load-test/bench-live.sh): pool-selector over a local S3 server
whose open hour keeps growing, today's build and a baseline build side by side.

Subcommands:
  fill      put N small event objects into the current hour's partition (what ingest-worker does)
  probe     with a writer adding one object a second to the open hour: distinct `/get-pool` queries
            (random instance-type sets, windows 1 h to 30 d) against each server, then the time until
            an object written into the open hour is counted by `/pools`; prints markdown tables and
            writes the raw figures as JSON

Only the standard library and boto3 (installed with moto in the repository's venv).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import secrets
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import boto3


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )


def uuid7() -> str:
    """A time-ordered UUID (version 7), like the ingest-worker's object names."""
    ms = time.time_ns() // 1_000_000
    rand = secrets.randbits(74)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def event(at: datetime, pool: str, spot: bool) -> str:
    return json.dumps(
        {
            "finished_at": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}",
            "job_id": uuid7(),
            "pool_id": pool,
            "status": "FAILED" if spot else "SUCCEEDED",
            "reason": "SPOT_INSTANCE_TERMINATION" if spot else "",
        }
    )


def put_object(s3, bucket: str, prefix: str, lines: list[str], at: datetime) -> str:
    key = f"{prefix}dt={at:%Y-%m-%d}/hr={at:%H}/{uuid7()}.json"
    s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
    return key


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def fill(args) -> None:
    s3 = s3_client(args.endpoint)
    rng = random.Random(args.seed)
    pools = args.pools.split(",")
    for _ in range(args.objects):
        at = now()
        lines = [event(at - timedelta(seconds=rng.uniform(0, 30)), rng.choice(pools), rng.random() < 0.03) for _ in range(args.events)]
        put_object(s3, args.bucket, args.prefix, lines, at)


class Writer(threading.Thread):
    """One object a second into the open hour, until stopped."""

    def __init__(self, endpoint: str, bucket: str, prefix: str, pools: list[str], events: int):
        super().__init__(daemon=True)
        self.s3 = s3_client(endpoint)
        self.bucket, self.prefix, self.pools, self.events = bucket, prefix, pools, events
        self.stop = threading.Event()
        self.written = 0
        self.rng = random.Random(11)

    def run(self) -> None:
        while not self.stop.wait(1.0):
            at = now()
            lines = [event(at, self.rng.choice(self.pools), self.rng.random() < 0.03) for _ in range(self.events)]
            put_object(self.s3, self.bucket, self.prefix, lines, at)
            self.written += 1


class Client:
    """One keep-alive connection to a server."""

    def __init__(self, base: str, timeout: float):
        u = urllib.parse.urlparse(base)
        self.host, self.port, self.timeout = u.hostname, u.port, timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def get(self, path: str) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        for attempt in range(2):
            try:
                self.conn.request("GET", path)
                res = self.conn.getresponse()
                body = res.read()
                return res.status, body, (time.perf_counter() - started) * 1e3
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def queries(types: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        chosen = rng.sample(types, min(len(types), rng.randint(2, 3)))
        hours = math.exp(rng.uniform(0, math.log(30 * 24)))
        out.append(f"/get-pool?instance_types={','.join(chosen)}&window={int(hours * 3600)}")
    return out


def visibility(client: Client, s3, bucket: str, prefix: str, pool: str, objects: int, timeout: float) -> list[float]:
    """Write `objects` objects one at a time, each with one job of `pool`, and time until `/pools`
    counts it."""
    itype = pool.split("-")[1]
    delays = []

    def counted() -> int:
        status, body, _ = client.get(f"/pools?instance_types={itype}&window=2h")
        if status == 404:
            return 0
        if status != 200:
            raise RuntimeError(f"/pools answered {status}: {body[:200]!r}")
        return sum(p["jobs"] for p in json.loads(body)["pools"])

    base = counted()
    for i in range(objects):
        put_object(s3, bucket, prefix, [event(now(), pool, False)], now())
        written = time.perf_counter()
        while True:
            if counted() >= base + i + 1:
                delays.append(time.perf_counter() - written)
                break
            if time.perf_counter() - written > timeout:
                delays.append(float("inf"))
                break
            time.sleep(0.02)
    return delays


def probe(args) -> int:
    s3 = s3_client(args.endpoint)
    types = args.types.split(",")
    pools = args.pools.split(",")
    servers = [("today", args.new, args.queries)]
    if args.old:
        servers.append(("before (baseline)", args.old, args.old_queries))
    writer = Writer(args.endpoint, args.bucket, args.prefix, pools, args.events)
    writer.start()
    results = {}
    try:
        qs = queries(types, max(args.queries, args.old_queries), args.seed)
        for name, base, n in servers:
            client = Client(base, args.timeout)
            for q in qs[:5]:
                client.get(q)  # warm the connection and the first fits
            lat, errors = [], 0
            for q in qs[:n]:
                try:
                    status, _, ms = client.get(q)
                except OSError:
                    status, ms = 0, args.timeout * 1e3
                lat.append(ms)
                if status not in (200, 404):
                    errors += 1
            marker = f"pool-x2gd.medium-us-west-2{'ab'[len(results)]}"
            vis_n = args.visibility if name == "today" else args.old_visibility
            delays = visibility(client, s3, args.bucket, args.prefix, marker, vis_n, args.vis_timeout)
            results[name] = {"latency_ms": lat, "errors": errors, "visible_s": delays}
    finally:
        writer.stop.set()
        writer.join()
    print(f"Open hour grown by {writer.written} objects during the run (one a second, {args.events} events each), "
          f"on top of {args.open_objects} put before the servers started.")
    print()
    print("| server | requests | p50 ms | p95 ms | p99 ms | max ms | errors | p99 ≤ 20 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r in results.items():
        lat = r["latency_ms"]
        p99 = percentile(lat, 99)
        print(f"| {name} | {len(lat)} | {percentile(lat, 50):.1f} | {percentile(lat, 95):.1f} | {p99:.1f} | "
              f"{max(lat):.1f} | {r['errors']} | {'met' if p99 <= 20 else 'NOT met'} |")
    print()
    print("| server | objects | p50 s | p99 s | max s | counted within 5 s (p99) |")
    print("|---|---:|---:|---:|---:|---|")
    for name, r in results.items():
        d = r["visible_s"]
        p99 = percentile(d, 99)
        print(f"| {name} | {len(d)} | {percentile(d, 50):.2f} | {p99:.2f} | {max(d):.2f} | "
              f"{'met' if p99 <= 5 else 'NOT met'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, default=str)
    today = results["today"]
    return 0 if percentile(today["latency_ms"], 99) <= 20 and percentile(today["visible_s"], 99) <= 5 else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="events/")
    p.add_argument("--pools", required=True, help="comma-separated pool ids the writer uses")
    p.add_argument("--events", type=int, default=20, help="events per object")
    p.add_argument("--seed", type=int, default=7)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fill")
    f.add_argument("--objects", type=int, default=600)
    pr = sub.add_parser("probe")
    pr.add_argument("--new", required=True)
    pr.add_argument("--old")
    pr.add_argument("--types", required=True)
    pr.add_argument("--queries", type=int, default=200)
    pr.add_argument("--old-queries", type=int, default=50)
    pr.add_argument("--visibility", type=int, default=20)
    pr.add_argument("--old-visibility", type=int, default=5)
    pr.add_argument("--vis-timeout", type=float, default=60)
    pr.add_argument("--timeout", type=float, default=30)
    pr.add_argument("--open-objects", type=int, default=600)
    pr.add_argument("--json")
    args = p.parse_args()
    if args.cmd == "fill":
        fill(args)
        return 0
    return probe(args)


if __name__ == "__main__":
    sys.exit(main())
