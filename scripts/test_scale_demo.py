"""Unit tests of scripts/scale_demo.py (`make scale-demo`'s load and watch), against a fake intake and a
fake monitor in this process: no stack needed.

    python3 -m unittest discover -s scripts -p 'test_*.py'      (`make test` runs it)
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import tempfile
import threading
import unittest
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_demo  # noqa: E402


def sample(t, desired, ready=0, unacked=0, publish=0.0, rule="backlog"):
    return {"t": t, "desired": desired, "decided_by": rule, "recommendation": desired, "ready": ready,
            "unacked": unacked, "consumers": 1, "publish_rate": publish, "ack_rate": 1.0, "posted": 0}


class Pieces(unittest.TestCase):
    def test_posted_events_are_valid_ndjson_in_the_demos_own_pools(self):
        body = scale_demo.events_body("ab12cd", 7, 3, datetime(2026, 11, 22, 10, 0, 0, 123456, timezone.utc))
        lines = body.decode().splitlines()
        self.assertEqual(len(lines), 3)
        for line in lines:
            e = json.loads(line)
            self.assertEqual(set(e), {"finished_at", "job_id", "pool_id", "status", "reason"})
            self.assertEqual(e["finished_at"], "2026-11-22T10:00:00.123")
            self.assertRegex(e["pool_id"], r"^pool-sdab12cd\.large-us-east-1[ab]$")
            self.assertTrue(e["job_id"].startswith("scale-demo-ab12cd-7-"))
        self.assertTrue(body.endswith(b"\n"))

    def test_sparkline_keeps_the_peaks(self):
        self.assertEqual(scale_demo.sparkline([1, 1, 8, 8, 1]), "▁▁██▁")
        self.assertEqual(len(scale_demo.sparkline(list(range(600)), width=60)), 60)
        self.assertEqual(scale_demo.sparkline([None, None]), "")

    def test_the_summary_says_when_it_rose_and_fell(self):
        samples = [sample(0, 1), sample(1, 4, ready=300, publish=40), sample(2, 8, ready=500, publish=40),
                   sample(3, 8, ready=450), sample(4, 3, ready=100), sample(5, 1, ready=0)]
        s = scale_demo.summarize(samples)
        self.assertEqual((s["start"], s["peak"], s["peak_at"], s["end"]), (1, 8, 2, 1))
        self.assertEqual((s["max_ready"], s["max_ready_at"], s["drained_at"], s["back_at"]), (500, 2, 5, 5))

    def test_it_is_finished_only_when_drained_and_calm(self):
        calm = [sample(t, 1) for t in range(5)]
        self.assertFalse(scale_demo.finished(calm, posting_done=False))
        self.assertTrue(scale_demo.finished(calm, posting_done=True))
        busy = calm[:-1] + [sample(5, 1, ready=3)]
        self.assertFalse(scale_demo.finished(busy, posting_done=True))
        high = [sample(0, 1)] + [sample(t, 2) for t in range(1, 6)]
        self.assertFalse(scale_demo.finished(high, posting_done=True), "not back at the lowest scale")


class FakeStack:
    """An intake (202, and a 429 for every fifth post) and a monitor whose desired scale is
    ceil(ready / 10), at least 1, and whose queue drains 3 messages a poll once all `expected` messages
    have arrived (a worker that starts late): the backlog then peaks at `expected` whatever the relative
    speed of the poster and the poller on a busy machine."""

    def __init__(self, expected):
        self.expected = expected
        self.lock = threading.Lock()
        self.received = 0
        self.acked = 0
        self.posts = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                with fake.lock:
                    fake.posts += 1
                    refuse = fake.posts % 5 == 0
                    if not refuse:
                        fake.received += 1
                assert self.headers["authorization"] == "Bearer t0k"
                assert all(json.loads(line)["status"] == "SUCCEEDED" for line in body.decode().splitlines())
                self.send_response(429 if refuse else 202)
                if refuse:
                    self.send_header("retry-after", "0")
                self.end_headers()

            def do_GET(self):
                with fake.lock:
                    if fake.received >= fake.expected:
                        fake.acked = min(fake.received, fake.acked + 3)
                    ready = fake.received - fake.acked
                report = {"desired-worker-scale": max(1, math.ceil(ready / 10)), "decided_by": "backlog",
                          "recommendation": 1, "inputs": {"messages_ready": ready, "messages_unacknowledged": 0,
                                                          "consumers": 1, "publish_rate": 0.0, "ack_rate": 3.0}}
                data = json.dumps(report).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class EndToEnd(unittest.TestCase):
    def test_a_backlog_makes_the_scale_rise_and_fall(self):
        fake = FakeStack(expected=40)
        try:
            with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()) as printed:
                code = scale_demo.main(["scale_demo.py", "run", "--intake", fake.url, "--token", "t0k",
                                        "--monitor", fake.url, "--out", d, "--messages", "40", "--rate", "400",
                                        "--interval", "0.02", "--timeout", "60"])
                self.assertEqual(code, 0)
                self.assertEqual(fake.received, 40)
                rows = (Path(d) / "samples.csv").read_text().splitlines()
                desired = [int(r.split(",")[1]) for r in rows[1:]]
                self.assertGreater(max(desired), 1, desired)
                self.assertEqual(desired[-1], 1)
                summary = (Path(d) / "summary.md").read_text()
                self.assertIn("posted 40 messages", summary)
                self.assertIn("desired  ", summary)
                self.assertIn("desired ", printed.getvalue())
        finally:
            fake.server.shutdown()


if __name__ == "__main__":
    unittest.main()
