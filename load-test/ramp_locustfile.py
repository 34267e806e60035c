"""`make load` scenario `ramp` (LOAD_SCENARIOS=ramp): seed 002's load test through the relay, the offered
load rising from 0 to LOAD_RAMP_MAX_RPS (500) requests/s in steps of LOAD_RAMP_STEP_RPS (10), each held
LOAD_RAMP_STEP_SECONDS (10 s), by constant-throughput users (LOAD_RAMP_USER_RPS, 5 requests/s each).
The schedule and its analysis are in ramp_shape.py; the users are locustfile.py's relay readers (the same
Zipf-ranked instance-type sets, windows and routes), and every request is recorded the same way
(LOAD_RECORDS), so report.py can cut the run into steps. The shape's start (epoch seconds) is written to
LOAD_RAMP_START for that.

    locust -f load-test/ramp_locustfile.py --headless      (load.sh sets the rest)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from locust import LoadTestShape, constant_throughput  # noqa: E402

# A module, not its classes: only RampUser below is a user class of this locustfile.
import locustfile as base  # noqa: E402
from ramp_shape import Ramp  # noqa: E402

RAMP = Ramp.from_env()
START_FILE = os.environ.get("LOAD_RAMP_START")


class RampUser(base.ReadUser):
    """A relay reader asking for at most LOAD_RAMP_USER_RPS requests/s."""

    wait_time = constant_throughput(RAMP.user_rps)
    weight = 1


class RampShape(LoadTestShape):
    """Step k of the ramp runs RAMP.users(k) RampUsers; the test stops after the last step."""

    started = False

    def tick(self):
        if not self.started:
            self.started = True
            if START_FILE:
                Path(START_FILE).write_text(f"{time.time() - self.get_run_time():.3f}\n")
        return RAMP.tick(self.get_run_time())
