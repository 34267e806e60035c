#!/usr/bin/env python3
"""The load and the watch of `make scale-demo` (scripts/scale-demo.sh sets the stack up and restores it).

    scale_demo.py run --intake URL --token T --monitor URL --out DIR [--messages 600] [--rate 40]
                      [--events-per-message 5] [--timeout 900] [--interval 1]

Posts MESSAGES small NDJSON batches to the intake's POST /events (each becomes one RabbitMQ message), at
most RATE a second, waiting out 429/503 as Retry-After says; meanwhile, every INTERVAL seconds, reads the
monitor's GET /desired-worker-scale and prints one line: the desired scale, the rule that decided it, the queue's
ready and unacknowledged messages and its publish and ack rates. It stops once everything was posted, the
queue is empty and the desired scale is back at its minimum for five samples (or after TIMEOUT seconds),
then prints a summary with the scale over time. Files in DIR: samples.csv, summary.md and, when
matplotlib is installed, scale.png.

Standard library only (plus matplotlib for the chart). Unit tests: scripts/test_scale_demo.py.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

BARS = " ▁▂▃▄▅▆▇█"
FIELDS = ["t", "desired", "decided_by", "recommendation", "ready", "unacked", "consumers", "publish_rate",
          "ack_rate", "posted"]


def events_body(run: str, seq: int, n: int, now: datetime) -> bytes:
    """n valid events stamped `now`, in the demo's own pools (`pool-sd<run>.large-<zone>`), as NDJSON."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    zones = ["us-east-1a", "us-east-1b"]
    lines = []
    for i in range(n):
        lines.append(json.dumps({"finished_at": stamp, "job_id": f"scale-demo-{run}-{seq}-{i}",
                                 "pool_id": f"pool-sd{run}.large-{zones[(seq + i) % 2]}",
                                 "status": "SUCCEEDED", "reason": ""}))
    return ("\n".join(lines) + "\n").encode()


def sample_of(report: dict, t: float, posted: int) -> dict:
    """One row of samples.csv from a /desired-worker-scale answer."""
    inputs = report.get("inputs") or {}
    return {"t": round(t, 1), "desired": report.get("desired-worker-scale"),
            "decided_by": report.get("decided_by", ""), "recommendation": report.get("recommendation"),
            "ready": inputs.get("messages_ready"), "unacked": inputs.get("messages_unacknowledged"),
            "consumers": inputs.get("consumers"), "publish_rate": inputs.get("publish_rate"),
            "ack_rate": inputs.get("ack_rate"), "posted": posted}


def line_of(s: dict) -> str:
    def num(v, fmt="{:.0f}"):
        return "-" if v is None else fmt.format(v)

    return (f"{s['t']:6.0f}s  desired {num(s['desired']):>2} ({s['decided_by'] or '-':<13})  "
            f"ready {num(s['ready']):>5}  unacked {num(s['unacked']):>3}  "
            f"publish {num(s['publish_rate'], '{:5.1f}')}/s  ack {num(s['ack_rate'], '{:5.1f}')}/s  "
            f"posted {s['posted']}")


