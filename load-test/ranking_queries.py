"""Warm /get-pool latency over realistic instance-type sets, against one running pool-selector.

Like warm_queries.py (one keep-alive HTTP connection, N sequential requests, nearest-rank
percentiles), but each request asks for a pair or a triple of the instance types present (what a
Spark job that runs on any of two or three sizes sends), every set different, drawn with a fixed
seed: the same seed gives the same sets, so two servers (or two strategies) answer the same
questions. Extra query parameters (--param strategy=thompson, --param k=3) are added to every
request. --warmup further distinct sets are asked first and not timed. Prints one JSON line:
p50/p95/p99/max in ms, the status codes seen and the slowest query; --picks FILE writes the
pool_id of each timed answer, one a line (so two runs' picks can be compared).
"""

import argparse
import http.client
import json
import random
import time
import urllib.parse

from warm_queries import report


def distinct_sets(types: list[str], n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    pairs = len(types) * (len(types) - 1) // 2
    triples = pairs * (len(types) - 2) // 3
    if n > pairs + triples:
        raise SystemExit(f"only {pairs + triples} pairs and triples exist for {len(types)} instance types")
    seen: set[tuple[str, ...]] = set()
    out: list[list[str]] = []
    while len(out) < n:
        subset = tuple(sorted(rng.sample(types, rng.choice((2, 3)))))
        if subset not in seen:
            seen.add(subset)
            out.append(list(subset))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--types", required=True, help="comma-separated instance types present in the data")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--param", action="append", default=[], help="NAME=VALUE added to every request")
    p.add_argument("--picks", help="write the pool_id of each timed answer here, one a line")
    a = p.parse_args()
    types = sorted({t for t in a.types.split(",") if t})
    if len(types) < 3:
        raise SystemExit("at least 3 instance types are needed for pairs and triples")
    extra = [tuple(kv.split("=", 1)) for kv in a.param]
    sets = distinct_sets(types, a.warmup + a.count, a.seed)
    # The timed sets are the first `count` (the same whatever --warmup), the warm-up ones come after.
    timed_sets, warmup_sets = sets[: a.count], sets[a.count :]
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)

    def get(subset: list[str]) -> tuple[float, str, int, bytes]:
        q = urllib.parse.urlencode([("instance_types", ",".join(subset)), *extra], safe=",")
        started = time.perf_counter()
        conn.request("GET", f"/get-pool?{q}")
        resp = conn.getresponse()
        body = resp.read()
        return (time.perf_counter() - started) * 1000, q, resp.status, body

    for subset in warmup_sets:
        get(subset)
    timed: list[tuple[float, str]] = []
    codes: dict[int, int] = {}
    picks: list[str] = []
    for subset in timed_sets:
        ms, q, status, body = get(subset)
        timed.append((ms, q))
        codes[status] = codes.get(status, 0) + 1
        picks.append(json.loads(body).get("pool_id", "-") if status == 200 else f"HTTP {status}")
    conn.close()
    if a.picks:
        with open(a.picks, "w") as f:
            f.write("".join(f"{x}\n" for x in picks))
    print(json.dumps(report(timed, codes)))


if __name__ == "__main__":
    main()
