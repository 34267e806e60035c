"""Unit tests of load-test/benchstat.py (the benchmark scripts' statistics and JSON reading): no servers."""

import io
import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchstat  # noqa: E402


def run(*argv, stdin=""):
    """benchstat's command line → (exit status, stdout without the newline, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stderr
    sys.stderr = err
    try:
        rc = benchstat.main(list(argv), stdin=io.StringIO(stdin), out=out)
    finally:
        sys.stderr = saved
    return rc, out.getvalue().rstrip("\n"), err.getvalue()


class StatisticsTest(unittest.TestCase):
    def test_median_odd_picks_the_middle_value_as_written(self):
        self.assertEqual(run("median", "3", "1", "2"), (0, "2", ""))
        # The text of the value picked, not a reformatted float (tables showed DuckDB's ms so).
        self.assertEqual(run("median", "74.36787899860064")[1], "74.36787899860064")
        self.assertEqual(run("median", stdin="10\n2\n\n33\n")[1], "10")

    def test_median_even_is_the_mean_of_the_two_middle_values(self):
        self.assertEqual(run("median", "1", "2", "3", "4")[1], "2.5")
        self.assertEqual(run("median", "1", "3")[1], "2")
        # awk's print: 6 significant digits for a computed value.
        self.assertEqual(run("median", "1.0000001", "1.1234567")[1], "1.06173")
        self.assertEqual(benchstat.median([4, 1, 3, 2])[0], 2.5)

    def test_max_and_min_keep_the_text(self):
        self.assertEqual(run("max", "41.5391", "76.37109375", "9")[1], "76.37109375")
        self.assertEqual(run("max", stdin="5\n-1.50\n2\n")[1], "5")
        self.assertEqual(run("max", "--digits", "1", "1.25", "2.25")[1], "2.2")  # printf's rounding

    def test_no_values_is_a_clear_error(self):
        for cmd in (["median"], ["max"]):
            rc, out, err = run(*cmd, stdin="\n\n")
            self.assertEqual(rc, 1, cmd)
            self.assertEqual(out, "")
            self.assertIn("no values", err)
        with self.assertRaisesRegex(benchstat.BenchStatError, "median of no values"):
            benchstat.median([])

    def test_a_value_that_is_not_a_number_is_an_error(self):
        rc, _, err = run("median", "1", "fast")
        self.assertEqual(rc, 1)
        self.assertIn("not a number: 'fast'", err)

class ArithmeticTest(unittest.TestCase):
    def test_ratio_two_decimals_by_default(self):
        self.assertEqual(run("ratio", "145", "74.36787899860064")[1], "1.95")
        self.assertEqual(run("ratio", "--digits", "3", "51.3", "96.1")[1], "0.534")
        rc, _, err = run("ratio", "1", "0")
        self.assertEqual(rc, 1)
        self.assertIn("/ 0", err)

    def test_calc_prints_like_awk_or_with_fixed_decimals(self):
        self.assertEqual(run("calc", "t * 1000", "t=0.001945")[1], "1.945")
        self.assertEqual(run("calc", "r + t * 1000", "r=51", "t=0.0003")[1], "51.3")
        self.assertEqual(run("calc", "k / 1024", "k=39936")[1], "39")
        self.assertEqual(run("calc", "k / 1024", "k=42536")[1], "41.5391")
        self.assertEqual(run("calc", "--digits", "0", "e / max(s, 0.001)", "e=20000", "s=0")[1], "20000000")
        self.assertEqual(run("calc", "--digits", "1", "b - a", "a=1.25", "b=3.5")[1], "2.2")
        self.assertEqual(run("calc", "-(2 - 3) * 4")[1], "4")

    def test_calc_refuses_anything_but_arithmetic(self):
        for expr, msg in (("__import__('os')", "only numbers"), ("a ** 2", "only numbers"),
                          ("x + 1", "no value given for x"), ("1 / 0", "division by zero"), ("1 +", "not an expression")):
            rc, _, err = run("calc", expr, "a=1")
            self.assertEqual(rc, 1, expr)
            self.assertIn(msg, err)
        self.assertEqual(run("calc", "a", "a")[0], 1)  # not NAME=VALUE


class MetTest(unittest.TestCase):
    def test_at_most_and_at_least(self):
        self.assertEqual(run("met", "0.533", "0.15")[1], "NOT met")
        self.assertEqual(run("met", "0.15", "0.15")[1], "met")
        self.assertEqual(run("met", "55", "5000")[1], "met")
        self.assertEqual(run("met", "--at-least", "9152", "50000")[1], "NOT met")
        self.assertEqual(run("met", "--at-least", "1.51", "1.0")[1], "met")

    def test_nothing_measured_is_not_met(self):
        self.assertEqual(run("met", "", "5")[1], "NOT met")
        self.assertEqual(run("met", "n/a", "5")[1], "NOT met")
        self.assertEqual(run("met", "None", "5")[1], "NOT met")
        self.assertEqual(run("met", "--words", "yes,**NO**", "nan", "5")[1], "**NO**")

    def test_other_words(self):
        self.assertEqual(run("met", "--at-least", "--words", "met,MISSED", "9152", "50000")[1], "MISSED")
        self.assertEqual(run("met", "--words", "yes,**NO**", "21.57", "5")[1], "**NO**")
        self.assertEqual(run("met", "--words", "yes,**NO**", "4.99", "5")[1], "yes")
        self.assertEqual(run("met", "--words", "only-one", "1", "5")[0], 1)


class FormatTest(unittest.TestCase):
    def test_fixed_decimals(self):
        self.assertEqual(run("fmt", "1", "51.2999")[1], "51.3")
        self.assertEqual(run("fmt", "2", "0.6", "3.6912")[1], "0.60 3.69")
        self.assertEqual(run("fmt", "0", "2.5", "3.5")[1], "2 4")  # round half to even, as printf
        self.assertEqual(run("fmt", "2", "-0.001")[1], "0.00")
        self.assertEqual(run("fmt", "1", "x")[0], 1)

    def test_plain_is_awks_print(self):
        self.assertEqual(benchstat.plain(145.0), "145")
        self.assertEqual(benchstat.plain(41.5390625), "41.5391")
        self.assertEqual(benchstat.plain(0.1 + 0.2), "0.3")
        self.assertEqual(benchstat.plain(1e20), "1e+20")


class JsonTest(unittest.TestCase):
    DOC = {
        "ms": 74.36787899860064, "peak_rss_mb": 76.37109375, "pool_id": "pool-a", "first_error": None,
        "pools": [{"pool_id": "p-m7g.large-a", "instance_type": "m7g.large", "jobs": 3},
                  {"pool_id": "p-c6i.large-b", "instance_type": "c6i.large", "jobs": 4},
                  {"pool_id": "p-m7g.large-c", "instance_type": "m7g.large", "jobs": 5}],
        "codes": {"200": 5, "404": 1}, "x_cache": {"MISS": 1, "HIT": 49},
        "view": {"rollup_hours": 47, "raw_hours": 2, "bytes": 314572},
        "hindsight": None,
    }

    def get(self, *paths, doc=None, opts=()):
        return run("json", "-", *opts, *paths, stdin=json.dumps(self.DOC if doc is None else doc))

    def test_fields_print_as_python_prints_them(self):
        self.assertEqual(self.get("ms", "peak_rss_mb", "pool_id")[1], "74.36787899860064 76.37109375 pool-a")
        self.assertEqual(self.get("view.rollup_hours", "view.raw_hours", opts=("--sep", ","))[1], "47,2")

    def test_lists_and_filters(self):
        self.assertEqual(self.get("pools[].jobs|sum")[1], "12")
        self.assertEqual(self.get("pools[].instance_type|uniq")[1], "c6i.large,m7g.large")
        self.assertEqual(self.get("pools[:2].pool_id")[1], "p-m7g.large-a,p-c6i.large-b")
        self.assertEqual(self.get("pools[].pool_id|split:-:1|uniq")[1], "c6i.large,m7g.large")
        self.assertEqual(self.get("pools[].pool_id|join: ")[1], "p-m7g.large-a p-c6i.large-b p-m7g.large-c")
        self.assertEqual(self.get("codes|counts", "x_cache|pairs")[1], "5x200,1x404 HIT:49,MISS:1")
        self.assertEqual(self.get("view.bytes|div:1048576|fmt:1", "ms|round", "ms|fmt:0")[1], "0.3 74 74")

    def test_null_missing_and_fallbacks(self):
        self.assertEqual(self.get("first_error")[1], "n/a")
        self.assertEqual(self.get("first_error", opts=("--null", "-"))[1], "-")
        self.assertEqual(self.get("first_error//-", "rows//0", "scan.raw_hours//view.raw_hours")[1], "- 0 2")
        self.assertEqual(self.get("hindsight.pool_id//none")[1], "none")
        self.assertEqual(self.get("x_cache|pairs", doc={"x_cache": {}})[1], "-")
        rc, out, err = self.get("nope")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("no 'nope' in the JSON", err)

    def test_each_element_of_a_list_one_line(self):
        doc = {"strategies": [{"strategy": "pooled", "steps": 24, "realized_rate": 0.0306},
                              {"strategy": "naive", "steps": 24, "realized_rate": None}]}
        out = self.get("strategy", "steps", "realized_rate|mul:100|fmt:2", doc=doc,
                       opts=("--each", "strategies", "--null", "–"))[1]
        self.assertEqual(out.splitlines(), ["pooled 24 3.06", "naive 24 –"])
        self.assertEqual(self.get("a", doc={"strategies": 3}, opts=("--each", "strategies"))[0], 1)
        self.assertEqual(self.get("a", doc={"strategies": []}, opts=("--each", "strategies")), (0, "", ""))

    def test_a_file_and_a_bad_document(self):
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "body.json")
            Path(f).write_text('{"pool_id": "pool-x"}')
            self.assertEqual(run("json", f, "pool_id")[1], "pool-x")
            Path(f).write_text("<html>502</html>")
            rc, _, err = run("json", f, "pool_id")
            self.assertEqual(rc, 1)
            self.assertIn("is not JSON", err)
            self.assertIn("<html>502", err)
            self.assertEqual(run("json", os.path.join(d, "missing.json"), "a")[0], 1)


class ToolOutputTest(unittest.TestCase):
    METRICS = """# HELP pool_selector_http_requests_total Requests.
