"""Writes load-report.md and latency-over-time.png from the runs load-test/load.sh made, and for the `ramp`
scenario a table by step and ramp.png (achieved vs offered requests/s, p50/p99 per step, where latency bends;
load-test/ramp_shape.py).

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
import cpu  # noqa: E402
import records  # noqa: E402
from ramp_shape import Ramp, analyze, bends  # noqa: E402

DESCRIPTIONS = {
    "read": "relay only: Zipf-ranked instance-type sets, mixed windows, `/get-pool`, `/get-pool k=3`, `/pools`",
    "write": "intake only: `POST /events`, NDJSON batches of unique events",
    "mixed": "both at once (the load every chaos experiment runs under)",
    "ramp": "relay only, seed 002's ramp: the offered load rising step by step to the top (see the table by step)",
}


def ramp_section(out: Path, meta: dict, reqs: list) -> list[str]:
    """The ramp's table by step and ramp.png: what was offered, what was achieved, p50/p99, the bends."""
    ramp = Ramp(**meta["ramp"])
    steps = analyze(ramp, [(r.start, r.ms, r.ok) for r in reqs], meta["ramp_started"])
    found = bends(steps)
    x = [s["offered_rps"] for s in steps]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    top.plot(x, x, "--", color="grey", label="offered")
    top.plot(x, [s["achieved_rps"] for s in steps], "o-", ms=3, label="achieved (answered)")
    top.set_ylabel("requests/s")
    top.set_title("ramp through the relay: achieved vs offered, latency per step")
    for key, name in (("p50", "p50"), ("p99", "p99")):
        bottom.plot(x, [s[key] for s in steps], "o-", ms=3, label=name)
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms, log)")
    bottom.set_xlabel("offered requests/s (step)")
    for axis in (top, bottom):
        for key, color, label in (("latency", "tab:red", "latency bends"),
                                  ("throughput", "tab:purple", "throughput falls short")):
            if found[key]:
                axis.axvline(found[key]["offered_rps"], color=color, ls=":", lw=1.2,
                             label=label if axis is top else None)
    top.legend(loc="upper left")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "ramp.png", dpi=110)
    plt.close(fig)

    def ms(v: float) -> str:
        return "–" if v != v else f"{v:.1f}"

    lines = ["![ramp](ramp.png)", ""]
    lat, thr = found["latency"], found["throughput"]
    if lat:
        lines.append(f"**Latency bends at step {lat['step']}** ({lat['offered_rps']:g} requests/s offered): p99 "
                     f"{lat['p99']:.0f} ms there and at the next step, against {found['baseline_p99']:.1f} ms over "
                     f"the first steps (the bend: more than twice that, and 50 ms more).")
    else:
        lines.append(f"Latency did not bend up to {x[-1]:g} requests/s offered (p99 baseline "
                     f"{ms(found['baseline_p99'])} ms).")
    lines.append("")
    if thr:
        lines.append(f"**Throughput falls short from step {thr['step']}**: {thr['offered_rps']:g} requests/s "
                     f"offered, {thr['achieved_rps']:.1f} answered per second (below 90% of the offer two steps "
                     "in a row): the users wait on slow answers, so the stack sets the pace.")
    else:
        lines.append("Every step achieved at least 90% of its offered rate.")
    lines += ["", "| step | users | offered req/s | achieved req/s | achieved / offered | p50 ms | p99 ms | errors |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in steps:
        ratio = s["achieved_rps"] / s["offered_rps"] if s["offered_rps"] else float("nan")
        mark = " ◀" if (lat and s["step"] == lat["step"]) or (thr and s["step"] == thr["step"]) else ""
        lines.append(f"| {s['step']}{mark} | {s['users']} | {s['offered_rps']:g} | {s['achieved_rps']:.1f} | "
                     f"{100 * ratio:.0f}% | {ms(s['p50'])} | {ms(s['p99'])} | {s['errors']} |")
    return lines


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
        f"{runs[0][1]['cores']} cores, {platform.machine()}), with locust {runs[0][1]['locust']}. **Locust and the "
        "whole stack share this machine** (each scenario's CPU line says how busy each was; anything else the "
        "machine ran is not in it): these numbers are what the stack did on this box, not a capacity figure. Latency is measured by the client (locust), per request; percentiles are exact "
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
        if sc == "ramp" and "ramp" in meta:
            lines += [""] + ramp_section(out, meta, reqs)
        if meta.get("cpu"):
            lines += ["", cpu.summary_line(meta["cpu"])]
        if meta.get("acked") is not None:
            lines += ["", f"Events acknowledged by the intake (202): {meta['acked']}; "
                          f"counted in pool-selector's `/pools` after the run: {meta.get('counted', '?')}."]
        lines.append("")
    (out / "load-report.md").write_text("\n".join(lines))
    extra = " and ramp.png" if any(sc == "ramp" for sc, _, _ in runs) else ""
    print(f"load: wrote {out / 'load-report.md'} and {out / 'latency-over-time.png'}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
