"""Unit tests of load-test/cpu.py (the load report's CPU line): no servers."""

import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu  # noqa: E402


class CpuTest(unittest.TestCase):
    def test_time_output_with_a_non_zero_exit_line(self):
        self.assertEqual(cpu.parse_time_output("Command exited with non-zero status 124\n12.50 2.50\n"), 15.0)
        self.assertIsNone(cpu.parse_time_output("garbage\n"))

    def test_cores_busy_per_process_busiest_first_restarts_left_out(self):
        before = {"relay": 10.0, "pool-selector": 5.0, "redis": 1.0, "monitor": 50.0}
        after = {"relay": 40.0, "pool-selector": 8.0, "redis": 4.0, "monitor": 2.0, "intake": 3.0}
        busy = cpu.cores_busy(before, after, 60.0, 60.0)
        self.assertEqual(list(busy), ["locust (load generator)", "relay", "pool-selector", "redis"])
        self.assertAlmostEqual(busy["relay"], 0.5)
        self.assertAlmostEqual(busy["locust (load generator)"], 1.0)
        self.assertNotIn("monitor", busy, "a counter that went down means a restart")
        self.assertNotIn("intake", busy, "missing at the start")

    def test_main_adds_cpu_to_the_metadata_and_the_summary_names_the_busiest(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            (d / "before").write_text("relay 1.00\n")
            (d / "time").write_text("3.00 1.00\n")
            (d / "after").write_text("relay 3.00\n")
            mtime = (d / "after").stat().st_mtime
            (d / "m.json").write_text(json.dumps({"started": mtime - 4.0}))
            self.assertEqual(cpu.main(["cpu.py", str(d / "m.json"), str(d / "time"), str(d / "before"), str(d / "after")]), 0)
            meta = json.loads((d / "m.json").read_text())
            self.assertAlmostEqual(meta["cpu"]["cores_busy"]["locust (load generator)"], 1.0, places=2)
            self.assertAlmostEqual(meta["cpu"]["cores_busy"]["relay"], 0.5, places=2)
            line = cpu.summary_line(meta["cpu"])
            self.assertIn("locust (load generator) 1.00", line)
            self.assertIn("total 1.50", line)


class SnapshotTest(unittest.TestCase):
    def test_a_wrapper_counts_its_children(self):
        with tempfile.TemporaryDirectory() as d:
            proc = Path(d)
            # pid 10 (a shell wrapper, 1 tick) started pid 11 (the VM, 300 ticks), which started 12 (5 ticks).
            for pid, ppid, ut, st in [(10, 1, 1, 0), (11, 10, 200, 100), (12, 11, 5, 0), (13, 1, 999, 0)]:
                (proc / str(pid)).mkdir()
                (proc / str(pid) / "stat").write_text(
                    f"{pid} (beam.smp) S {ppid} 1 1 0 -1 0 0 0 0 0 {ut} {st} 0 0 20 0 1 0 0\n")
            hz = os.sysconf("SC_CLK_TCK")
            self.assertAlmostEqual(cpu.process_tree_seconds(10, proc), 306 / hz)
            self.assertAlmostEqual(cpu.process_tree_seconds(12, proc), 5 / hz)
            self.assertIsNone(cpu.process_tree_seconds(99, proc))

    def test_snapshot_of_this_process(self):
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "me.pid").write_text(f"{os.getpid()}\n")
            (Path(d) / "gone.pid").write_text("999999999\n")
            out = cpu.snapshot(Path(d))
            self.assertTrue(out.startswith("me "), out)
            self.assertNotIn("gone", out)


if __name__ == "__main__":
    unittest.main()
