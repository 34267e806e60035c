"""What kept the cores busy during one load scenario: the load generator's own CPU (from `/usr/bin/time`)
and every stack process's (utime + stime from /proc before and after), as cores busy on average, added to
the scenario's metadata (`cpu`) for report.py. On a 2-core machine that shares one box between locust and
the stack, this is what tells whether the stack or the load generator bounds the throughput.

    cpu.py snapshot RUN_DIR                  "name cpu-seconds" for each RUN_DIR/<name>.pid
    cpu.py META LOCUST_TIME BEFORE AFTER

META: the scenario's JSON (has `started`, a Unix time); LOCUST_TIME: `/usr/bin/time -f '%U %S'` output
(its last line; a first line may say the command exited non-zero); BEFORE/AFTER: "name cpu-seconds" lines.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def process_tree_seconds(pid: int, proc: Path = Path("/proc")) -> float | None:
    """CPU seconds (utime + stime) of `pid` and every live descendant: a pid file may name a wrapper
    (rabbitmq-server's shell, which starts the Erlang VM as its child), not the process doing the work."""
    hz = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name's closing parenthesis: state, ppid, ... utime (12th), stime (13th).
        rest = stat[stat.rindex(")") + 2:].split()
        p = int(entry.name)
        children.setdefault(int(rest[1]), []).append(p)
        ticks[p] = int(rest[11]) + int(rest[12])
    if pid not in ticks:
        return None
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += ticks.get(p, 0)
        todo.extend(children.get(p, []))
    return total / hz


def snapshot(run_dir: Path) -> str:
    """One "name seconds" line per pid file in run_dir whose process is alive."""
    lines = []
    for f in sorted(run_dir.glob("*.pid")):
        try:
            seconds = process_tree_seconds(int(f.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
        if seconds is not None:
            lines.append(f"{f.stem} {seconds:.2f}")
    return "\n".join(lines) + "\n"


def parse_times(text: str) -> dict[str, float]:
    """"name seconds" lines into a dict; malformed lines are skipped."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def parse_time_output(text: str) -> float | None:
    """User + system seconds from GNU time's `%U %S` line (the last line that is two numbers)."""
    for line in reversed(text.splitlines()):
        parts = line.split()
        if len(parts) == 2:
            try:
                return float(parts[0]) + float(parts[1])
            except ValueError:
                continue
    return None


def cores_busy(before: dict[str, float], after: dict[str, float], locust: float | None, wall: float) -> dict[str, float]:
    """Average cores each process kept busy over `wall` seconds, busiest first. A process that restarted
    during the run (its counter went down) or was missing at either end is left out."""
    busy = {}
    if locust is not None:
        busy["locust (load generator)"] = locust / wall
    for name, end in after.items():
        start = before.get(name)
        if start is not None and end >= start:
            busy[name] = (end - start) / wall
    return dict(sorted(busy.items(), key=lambda kv: -kv[1]))


def summary_line(cpu: dict) -> str:
    """One line for the report: the busiest components and the total, against the machine's cores."""
    cores = cpu["cores_busy"]
    shown = [f"{name} {v:.2f}" for name, v in cores.items() if v >= 0.01]
    total = sum(cores.values())
    return (f"CPU over the run, cores busy on average (machine: {cpu['machine_cores']} cores): "
            + ", ".join(shown) + f"; total {total:.2f}.")


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "snapshot":
        sys.stdout.write(snapshot(Path(argv[2])))
        return 0
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    meta_path, time_path, before_path, after_path = map(Path, argv[1:])
    meta = json.loads(meta_path.read_text())
    wall = after_path.stat().st_mtime - float(meta["started"])
    if wall <= 0:
        print(f"cpu.py: no time passed between the start and {after_path}", file=sys.stderr)
        return 1
    locust = parse_time_output(time_path.read_text()) if time_path.exists() else None
    meta["cpu"] = {
        "wall_seconds": round(wall, 1),
        "machine_cores": os.cpu_count(),
        "cores_busy": {k: round(v, 3) for k, v in cores_busy(
            parse_times(before_path.read_text()), parse_times(after_path.read_text()), locust, wall).items()},
    }
    meta_path.write_text(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
