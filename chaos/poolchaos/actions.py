"""Chaos Toolkit actions: the background mixed load, and the faults.

Every fault records its interval with `stack.mark` (the shaded band of the timeline chart and the window
the during-fault hypotheses are measured over) and leaves the stack as it found it: a killed or stopped
component is started again the way a supervisor would (`stack.sh up` starts only what is down), a frozen
one is resumed, a proxy route is set back to `pass`. The experiments' rollbacks call the same restorers
again, so a failure half-way still leaves nothing broken.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from . import stack

LOAD_PIDS = "load.pids"


# ---------------------------------------------------------------------------------------------------
# Load


def start_load(seconds: int = 150, readers: int = 4, writers: int = 2, read_rps: float = 2.0, sets: int = 40) -> dict:
    """Starts the mixed locust scenario (load-test/locustfile.py) and the monitor sampler in the background,
    bounded to `seconds` (they stop by themselves then); their output goes to CHAOS_OUT."""
    out = stack.out_dir()
    env = stack.env()
    run_id = os.urandom(4).hex()
    locust = stack.ROOT / ".venv" / "bin" / "locust"
    lenv = {**os.environ, **env, "LOAD_RUN_ID": run_id, "LOAD_RECORDS": str(out / "requests.csv"),
            "LOAD_ACKED": str(out / "acked.csv"), "LOAD_READ_WEIGHT": str(readers),
            "LOAD_WRITE_WEIGHT": str(writers), "LOAD_READ_RPS": str(read_rps), "LOAD_SETS": str(sets)}
    users = readers + writers
    with (out / "locust.log").open("a") as logf:
        p1 = subprocess.Popen(["timeout", "--kill-after=10", str(seconds + 30), str(locust), "-f",
                               str(stack.ROOT / "load-test" / "locustfile.py"), "--headless", "-u", str(users),
                               "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "5", "--only-summary",
                               "ReadUser", "WriteUser"],
                              env=lenv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    with (out / "sampler.log").open("a") as logf:
        p2 = subprocess.Popen([sys.executable, "-m", "poolchaos.sampler", env["STACK_MONITOR_URL"],
                               str(out / "monitor.csv"), str(seconds + 20)],
                              cwd=str(stack.ROOT / "chaos"), stdout=logf, stderr=subprocess.STDOUT,
                              start_new_session=True)
    (out / LOAD_PIDS).write_text(f"{p1.pid} {p2.pid}\n")
    (out / "load.started").write_text(f"{time.time():.3f} {run_id}\n")
    stack.log(f"mixed load started: {readers} readers at ≤ {read_rps:g}/s, {writers} writers, up to {seconds}s (run {run_id})")
    return {"run_id": run_id, "locust_pid": p1.pid, "sampler_pid": p2.pid}


def stop_load(grace: float = 20) -> dict:
    """Stops the load and the sampler (SIGINT: locust writes its summary), waiting up to `grace` s each,
    then kills their whole sessions: nothing is left running."""
    path = stack.out_dir() / LOAD_PIDS
    if not path.exists():
        return {"stopped": []}
    pids = [int(p) for p in path.read_text().split()]
    for p in pids:
        _signal_group(p, signal.SIGINT)
    deadline = time.time() + grace
    while time.time() < deadline and any(stack.running(p) for p in pids):
        time.sleep(0.2)
    for p in pids:
        _signal_group(p, signal.SIGKILL)
    path.unlink(missing_ok=True)
    (stack.out_dir() / "load.stopped").write_text(f"{time.time():.3f}\n")
    stack.log("mixed load stopped")
    return {"stopped": pids}


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait(seconds: float) -> None:
    """A pause with a log line (the experiments' own pauses are not logged)."""
    stack.log(f"waiting {seconds}s")
    time.sleep(seconds)


# ---------------------------------------------------------------------------------------------------
# Processes


def _pid(component: str) -> int:
    p = stack.pid(component)
    if not stack.running(p):
        raise RuntimeError(f"{component} is not running")
    return p


def kill_mid_batch(component: str = "ingest-worker", times: int = 2, down_s: float = 5, between_s: float = 15,
                   batch_wait_s: float = 15) -> list[dict]:
    """SIGKILLs `component` `times` times, each while the queue has deliveries in flight to it (unacked
    messages: a batch the worker holds and has not acknowledged), restarting it `down_s` after each kill."""
    done = []
    for i in range(times):
        deadline = time.time() + batch_wait_s
        unacked = 0
        while time.time() < deadline:
            try:
                unacked = int(stack.queue_stats().get("messages_unacknowledged", 0))
            except Exception:  # noqa: BLE001 - the management API may be slow; keep trying
                unacked = 0
            if unacked > 0:
                break
            time.sleep(0.05)
        p = _pid(component)
        t0 = time.time()
        os.kill(p, signal.SIGKILL)
        stack.log(f"SIGKILL {component} (pid {p}) with {unacked} messages unacknowledged (kill {i + 1}/{times})")
        time.sleep(down_s)
        took = stack.restart_missing()
        t1 = time.time()
        stack.mark(f"{component} SIGKILL #{i + 1}", t0, t1)
        stack.log(f"{component} restarted ({took:.1f}s)")
        done.append({"pid": p, "unacked_at_kill": unacked, "down_s": round(t1 - t0, 1)})
        if i + 1 < times:
            time.sleep(between_s)
    return done


def kill_and_restart(component: str, down_s: float = 30, sig: str = "SIGKILL") -> dict:
    """Sends `sig` to `component`, leaves it down `down_s` seconds, then starts it again."""
    p = _pid(component)
    t0 = time.time()
    os.kill(p, getattr(signal, sig))
    stack.log(f"{sig} {component} (pid {p}); down for {down_s}s")
    time.sleep(down_s)
    took = stack.restart_missing()
    t1 = time.time()
    stack.mark(f"{component} {sig}, {down_s:g}s down", t0, t1)
    stack.log(f"{component} started again ({took:.1f}s)")
    return {"pid": p, "down_s": round(t1 - t0, 1)}


def stop_and_restart(component: str, down_s: float = 20, grace_s: float = 40) -> dict:
    """Stops `component` cleanly (SIGTERM, waiting for it to exit), leaves it down `down_s` seconds, starts it."""
    p = _pid(component)
    t0 = time.time()
    os.kill(p, signal.SIGTERM)
    deadline = time.time() + grace_s
    while stack.running(p) and time.time() < deadline:
        time.sleep(0.1)
    stopped = time.time() - t0
    stack.log(f"stopped {component} (pid {p}) in {stopped:.1f}s; down for {down_s}s")
    time.sleep(down_s)
    took = stack.restart_missing()
    t1 = time.time()
    stack.mark(f"{component} stopped", t0, t1)
    stack.log(f"{component} started again ({took:.1f}s)")
    return {"pid": p, "stop_s": round(stopped, 1), "down_s": round(t1 - t0, 1)}


def restart_rabbitmq(grace_s: float = 60) -> dict:
    """A broker restart as an operator does it: a clean stop (SIGTERM to the start script, which shuts the
    node down; durable queues and persistent messages survive), then a start, until it answers again."""
    return stop_and_restart("rabbitmq", down_s=0, grace_s=grace_s)


def freeze(component: str, seconds: float = 30) -> dict:
    """SIGSTOPs `component` for `seconds` (it keeps its sockets: clients see a server that never answers),
    then SIGCONT."""
    p = _pid(component)
    t0 = time.time()
    os.kill(p, signal.SIGSTOP)
    stack.log(f"SIGSTOP {component} (pid {p}) for {seconds}s")
    try:
        time.sleep(seconds)
    finally:
        os.kill(p, signal.SIGCONT)
    t1 = time.time()
    stack.mark(f"{component} frozen (SIGSTOP)", t0, t1)
    stack.log(f"SIGCONT {component}")
    return {"pid": p, "frozen_s": round(t1 - t0, 1)}


def resume_all(components: list[str] | None = None) -> None:
    """Rollback: SIGCONT every named component (harmless when it runs)."""
    for c in components or ["redis", "pool-selector", "ingest-worker", "rabbitmq", "monitor"]:
        p = stack.pid(c)
        if stack.running(p):
            os.kill(p, signal.SIGCONT)


def restart_missing() -> float:
    """Rollback: start whatever is down."""
    return stack.restart_missing()


# ---------------------------------------------------------------------------------------------------
# faultproxy (chaos/faultproxy.py): S3 and the management API


def _proxy(route: str, mode: str, delay_ms: int = 0) -> dict:
    url = stack.env().get("STACK_FAULTPROXY_URL")
    if not url:
        raise RuntimeError("the stack runs without the chaos topology: STACK_CHAOS=1 make up")
    return stack.http_json(f"{url}/routes/{route}", "PUT", {"mode": mode, "delay_ms": delay_ms})


def proxy_fault(route: str, mode: str, seconds: float, delay_ms: int = 0, label: str = "") -> dict:
    """Puts faultproxy's `route` in `mode` (delay, refuse, blackhole) for `seconds`, then back to pass."""
    t0 = time.time()
    _proxy(route, mode, delay_ms)
    stack.log(f"faultproxy {route}: {mode}{f' +{delay_ms} ms' if delay_ms else ''} for {seconds}s")
    try:
        time.sleep(seconds)
    finally:
        info = _proxy(route, "pass", 0)
    t1 = time.time()
    stack.mark(label or f"{route} {mode}", t0, t1)
    stack.log(f"faultproxy {route}: pass")
    return {"route": route, "mode": mode, "delay_ms": delay_ms, "seconds": round(t1 - t0, 1),
            "connections_accepted": info.get("accepted")}


def proxy_pass_all() -> None:
    """Rollback: every faultproxy route back to pass."""
    for route in ("s3", "mgmt"):
        try:
            _proxy(route, "pass", 0)
        except Exception:  # noqa: BLE001 - the rollback tries every route
            pass
