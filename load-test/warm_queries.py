"""Latency of distinct warm queries against one running pool-selector.

One keep-alive HTTP connection (so what is timed is the server, not TCP set-up), N sequential
GET /get-pool requests, every URL different: a window from WINDOWS and a subset of the instance types
present, drawn with a fixed seed. Prints one JSON line: p50/p99/max in ms and the status codes seen.
A 404 ("no events match") is a real answer of a real query and is timed like a 200. The slowest
query is named too, so a tail can be reproduced.
"""

import argparse
import http.client
import json
import math
import random
import time
import urllib.parse

WINDOWS = ["1h", "6h", "24h", "3d", "7d", "30d", "0"]


def percentile(sorted_ms: list[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p% of the samples at or below it."""
    rank = max(1, math.ceil(p / 100 * len(sorted_ms)))
    return sorted_ms[rank - 1]


def report(timed: list[tuple[float, str]], codes: dict[int, int]) -> dict:
    """The JSON line both latency probes print: nearest-rank p50/p95/p99/max of `timed` (ms, query),
    the slowest query and when it ran (1-based), for whoever chases a tail, and the status codes seen."""
    slowest_ms, slowest = max(timed)
    ms = sorted(t for t, _ in timed)
    return {
        "requests": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1],
        "slowest": f"/get-pool?{slowest}",
        "slowest_index": [q for _, q in timed].index(slowest) + 1,
        "codes": {str(k): v for k, v in sorted(codes.items())},
    }


def distinct_queries(types: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    # Enough distinct (window, subset) pairs exist unless the data has a single instance type.
    limit = len(WINDOWS) * (2 ** len(types) - 1)
    if n > limit:
        raise SystemExit(f"only {limit} distinct queries exist for {len(types)} instance types")
    while len(out) < n:
        k = rng.randint(1, min(len(types), 8))
        subset = sorted(rng.sample(types, k))
        window = WINDOWS[len(out) % len(WINDOWS)]
        query = urllib.parse.urlencode({"instance_types": ",".join(subset), "window": window}, safe=",")
        if query not in seen:
            seen.add(query)
            out.append(query)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--types", required=True, help="comma-separated instance types present in the data")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    types = sorted({t for t in a.types.split(",") if t})
    if not types:
        raise SystemExit("no instance types given")
    queries = distinct_queries(types, a.count, a.seed)
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
    timed: list[tuple[float, str]] = []
    codes: dict[int, int] = {}
    for q in queries:
        started = time.perf_counter()
        conn.request("GET", f"/get-pool?{q}")
        resp = conn.getresponse()
        resp.read()
        timed.append(((time.perf_counter() - started) * 1000, q))
        codes[resp.status] = codes.get(resp.status, 0) + 1
    conn.close()
    print(json.dumps(report(timed, codes)))


if __name__ == "__main__":
    main()
