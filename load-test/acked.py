"""Are the events the intake acknowledged counted, exactly once, by pool-selector? Used after `make load`'s
write and mixed runs and by the chaos experiments' steady-state hypothesis.

    acked.py SELECTOR_URL ACKED_CSV [DEADLINE_SECONDS]    prints the result as JSON; exit 1 when short

ACKED_CSV has `job_id,pool_id` per event answered 202 (load-test/locustfile.py, LOAD_ACKED). The pools are
the run's own (`pool-ld<run>.<size>-<zone>`), so pool-selector's `jobs` for them (whole history, asked
directly, not through the relay's cache) must equal the number of distinct acknowledged job_ids once
ingest-worker has caught up: fewer is a lost event, more a duplicate counted twice (or an event the intake
published but could not acknowledge: the caller compares with storage to tell them apart).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections import Counter


def acked_events(path: str) -> dict[str, str]:
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) == 2:
                    out[parts[0]] = parts[1]
    except FileNotFoundError:
        pass
    return out


def counted(selector_url: str, pools: set[str]) -> dict[str, int]:
    types = sorted({p.split("-")[1] for p in pools})
    url = f"{selector_url}/pools?instance_types={','.join(types)}&window=0&limit=10000"
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    return {p["pool_id"]: int(p["jobs"]) for p in body["pools"] if p["pool_id"] in pools}


def check(selector_url: str, acked_path: str, deadline_s: float = 120.0) -> dict:
    """Polls pool-selector until every pool's count equals its acknowledged events or the deadline passes."""
    acked = acked_events(acked_path)
    want = Counter(acked.values())
    result = {"acked": len(acked), "counted": 0, "per_pool_mismatch": {}, "waited_s": 0.0, "ok": not acked}
    if not acked:
        return result
    t0 = time.monotonic()
    while True:
        try:
            got = counted(selector_url, set(want))
            result["counted"] = sum(got.values())
            result["per_pool_mismatch"] = {p: {"acked": n, "counted": got.get(p, 0)} for p, n in want.items()
                                           if got.get(p, 0) != n}
            result["ok"] = not result["per_pool_mismatch"]
        except Exception as e:  # noqa: BLE001 - pool-selector may still be recovering: retry until the deadline
            result["error"] = str(e)
        result["waited_s"] = round(time.monotonic() - t0, 1)
        if result["ok"] or time.monotonic() - t0 > deadline_s:
            return result
        time.sleep(2)


if __name__ == "__main__":
    res = check(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 120.0)
    print(json.dumps(res))
    sys.exit(0 if res["ok"] else 1)
