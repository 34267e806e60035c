"""Reading the per-request records the locust scenarios write (load-test/locustfile.py, LOAD_RECORDS) and
turning them into tables and charts: used by load-test/report.py (`make load`) and chaos/report.py
(`make chaos`). Percentiles are exact (nearest rank over every request), not locust's bucketed ones.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Request:
    start: float  # epoch seconds
    name: str
    ms: float
    ok: bool
    status: int
    cache: str  # the relay's X-Cache (HIT, MISS, STALE, BYPASS), empty for the intake


def load(path: Path) -> list[Request]:
    out = []
    if not path.exists():
        return out
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                out.append(Request(float(row["start"]), row["name"], float(row["ms"]), row["ok"] == "1",
                                   int(row["status"] or 0), row["cache"]))
            except (KeyError, ValueError):
                continue  # a line cut by a kill mid-write
    out.sort(key=lambda r: r.start)
    return out


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def summary(reqs: list[Request], seconds: float | None = None) -> dict:
    """Count, throughput, percentiles, errors and cache states of a list of requests."""
    ms = [r.ms for r in reqs]
    if seconds is None:
        seconds = (reqs[-1].start - reqs[0].start) if len(reqs) > 1 else 1.0
    errors = sum(1 for r in reqs if not r.ok)
    return {
        "requests": len(reqs),
        "rps": len(reqs) / seconds if seconds > 0 else float("nan"),
        "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
        "max": max(ms) if ms else float("nan"),
        "errors": errors,
        "error_pct": 100.0 * errors / len(reqs) if reqs else 0.0,
        "availability_pct": 100.0 * (len(reqs) - errors) / len(reqs) if reqs else float("nan"),
        "stale": sum(1 for r in reqs if r.cache == "STALE"),
        "hit": sum(1 for r in reqs if r.cache == "HIT"),
        "statuses": dict(sorted(_count(str(r.status) for r in reqs if not r.ok).items())),
    }


def _count(items) -> dict:
    d: dict = defaultdict(int)
    for i in items:
        d[i] += 1
    return d


def per_endpoint(reqs: list[Request], seconds: float | None = None) -> dict[str, dict]:
    groups: dict[str, list[Request]] = defaultdict(list)
    for r in reqs:
        groups[r.name].append(r)
    out = {name: summary(g, seconds) for name, g in sorted(groups.items())}
    if reqs:
        out["all"] = summary(reqs, seconds)
    return out


def timeline(reqs: list[Request], t0: float, step: float = 1.0) -> dict[str, list[float]]:
    """Per `step` seconds from t0: request rate, error rate (errors/s), p50 and p99 (ms), stale answers/s."""
    buckets: dict[int, list[Request]] = defaultdict(list)
    for r in reqs:
        buckets[int((r.start - t0) // step)].append(r)
    n = (max(buckets) + 1) if buckets else 0
    out = {"t": [], "rps": [], "eps": [], "p50": [], "p99": [], "stale": []}
    for i in range(n):
        b = buckets.get(i, [])
        ms = [r.ms for r in b]
        out["t"].append(i * step)
        out["rps"].append(len(b) / step)
        out["eps"].append(sum(1 for r in b if not r.ok) / step)
        out["p50"].append(percentile(ms, 50) if ms else float("nan"))
        out["p99"].append(percentile(ms, 99) if ms else float("nan"))
        out["stale"].append(sum(1 for r in b if r.cache == "STALE") / step)
    return out


def fmt_ms(v: float) -> str:
    if v != v:  # NaN
        return "–"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def endpoint_table(stats: dict[str, dict]) -> str:
    lines = ["| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | stale |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in stats.items():
        errs = f"{s['errors']} ({s['error_pct']:.2f}%)"
        if s["statuses"]:
            errs += " " + ", ".join(f"{k}×{v}" for k, v in s["statuses"].items())
        label = "**all**" if name == "all" else f"`{name}`"
        lines.append(f"| {label} | {s['requests']} | {s['rps']:.1f} | {fmt_ms(s['p50'])} | {fmt_ms(s['p95'])} | "
                     f"{fmt_ms(s['p99'])} | {fmt_ms(s['max'])} | {errs} | {s['stale']} |")
    return "\n".join(lines)


def plot_timeline(ax_rate, ax_lat, reqs: list[Request], t0: float, title: str,
                  faults: list[tuple[float, float, str]] = (), step: float = 1.0) -> None:
    """Request rate and errors/s on ax_rate, p50/p99 on ax_lat (log scale); faults shaded [start, end)."""
    tl = timeline(reqs, t0, step)
    ax_rate.plot(tl["t"], tl["rps"], label="requests/s", color="tab:blue", lw=1)
    ax_rate.plot(tl["t"], tl["eps"], label="errors/s", color="tab:red", lw=1.2)
    if any(tl["stale"]):
        ax_rate.plot(tl["t"], tl["stale"], label="stale answers/s", color="tab:orange", lw=1, ls="--")
    ax_rate.set_ylabel("per second")
    ax_rate.set_title(title, fontsize=10)
    ax_lat.plot(tl["t"], tl["p50"], label="p50", color="tab:green", lw=1)
    ax_lat.plot(tl["t"], tl["p99"], label="p99", color="tab:purple", lw=1.2)
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency ms (per 1 s)")
    ax_lat.set_xlabel("seconds since load start")
    for i, (a, b, label) in enumerate(faults):
        for ax in (ax_rate, ax_lat):
            ax.axvspan(a - t0, b - t0, color="tab:red", alpha=0.12, label=label if ax is ax_rate else None)
    ax_rate.legend(loc="upper right", fontsize=7)
    ax_lat.legend(loc="upper right", fontsize=7)
    ax_rate.grid(alpha=0.3)
    ax_lat.grid(alpha=0.3)
