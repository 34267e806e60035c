"""Chaos Toolkit probes: the steady-state hypotheses, measured.

Each returns a dict with `ok` (what the experiment's tolerance checks, `$.ok == true`) and the numbers
behind it, which the journal keeps and chaos/report.py tabulates. Run before the method (no load recorded
yet) they measure the stack as it is now; run after it, they measure the experiment's recorded load:

  * relay: availability and p99 of the relay requests made while a fault was active (the marked
    intervals), stale answers (`X-Cache: STALE`) allowed and counted;
  * events: every event the intake acknowledged (202) is in S3 and pool-selector counts each exactly once;
  * monitor: the desired worker scale never 0, and back to the backlog rule within two poll intervals after
    each fault.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone

from . import stack

sys.path.insert(0, str(stack.ROOT / "load-test"))
import acked as acked_mod  # noqa: E402
import records  # noqa: E402


def _load_start() -> float | None:
    p = stack.out_dir() / "load.started"
    return float(p.read_text().split()[0]) if p.exists() else None


def _during(reqs, marks):
    return [r for r in reqs if any(m["start"] <= r.start < m["end"] for m in marks)]


def relay_during_faults(min_availability_pct: float = 99.9, p99_factor: float = 2.0, p99_floor_ms: float = 1000,
                        p99_cap_ms: float = 10000) -> dict:
    """Availability and p99 of the relay requests made while a fault was active. The p99 bound is relative
    to the same run before its first fault (`p99_factor` × that p99, at least `p99_floor_ms`), so the noise
    of a shared machine cancels out, and never above `p99_cap_ms` (the relay's UPSTREAM_TIMEOUT)."""
    reqs_path = stack.out_dir() / "requests.csv"
    if not reqs_path.exists():
        return _relay_now(min_availability_pct, p99_cap_ms)
    reqs = [r for r in records.load(reqs_path) if r.name.startswith("GET")]
    marks = stack.marks()
    during = _during(reqs, marks)
    first = min((m["start"] for m in marks), default=None)
    before = [r for r in reqs if first is None or r.start < first]
    s = records.summary(during) if during else None
    b = records.summary(before) if before else None
    bound = min(p99_cap_ms, max(p99_floor_ms, p99_factor * b["p99"])) if b else p99_cap_ms
    ok = bool(s) and s["availability_pct"] >= min_availability_pct and s["p99"] <= bound
    return {
        "ok": ok, "bound_availability_pct": min_availability_pct, "bound_p99_ms": round(bound, 1),
        "bound_rule": f"p99 ≤ min({p99_cap_ms:.0f} ms, max({p99_floor_ms:.0f} ms, {p99_factor:g} × p99 before the first fault))",
        "fault_seconds": round(sum(m["end"] - m["start"] for m in marks), 1),
        "during": _brief(s), "before": _brief(b), "whole_run": _brief(records.summary(reqs)) if reqs else None,
    }


def _brief(s: dict | None) -> dict | None:
    if not s:
        return None
    return {"requests": s["requests"], "availability_pct": round(s["availability_pct"], 3), "errors": s["errors"],
            "error_statuses": s["statuses"], "p50_ms": round(s["p50"], 1), "p99_ms": round(s["p99"], 1),
            "max_ms": round(s["max"], 1), "stale": s["stale"], "rps": round(s["rps"], 1)}


def _relay_now(min_availability_pct: float, max_p99_ms: float) -> dict:
    """Before the method: 30 requests through the relay, one after the other."""
    relay = stack.env()["STACK_RELAY_URL"]
    ms, errors = [], 0
    for i in range(30):
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{relay}/get-pool?window={['1h', '24h', '0'][i % 3]}", timeout=10) as r:
                r.read()
        except Exception:  # noqa: BLE001 - counted as an error
            errors += 1
        ms.append((time.perf_counter() - t0) * 1000)
    avail = 100.0 * (30 - errors) / 30
    p99 = records.percentile(ms, 99)
    return {"ok": avail >= min_availability_pct and p99 <= max_p99_ms, "sample": "30 requests now",
            "availability_pct": avail, "p99_ms": round(p99, 1)}


def _stored_job_ids(run_id: str, since: float) -> Counter:
    """Every job_id of this run found in the bucket's raw objects written since `since` (how many times)."""
    import boto3  # the venv has it (moto's dependency)

    env = stack.env()
    bucket, prefix = env["STACK_EVENTS_URL"][len("s3://"):].split("/", 1)
    s3 = boto3.client("s3", endpoint_url=env["STACK_S3_ENDPOINT"], aws_access_key_id="test",
                      aws_secret_access_key="test", region_name="us-east-1")
    needle = f'"ld-{run_id}-'.encode()
    found: Counter = Counter()
    since_dt = datetime.fromtimestamp(since - 5, timezone.utc)
    days = {(since_dt + timedelta(hours=h)).strftime("%Y-%m-%d") for h in range(0, 3)}
    for day in sorted(days):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}dt={day}/")
        for page in pages:
            for obj in page.get("Contents", []):
                if obj["LastModified"] < since_dt:
                    continue
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                if needle not in body:
                    continue
                for line in body.splitlines():
                    if needle in line:
                        found[json.loads(line)["job_id"]] += 1
    return found


