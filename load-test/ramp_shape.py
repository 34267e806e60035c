"""The ramp of `make load` (`LOAD_SCENARIOS=ramp`): seed 002's load test, the offered load rising from 0 to
LOAD_RAMP_MAX_RPS requests/s through the relay in steps of LOAD_RAMP_STEP_RPS, each held
LOAD_RAMP_STEP_SECONDS, and what the report makes of it (achieved vs offered, p50/p99 per step, where
latency bends).

The load is offered by constant-throughput users: each asks for at most LOAD_RAMP_USER_RPS requests/s
(locust's `constant_throughput`), so step k runs round(k * step / user_rps) users and offers that many
times user_rps. A user whose answers take longer than 1/user_rps falls behind, which is the point: the
achieved rate drops below the offered one where the stack saturates.

Pure Python, no locust: `ramp_locustfile.py` wraps `Ramp.tick` in a LoadTestShape, `report.py` calls
`analyze` and `bends`. `python3 load-test/ramp_shape.py` prints the schedule, `--duration` the ramp's
length in seconds (load.sh's time limit), `--meta FILE …` writes the run's metadata for report.py; the unit
tests are load-test/test_ramp_shape.py (`make test` runs them).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Ramp:
    max_rps: float = 500.0
    step_rps: float = 10.0
    step_seconds: float = 10.0
    user_rps: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Ramp":
        env = os.environ if env is None else env
        d = cls()

        def num(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None

        ramp = cls(
            max_rps=num("LOAD_RAMP_MAX_RPS", d.max_rps),
            step_rps=num("LOAD_RAMP_STEP_RPS", d.step_rps),
            step_seconds=num("LOAD_RAMP_STEP_SECONDS", d.step_seconds),
            user_rps=num("LOAD_RAMP_USER_RPS", d.user_rps),
        )
        ramp.validate()
        return ramp

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"the ramp's {name} must be a positive number, got {value}")
        if self.step_rps > self.max_rps:
            raise ValueError(f"the step ({self.step_rps} req/s) is larger than the top ({self.max_rps} req/s)")

    @property
    def steps(self) -> int:
        """Steps from the first (step_rps) to the top (max_rps)."""
        return math.ceil(self.max_rps / self.step_rps - 1e-9)

    @property
    def duration(self) -> float:
        return self.steps * self.step_seconds

    def target(self, step: int) -> float:
        """The requests/s step `step` (1-based) aims at."""
        return min(step * self.step_rps, self.max_rps)

    def users(self, step: int) -> int:
        return max(1, round(self.target(step) / self.user_rps))

    def offered(self, step: int) -> float:
        """What step `step`'s users ask for at most, together."""
        return self.users(step) * self.user_rps

    @property
    def spawn_rate(self) -> float:
        """Users started per second: a step's new users all start within its first second."""
        return float(max(1, self.users(self.steps)))

    def step_at(self, t: float) -> int | None:
        """The step running `t` seconds after the start (None once the ramp is over)."""
        if t >= self.duration:
            return None
        return int(max(t, 0.0) // self.step_seconds) + 1

    def tick(self, t: float) -> tuple[int, float] | None:
        """LoadTestShape.tick at run time `t`: (users, spawn rate), or None to stop."""
        step = self.step_at(t)
        if step is None:
            return None
        return self.users(step), self.spawn_rate

    def schedule(self) -> list[dict]:
        return [{"step": k, "start": (k - 1) * self.step_seconds, "end": k * self.step_seconds,
                 "users": self.users(k), "offered_rps": self.offered(k)} for k in range(1, self.steps + 1)]


def percentile(values: list[float], p: float) -> float:
    """Nearest rank, as load-test/records.py."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def analyze(ramp: Ramp, requests: Iterable[tuple[float, float, bool]], t0: float) -> list[dict]:
    """Per step: offered and achieved requests/s, p50/p99 latency and errors.

    `requests` are (start in epoch seconds, latency in ms, ok); `t0` is when the ramp started. The first
    second of each step (at most a fifth of it) is left out: users are still being started then.
    Achieved = answered requests (ok) started in the rest of the step, per second."""
    trim = min(1.0, ramp.step_seconds / 5)
    buckets: dict[int, list[tuple[float, bool]]] = {k: [] for k in range(1, ramp.steps + 1)}
    for start, ms, ok in requests:
        t = start - t0
        step = ramp.step_at(t)
        if step is None or t < 0 or t - (step - 1) * ramp.step_seconds < trim:
            continue
        buckets[step].append((ms, ok))
    span = ramp.step_seconds - trim
    out = []
    for k in range(1, ramp.steps + 1):
        got = buckets[k]
        ok_ms = [ms for ms, ok in got if ok]
        out.append({
            "step": k,
            "users": ramp.users(k),
            "offered_rps": ramp.offered(k),
            "achieved_rps": len(ok_ms) / span,
            "requests": len(got),
            "errors": sum(1 for _, ok in got if not ok),
            "p50": percentile(ok_ms, 50),
            "p99": percentile(ok_ms, 99),
        })
    return out


def bends(steps: list[dict], factor: float = 2.0, min_ms: float = 50.0, short: float = 0.9) -> dict:
    """Where the ramp stops being free.

    * `latency`: the first step whose p99 exceeds the baseline (the median p99 of the first three steps
      with answers) by `factor` times and by at least `min_ms`, and whose next step does too (one slow
      step is noise, two in a row is a bend).
    * `throughput`: the first step achieving less than `short` of the offered rate, two steps in a row.
    Each is the step's dict, or None when the ramp never bent."""
    measured = [s for s in steps if s["requests"] > 0 and not math.isnan(s["p99"])]
    if not measured:
        return {"baseline_p99": float("nan"), "latency": None, "throughput": None}
    first = sorted(s["p99"] for s in measured[:3])
    baseline = first[len(first) // 2]
    limit = max(baseline * factor, baseline + min_ms)

    def slow(s: dict) -> bool:
        return s["requests"] > 0 and not math.isnan(s["p99"]) and s["p99"] > limit

    def falls_short(s: dict) -> bool:
        return s["achieved_rps"] < short * s["offered_rps"]

    def first_pair(pred) -> dict | None:
        for i, s in enumerate(steps):
            if pred(s) and (i + 1 == len(steps) or pred(steps[i + 1])):
                return s
        return None

    return {"baseline_p99": baseline, "latency_limit": limit, "latency": first_pair(slow),
            "throughput": first_pair(falls_short)}


def main(argv: list[str]) -> int:
    try:
        ramp = Ramp.from_env()
    except ValueError as e:
        print(f"load: {e}", file=sys.stderr)
        return 2
    if argv[1:] == ["--duration"]:
        print(int(math.ceil(ramp.duration)))
        return 0
    if argv[1:2] == ["--meta"] and len(argv) == 7:
        # load.sh, after the run: the run's metadata for report.py (the ramp's settings and its start).
        path, started, seconds, locust_version, start_file = argv[2:]
        try:
            ramp_started = float(open(start_file).read())
        except (OSError, ValueError):
            ramp_started = float(started)
        meta = {"started": float(started), "ramp_started": ramp_started, "duration": int(seconds),
                "ramp": asdict(ramp), "locust": locust_version, "cores": os.cpu_count(),
                "users": f"up to {ramp.users(ramp.steps)} relay users of {ramp.user_rps:g} requests/s",
                "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
        with open(path, "w") as f:
            json.dump(meta, f)
        return 0
    for s in ramp.schedule():
        print(f"step {s['step']:3d}  {s['start']:6.0f}-{s['end']:6.0f} s  {s['users']:4d} users  "
              f"{s['offered_rps']:7.1f} req/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