# TYPE pool_selector_http_requests_total counter
pool_selector_http_requests_total{route="/get-pool",status="200"} 7
pool_selector_http_requests_total{route="/get-pool",status="404"} 2
pool_selector_http_requests_total{route="/pools",status="200"} 5
ingest_worker_events_written_total 20000
"""

    def test_prom_sums_the_matching_samples(self):
        self.assertEqual(run("prom", "pool_selector_http_requests_total", "route=/get-pool", stdin=self.METRICS)[1], "9")
        self.assertEqual(run("prom", "ingest_worker_events_written_total", stdin=self.METRICS)[1], "20000")
        self.assertEqual(run("prom", "absent_total", stdin=self.METRICS), (0, "", ""))
        self.assertEqual(run("prom", "--default", "0", "absent_total", stdin="")[1], "0")

    def test_wrk(self):
        text = """Running 1s test @ http://127.0.0.1:1/get-pool
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.42ms    2.10ms  30.00ms   90.00%
  Latency Distribution
     50%  800.00us
     75%    1.20ms
     90%    2.50ms
     99%   11.82ms
  46768 requests in 1.00s, 20.00MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:  46768.42
Transfer/sec:     20.00MB
"""
        self.assertEqual(run("wrk", stdin=text)[1], "46768 11.82 10")
        self.assertEqual(run("wrk", stdin="     99%  1.50s\nRequests/sec: 10.6\n")[1], "11 1500.00 0")
        # Without the rate or the 99 % line wrk measured nothing: an error, not a 0 ms p99.
        rc, _, err = run("wrk", stdin="     99%  950.00us\n")
        self.assertEqual(rc, 1)
        self.assertIn("Requests/sec", err)
        rc, _, err = run("wrk", stdin="Requests/sec: 10.6\n")
        self.assertEqual(rc, 1)
        self.assertIn("--latency", err)

    def test_compaction_summary(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "c.log")
            Path(log).write_text('not json\n{"message": "started"}\n'
                                 '{"message": "compaction pass finished", "hours_compacted": 48, '
                                 '"days_merged": 2, "events": 19837}\n')
            self.assertEqual(run("compaction", log)[1], "48 2 19837 0")
            Path(log).write_text('{"message": "started"}\n')
            rc, _, err = run("compaction", log)
            self.assertEqual(rc, 1)
            self.assertIn('no "compaction pass finished" line in', err)

    def test_same_lines(self):
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "a"), os.path.join(d, "b")
            Path(a).write_text("p1\np2\np3\n")
            Path(b).write_text("p1\npX\np3")
            self.assertEqual(run("same-lines", a, b)[1], "2")
            Path(b).write_text("")
            self.assertEqual(run("same-lines", a, b)[1], "0")
            self.assertEqual(run("same-lines", a, os.path.join(d, "missing"))[0], 1)

    def test_this_process(self):
        self.assertGreater(float(run("rss-mb", str(os.getpid()))[1]), 1)
        self.assertGreaterEqual(float(run("cpu-seconds", str(os.getpid()))[1]), 0)
        self.assertEqual(run("rss-mb", "999999999")[0], 1)
        self.assertRegex(run("machine")[1], r"^\d+ cores \(.*\), \d+ GiB, \S+ \S+$")
        port = int(run("free-port")[1])
        self.assertTrue(1024 <= port <= 65535)


if __name__ == "__main__":
    unittest.main()