def sparkline(values: list[float], width: int = 60) -> str:
    """The values squeezed into `width` characters (the maximum of each slice), as bar heights."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    per = max(1, -(-len(values) // width))
    cols = [max(values[i:i + per]) for i in range(0, len(values), per)]
    top = max(cols) or 1
    return "".join(BARS[round(v / top * (len(BARS) - 1))] for v in cols)


def summarize(samples: list[dict]) -> dict:
    """Peak desired scale (and when), the first and last values, when the backlog peaked and drained."""
    known = [s for s in samples if s["desired"] is not None]
    if not known:
        return {"samples": len(samples)}
    peak = max(known, key=lambda s: (s["desired"], -s["t"]))
    ready = [s for s in samples if s["ready"] is not None]
    top = max(ready, key=lambda s: (s["ready"], -s["t"])) if ready else None
    drained = next((s for s in ready if top and s["t"] > top["t"] and s["ready"] == 0), None)
    back = next((s for s in known if s["t"] > peak["t"] and s["desired"] == known[0]["desired"]), None)
    return {"samples": len(samples), "start": known[0]["desired"], "peak": peak["desired"], "peak_at": peak["t"],
            "peak_rule": peak["decided_by"], "end": known[-1]["desired"],
            "max_ready": top["ready"] if top else None, "max_ready_at": top["t"] if top else None,
            "drained_at": drained["t"] if drained else None, "back_at": back["t"] if back else None}


def finished(samples: list[dict], posting_done: bool, calm: int = 5) -> bool:
    """Everything posted, the queue empty and the scale at its lowest seen, `calm` samples in a row."""
    if not posting_done or len(samples) < calm:
        return False
    floor = min(s["desired"] for s in samples if s["desired"] is not None) if any(
        s["desired"] is not None for s in samples) else None
    tail = samples[-calm:]
    return floor is not None and all(s["ready"] == 0 and s["unacked"] == 0 and s["desired"] == floor
                                     and s["publish_rate"] in (0, 0.0, None) for s in tail)


def http(url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 5.0):
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Poster(threading.Thread):
    """Posts the backlog at most `rate` requests/s, waiting out 429/503 (Retry-After) and retrying."""

    def __init__(self, intake: str, token: str, messages: int, rate: float, per_message: int, run: str):
        super().__init__(daemon=True)
        self.intake, self.token, self.messages, self.rate = intake.rstrip("/"), token, messages, rate
        self.per_message, self.run_id = per_message, run
        self.posted = 0
        self.refused = 0
        self.error: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        headers = {"authorization": f"Bearer {self.token}", "content-type": "application/x-ndjson"}
        start = time.monotonic()
        try:
            while self.posted < self.messages:
                due = start + self.posted / self.rate
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                body = events_body(self.run_id, self.posted, self.per_message, datetime.now(timezone.utc))
                try:
                    status, h, text = http(f"{self.intake}/events", body, headers)
                except OSError as e:
                    status, h, text = 0, {}, str(e).encode()
                if status == 202:
                    self.posted += 1
                elif status in (0, 429, 503):
                    self.refused += 1
                    time.sleep(min(float((h or {}).get("retry-after") or 1), 10))
                else:
                    self.error = f"the intake answered {status}: {text[:300]!r}"
                    return
        finally:
            self.done.set()


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    monitor = args.monitor.rstrip("/")
    status, _, _ = http(f"{monitor}/desired-worker-scale")
    if status != 200:
        print(f"scale-demo: the monitor at {monitor} answers {status}", file=sys.stderr)
        return 1
    poster = Poster(args.intake, args.token, args.messages, args.rate, args.events_per_message,
                    uuid.uuid4().hex[:6])
    print(f"scale-demo: posting {args.messages} messages of {args.events_per_message} events "
          f"(≤ {args.rate:g}/s) to {args.intake}; the monitor's answer every {args.interval:g} s:", flush=True)
    samples: list[dict] = []
    t0 = time.monotonic()
    poster.start()
    deadline = t0 + args.timeout
    with (out / "samples.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        while time.monotonic() < deadline:
            tick = time.monotonic()
            try:
                status, _, text = http(f"{monitor}/desired-worker-scale")
                report = json.loads(text) if status == 200 else {}
            except (OSError, ValueError):
                report = {}
            s = sample_of(report, tick - t0, poster.posted)
            samples.append(s)
            writer.writerow(s)
            f.flush()
            print(line_of(s), flush=True)
            if poster.error:
                print(f"scale-demo: {poster.error}", file=sys.stderr)
                return 1
            if finished(samples, poster.done.is_set()):
                break
            time.sleep(max(0.0, args.interval - (time.monotonic() - tick)))
    summary = summarize(samples)
    timed_out = not finished(samples, poster.done.is_set())
    text = summary_text(summary, samples, poster, timed_out)
    (out / "summary.md").write_text(text)
    print()
    print(text)
    chart(samples, out / "scale.png")
    return 1 if timed_out else 0


def summary_text(summary: dict, samples: list[dict], poster: Poster, timed_out: bool) -> str:
    lines = ["# make scale-demo", ""]
    if "peak" not in summary:
        return "\n".join(lines + ["The monitor gave no desired scale.", ""])
    lines += [
        f"- posted {poster.posted} messages ({poster.refused} refusals waited out)",
        f"- desired worker scale: {summary['start']} at the start, peak {summary['peak']} at "
        f"{summary['peak_at']:.0f} s (decided by {summary['peak_rule']}), {summary['end']} at the end"
        + (f" (back at {summary['back_at']:.0f} s)" if summary.get("back_at") is not None else ""),
        f"- backlog: at most {summary['max_ready']} ready messages (at {summary['max_ready_at']:.0f} s)"
        + (f", drained at {summary['drained_at']:.0f} s" if summary.get("drained_at") is not None else ""),
        "",
        "desired  " + sparkline([s["desired"] for s in samples]),
        "ready    " + sparkline([s["ready"] for s in samples]),
        "",
    ]
    if timed_out:
        lines += ["Stopped at the time limit before the queue drained and the scale came back down.", ""]
    return "\n".join(lines)


def chart(samples: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    t = [s["t"] for s in samples]
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    a.step(t, [s["desired"] for s in samples], where="post", label="desired worker scale")
    a.set_ylabel("workers")
    a.legend(loc="upper right")
    b.plot(t, [s["ready"] for s in samples], label="ready messages")
    b.plot(t, [s["unacked"] for s in samples], label="unacknowledged")
    b.set_ylabel("messages")
    b.set_xlabel("seconds")
    b.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--intake", required=True)
    r.add_argument("--token", required=True)
    r.add_argument("--monitor", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--messages", type=int, default=600)
    r.add_argument("--rate", type=float, default=40.0)
    r.add_argument("--events-per-message", type=int, default=5)
    r.add_argument("--timeout", type=float, default=900.0)
    r.add_argument("--interval", type=float, default=1.0)
    args = p.parse_args(argv[1:])
    if min(args.messages, args.rate, args.events_per_message, args.timeout, args.interval) <= 0:
        p.error("--messages, --rate, --events-per-message, --timeout and --interval must be positive")
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
