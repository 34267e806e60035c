"""Samples the monitor's GET /desired-worker-scale every 0.5 s into a CSV, for `seconds` (then exits).

    python -m poolchaos.sampler MONITOR_URL OUT_CSV SECONDS

A failed request is a row with `error` set (the monitor itself down), never a gap.
"""

from __future__ import annotations

import csv
import json
import sys
import time
import urllib.request


def main(url: str, out: str, seconds: float) -> int:
    end = time.time() + seconds
    with open(out, "a", newline="") as f:
        w = csv.writer(f)
        if f.tell() == 0:
            w.writerow(["t", "desired", "fallback", "source_up", "backlog_rule", "expected", "decided_by",
                        "poll_interval_s", "ready", "error"])
        while time.time() < end:
            t = time.time()
            try:
                with urllib.request.urlopen(f"{url}/desired-worker-scale", timeout=2) as r:
                    d = json.load(r)
                pol = d.get("policy", {})
                backlog = (d.get("rules") or {}).get("backlog") or 0
                expected = max(pol.get("min_replicas", 1), min(pol.get("max_replicas", 10), backlog))
                w.writerow([f"{t:.3f}", d["desired-worker-scale"], int(bool(d.get("fallback"))),
                            int(bool(d.get("source_up"))), backlog, expected, d.get("decided_by", ""),
                            pol.get("poll_interval_seconds", ""), (d.get("inputs") or {}).get("messages_ready", ""),
                            ""])
            except Exception as e:  # noqa: BLE001 - recorded as a failed sample
                w.writerow([f"{t:.3f}", "", "", "", "", "", "", "", "", str(e)[:80]])
            f.flush()
            time.sleep(max(0.0, 0.5 - (time.time() - t)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
