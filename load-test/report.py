"""Writes load-report.md and latency-over-time.png from the runs load-test/load.sh made.

    report.py DIR SCENARIO...      DIR holds <scenario>-requests.csv and <scenario>.json (run metadata)
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import records  # noqa: E402

DESCRIPTIONS = {
    "read": "relay only: Zipf-ranked instance-type sets, mixed windows, `/get-pool`, `/get-pool k=3`, `/pools`",
    "write": "intake only: `POST /events`, NDJSON batches of unique events",
    "mixed": "both at once (the load every chaos experiment runs under)",
}


def main(out: Path, scenarios: list[str]) -> int:
    runs = []
    for sc in scenarios:
        meta = json.loads((out / f"{sc}.json").read_text())
        reqs = records.load(out / f"{sc}-requests.csv")
        runs.append((sc, meta, reqs))
    fig, axes = plt.subplots(2, len(runs), figsize=(5.5 * len(runs), 6.5), squeeze=False, sharex="col")
    for i, (sc, meta, reqs) in enumerate(runs):
        t0 = meta["started"]
        records.plot_timeline(axes[0][i], axes[1][i], reqs, t0, f"{sc}: {meta['users']}")
    fig.tight_layout()
    fig.savefig(out / "latency-over-time.png", dpi=110)
    lines = [
        "# Load report",
        "",
        f"Measured {runs[0][1]['date']} against `make up` (every service a local process on one machine, "
        f"{runs[0][1]['cores']} cores, {platform.machine()}), with locust {runs[0][1]['locust']}. **The machine "
        "is shared with other builds and tests**: these numbers are what the stack did on a busy 2-core box, "
        "not a capacity figure. Latency is measured by the client (locust), per request; percentiles are exact "
        "(nearest rank over every request). An error is any answer other than 200 (and 404 on the relay, "
        "\"no matching data\") or a failed connection. `stale` counts relay answers marked `X-Cache: STALE`.",
        "",
        "![latency over time](latency-over-time.png)",
        "",
    ]
    for sc, meta, reqs in runs:
        dur = meta["duration"]
        lines += [f"## {sc}: {DESCRIPTIONS.get(sc, '')}", "",
                  f"{meta['users']}, {dur} s. " + meta.get("note", ""), ""]
        lines.append(records.endpoint_table(records.per_endpoint(reqs, float(dur))))
        cache = records.summary([r for r in reqs if r.cache])
        if cache["requests"]:
            lines += ["", f"Relay cache: {cache['hit']} HIT of {cache['requests']} relay answers "
                          f"({100.0 * cache['hit'] / cache['requests']:.0f}%), {cache['stale']} STALE."]
        if meta.get("acked") is not None:
            lines += ["", f"Events acknowledged by the intake (202): {meta['acked']}; "
                          f"counted in pool-selector's `/pools` after the run: {meta.get('counted', '?')}."]
        lines.append("")
    (out / "load-report.md").write_text("\n".join(lines))
    print(f"load: wrote {out / 'load-report.md'} and {out / 'latency-over-time.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
