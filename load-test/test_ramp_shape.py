"""Unit tests of the ramp (load-test/ramp_shape.py) and a parse check of the locustfiles; no servers, no
locust needed (the LoadTestShape itself is checked too when locust is installed, as in the repo venv).

    python3 -m unittest discover -s load-test -p 'test_*.py'      (`make test` runs it)
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ramp_shape import Ramp, analyze, bends  # noqa: E402


class Schedule(unittest.TestCase):
    def test_seed_002s_ramp_zero_to_500_in_steps_of_ten(self):
        r = Ramp()
        self.assertEqual(r.steps, 50)
        self.assertEqual(r.duration, 500)
        self.assertEqual([r.offered(k) for k in (1, 2, 25, 50)], [10, 20, 250, 500])
        self.assertEqual([r.users(k) for k in (1, 2, 50)], [2, 4, 100])
        offered = [s["offered_rps"] for s in r.schedule()]
        self.assertEqual(offered, [10.0 * k for k in range(1, 51)])
        self.assertTrue(all(b - a == 10 for a, b in zip(offered, offered[1:])))

    def test_ticks_follow_the_clock_and_stop_at_the_end(self):
        r = Ramp()
        self.assertEqual(r.tick(0), (2, 100.0))
        self.assertEqual(r.tick(9.99), (2, 100.0))
        self.assertEqual(r.tick(10), (4, 100.0))
        self.assertEqual(r.tick(499.9), (100, 100.0))
        self.assertIsNone(r.tick(500))
        self.assertIsNone(r.tick(10_000))
        # Users only ever grow, one step at a time.
        users = [r.tick(t / 2)[0] for t in range(0, 1000)]
        self.assertEqual(users, sorted(users))

    def test_settings_from_the_environment(self):
        r = Ramp.from_env({"LOAD_RAMP_MAX_RPS": "60", "LOAD_RAMP_STEP_RPS": "20", "LOAD_RAMP_STEP_SECONDS": "2",
                           "LOAD_RAMP_USER_RPS": "4"})
        self.assertEqual((r.steps, r.duration), (3, 6))
        self.assertEqual([r.users(k) for k in (1, 2, 3)], [5, 10, 15])
        self.assertEqual(r.offered(3), 60)
        # A top that is not a multiple of the step: the last step is the top.
        r = Ramp.from_env({"LOAD_RAMP_MAX_RPS": "25", "LOAD_RAMP_STEP_RPS": "10"})
        self.assertEqual((r.steps, r.target(3)), (3, 25))
        for bad in ({"LOAD_RAMP_MAX_RPS": "0"}, {"LOAD_RAMP_STEP_RPS": "-1"}, {"LOAD_RAMP_USER_RPS": "nan"},
                    {"LOAD_RAMP_STEP_SECONDS": "soon"}, {"LOAD_RAMP_STEP_RPS": "600"}):
            with self.assertRaises(ValueError, msg=bad):
                Ramp.from_env(bad)

    def test_the_command_line_tells_load_sh_the_duration_and_writes_the_metadata(self):
        env = {**os.environ, "LOAD_RAMP_MAX_RPS": "30", "LOAD_RAMP_STEP_SECONDS": "5"}
        script = str(HERE / "ramp_shape.py")
        out = subprocess.run([sys.executable, script, "--duration"], env=env, capture_output=True, text=True,
                             check=True)
        self.assertEqual(out.stdout.strip(), "15")
        bad = subprocess.run([sys.executable, script, "--duration"], env={**env, "LOAD_RAMP_STEP_RPS": "x"},
                             capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("LOAD_RAMP_STEP_RPS", bad.stderr)
        with tempfile.TemporaryDirectory() as d:
            start = Path(d) / "start"
            start.write_text("1000.5\n")
            meta = Path(d) / "ramp.json"
            subprocess.run([sys.executable, script, "--meta", str(meta), "999.0", "15", "2.0", str(start)],
                           env=env, check=True)
            m = json.loads(meta.read_text())
            self.assertEqual(m["ramp_started"], 1000.5)
            self.assertEqual(m["duration"], 15)
            self.assertEqual(m["ramp"]["max_rps"], 30)
            self.assertIn("users", m)


def synthetic_run(r: Ramp, t0: float, capacity: float, fast_ms: float, slow_ms: float):
    """A stack that answers in `fast_ms` up to `capacity` requests/s and in `slow_ms` past it, achieving at
    most `capacity`: the requests of every step, evenly spread."""
    out = []
    for s in r.schedule():
        rate = min(s["offered_rps"], capacity)
        n = int(rate * r.step_seconds)
        ms = fast_ms if s["offered_rps"] <= capacity else slow_ms
        for i in range(n):
            out.append((t0 + s["start"] + i * r.step_seconds / n, ms, True))
    return out


class Analysis(unittest.TestCase):
    def test_steps_report_offered_achieved_and_percentiles(self):
        r = Ramp(max_rps=50, step_rps=10, step_seconds=10, user_rps=5)
        t0 = 1_000_000.0
        reqs = synthetic_run(r, t0, capacity=30, fast_ms=4, slow_ms=400)
        reqs.append((t0 + 25.0, 9999.0, False))  # one error in step 3
        reqs.append((t0 - 5.0, 1.0, True))  # before the ramp: ignored
        steps = analyze(r, reqs, t0)
        self.assertEqual([s["offered_rps"] for s in steps], [10, 20, 30, 40, 50])
        for s, want in zip(steps, [10, 20, 30, 30, 30]):
            self.assertAlmostEqual(s["achieved_rps"], want, delta=want * 0.05)
        self.assertEqual([s["errors"] for s in steps], [0, 0, 1, 0, 0])
        self.assertEqual([s["p50"] for s in steps], [4, 4, 4, 400, 400])
        self.assertEqual(steps[2]["p99"], 4, "errors are not in the latency")

    def test_where_it_bends(self):
        r = Ramp(max_rps=100, step_rps=10, step_seconds=10, user_rps=5)
        steps = analyze(r, synthetic_run(r, 0.0, capacity=60, fast_ms=5, slow_ms=300), 0.0)
        b = bends(steps)
        self.assertEqual(b["baseline_p99"], 5)
        self.assertEqual(b["latency"]["step"], 7)
        self.assertEqual(b["latency"]["offered_rps"], 70)
        self.assertEqual(b["throughput"]["step"], 7)
        # A stack that keeps up: no bend. One slow step alone is noise, not a bend.
        flat = analyze(r, synthetic_run(r, 0.0, capacity=1000, fast_ms=5, slow_ms=5), 0.0)
        flat[4]["p99"] = 900.0
        b = bends(flat)
        self.assertIsNone(b["latency"])
        self.assertIsNone(b["throughput"])
        # Small absolute changes are not a bend either (2 ms → 5 ms is "more than double").
        tiny = analyze(r, synthetic_run(r, 0.0, capacity=60, fast_ms=2, slow_ms=5), 0.0)
        self.assertIsNone(bends(tiny)["latency"])

    def test_an_empty_run(self):
        r = Ramp(max_rps=20, step_rps=10, step_seconds=10, user_rps=5)
        steps = analyze(r, [], 0.0)
        self.assertEqual([s["achieved_rps"] for s in steps], [0, 0])
        self.assertTrue(math.isnan(steps[0]["p99"]))
        self.assertIsNone(bends(steps)["latency"])


class Locustfiles(unittest.TestCase):
    def test_the_locustfiles_parse(self):
        for f in ("locustfile.py", "ramp_locustfile.py", "report.py", "records.py"):
            path = HERE / f
            compile(path.read_text(), str(path), "exec")

    @unittest.skipUnless(importlib.util.find_spec("locust"), "locust is not installed (scripts/install-deps.sh)")
    def test_the_shape_class_drives_the_ramp(self):
        env = {"LOAD_RAMP_MAX_RPS": "30", "LOAD_RAMP_STEP_SECONDS": "2"}
        code = (
            "import ramp_locustfile as m\n"
            "shape = m.RampShape()\n"
            "assert shape.tick() == (2, 6.0), shape.tick()\n"
            "assert m.RampUser.weight == 1 and not hasattr(m, 'ReadUser') and not hasattr(m, 'WriteUser')\n"
            "shape.start_time -= 5\n"
            "assert shape.tick() == (6, 6.0), shape.tick()\n"
            "shape.start_time -= 10\n"
            "assert shape.tick() is None\n"
            "print('ok')\n"
        )
        out = subprocess.run([sys.executable, "-c", code], cwd=HERE, env={**os.environ, **env},
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip().splitlines()[-1], "ok")


class Report(unittest.TestCase):
    @unittest.skipUnless(importlib.util.find_spec("matplotlib"), "matplotlib is not installed (scripts/install-deps.sh)")
    def test_the_report_has_a_table_by_step_and_a_chart(self):
        r = Ramp(max_rps=100, step_rps=10, step_seconds=10, user_rps=5)
        t0 = 1_700_000_000.0
        with tempfile.TemporaryDirectory() as d:
            out = Path(d)
            with (out / "ramp-requests.csv").open("w") as f:
                f.write("start,name,ms,ok,status,cache\n")
                for start, ms, ok in synthetic_run(r, t0, capacity=60, fast_ms=5, slow_ms=300):
                    f.write(f"{start:.3f},GET /get-pool,{ms},{int(ok)},200,HIT\n")
            from dataclasses import asdict
            (out / "ramp.json").write_text(json.dumps({
                "started": t0 - 1, "ramp_started": t0, "duration": 100, "ramp": asdict(r), "users": "up to 20",
                "locust": "test", "cores": 2, "date": "today"}))
            subprocess.run([sys.executable, str(HERE / "report.py"), d, "ramp"], check=True, capture_output=True)
            report = (out / "load-report.md").read_text()
            self.assertTrue((out / "ramp.png").stat().st_size > 0)
            self.assertIn("| step | users | offered req/s | achieved req/s |", report)
            self.assertIn("**Latency bends at step 7** (70 requests/s offered)", report)
            self.assertIn("**Throughput falls short from step 7**", report)
            self.assertEqual(report.count("\n| 7 ◀ | 14 | 70 |"), 1, report)


if __name__ == "__main__":
    unittest.main()