def events_stored_and_counted_once(deadline_s: float = 150) -> dict:
    out = stack.out_dir()
    env = stack.env()
    acked_path = out / "acked.csv"
    started = out / "load.started"
    if not started.exists():
        with urllib.request.urlopen(f"{env['STACK_SELECTOR_URL']}/ready", timeout=10) as r:
            return {"ok": r.status == 200, "sample": "pool-selector /ready now"}
    t_start, run_id = started.read_text().split()
    check = acked_mod.check(env["STACK_SELECTOR_URL"], str(acked_path), deadline_s)
    acked = acked_mod.acked_events(str(acked_path))
    stored = _stored_job_ids(run_id, float(t_start))
    missing = sorted(set(acked) - set(stored))
    dup_objects = sum(1 for n in stored.values() if n > 1)
    ok = check["ok"] and not missing and check["counted"] == len(stored)
    return {
        "ok": ok, "acked": len(acked), "stored_distinct": len(stored), "stored_copies": sum(stored.values()),
        "stored_duplicates": dup_objects, "acked_missing_from_storage": len(missing),
        "missing_examples": missing[:5], "counted_in_pools": check["counted"],
        "stored_but_not_acked": len(set(stored) - set(acked)), "waited_s": check["waited_s"],
        "pool_mismatches": check["per_pool_mismatch"],
    }


def monitor_scale(intervals: float = 2) -> dict:
    path = stack.out_dir() / "monitor.csv"
    env = stack.env()
    if not path.exists():
        with urllib.request.urlopen(f"{env['STACK_MONITOR_URL']}/desired-worker-scale", timeout=5) as r:
            d = json.load(r)
        return {"ok": d["desired-worker-scale"] >= 1 and d["source_up"], "sample": "now",
                "desired": d["desired-worker-scale"], "source_up": d["source_up"]}
    import csv

    rows = list(csv.DictReader(path.open()))
    good = [r for r in rows if not r["error"]]
    failed = len(rows) - len(good)
    desired = [int(r["desired"]) for r in good]
    poll = float(good[0]["poll_interval_s"]) if good and good[0]["poll_interval_s"] else 5.0
    bound = intervals * poll
    recoveries = []
    for m in stack.marks():
        after = [r for r in good if float(r["t"]) >= m["end"]]
        rec = next((r for r in after if r["source_up"] == "1" and r["fallback"] == "0"
                    and int(r["desired"]) >= int(r["expected"])), None)
        disturbed = any(r["source_up"] == "0" or r["fallback"] == "1" for r in good
                        if m["start"] <= float(r["t"]) <= m["end"] + bound)
        secs = round(float(rec["t"]) - m["end"], 1) if rec else None
        recoveries.append({"fault": m["label"], "source_lost": disturbed, "recovered_after_s": secs,
                           "ok": secs is not None and secs <= bound})
    fallback_samples = sum(1 for r in good if r["fallback"] == "1")
    ok = bool(desired) and min(desired) >= 1 and all(x["ok"] for x in recoveries)
    return {"ok": ok, "samples": len(rows), "monitor_unreachable_samples": failed,
            "min_desired": min(desired) if desired else None, "max_desired": max(desired) if desired else None,
            "fallback_samples": fallback_samples, "poll_interval_s": poll, "bound_s": bound,
            "recoveries": recoveries}


def holds(value: dict | None = None) -> bool:
    """The tolerance of every probe above. Chaos Toolkit passes the probe's output as `value` and counts a
    tolerance probe as met when it does not raise, so a measurement that is not ok raises."""
    if not (isinstance(value, dict) and value.get("ok")):
        raise AssertionError(f"hypothesis not met: {json.dumps(value)[:400]}")
    return True
