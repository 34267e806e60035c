"""The seed's ranking query, run by DuckDB on the same NDJSON files pool-selector reads.

One fresh process per measurement (like a fresh server): connect, run, fetch. Prints one JSON line with
the wall time, the winner and the process's peak RSS.
"""

import argparse
import json
import resource
import time

import duckdb

SEED_QUERY = """
WITH cte AS (
  SELECT pool_id,
         COUNT(*) AS qtde,
         COUNT(*) FILTER (reason = 'SPOT_INSTANCE_TERMINATION') AS qtde_spot_instance_termination
  FROM read_json_auto(?, hive_partitioning = {hive})
  {where}
  GROUP BY pool_id
)
SELECT pool_id
FROM cte
ORDER BY qtde_spot_instance_termination / qtde
LIMIT 1;
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--glob", required=True)
    p.add_argument("--window", type=int, default=0, help="seconds, 0 = all history")
    p.add_argument(
        "--prune",
        action="store_true",
        help="also filter on the dt/hr partition columns (not in the seed's query)",
    )
    a = p.parse_args()
    where = ""
    if a.window:
        # The seed compared finished_at directly; DuckDB reads these millisecond strings as VARCHAR, so cast.
        where = f"WHERE finished_at::TIMESTAMP >= now()::TIMESTAMP - INTERVAL {int(a.window)} SECOND"
        if a.prune:
            where += (
                f" AND dt >= CAST(now()::TIMESTAMP - INTERVAL {int(a.window)} SECOND AS DATE)"
            )
    started = time.perf_counter()
    con = duckdb.connect()
    query = SEED_QUERY.format(where=where, hive="true" if a.prune else "false")
    winner = con.execute(query, [a.glob]).fetchone()
    elapsed = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"ms": elapsed * 1000, "pool_id": winner[0] if winner else None, "peak_rss_mb": rss_mb}))


if __name__ == "__main__":
    main()
