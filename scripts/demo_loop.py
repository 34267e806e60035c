#!/usr/bin/env python3
"""`make demo`: the launcher's feedback loop, measured. Two arms on the local stack (`make up`), each with its
own pools, launch Spark jobs through a launcher (simulated runs: SIMULATE_TRUTH + SIMULATE_ONLY), and the
outcomes flow back through the intake, RabbitMQ, ingest-worker and S3 into the next ranking.

    demo_loop.py plan  --out DIR                      write DIR/truth.json and DIR/plan.json (pools, arms)
    demo_loop.py run   --out DIR --launcher URL ...   seed, launch in rounds, record DIR/launches.json
    demo_loop.py plot  --out DIR [--docs docs/img]    DIR/demo-loop.{png,svg} (+ a copy in docs/img), figures

Design (scripts/demo.sh runs it):
  * Arms A (the default strategy, pooled) and B (`"strategy": "naive"`, the seed's k/n) launch on DISJOINT
    pool sets that are statistically identical: arm A's pool i and arm B's pool i have the same true
    termination probability (truth.json, the event generator's truth format). Each arm's requests name only
    its own instance types, so each arm learns only from its own outcomes. The instance families are ones
    the stack's event-generator never uses (its catalogue is c6a/m6a/r6a/c6i/.../r7i), so its stream does
    not touch them; a set already holding events from an earlier demo is skipped for the next one.
  * Seeding: every pool gets SEED_JOBS events drawn from its truth (the same draws for pool i of both arms)
    through the intake, so every pool is known to the ranking before the first launch.
  * Rounds: each round launches ROUND_SIZE jobs per arm (max_attempts 1: one choice per launch), waits for
    them to finish, then until pool-selector's /pools counts every outcome (the launcher asks pool-selector
    directly, not the relay, whose cache would answer a round with the previous round's ranking).
  * Regret of a launch: p(chosen pool) - min p over the arm's pools; cumulative per arm.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

# Families outside the event generator's catalogue, one (arm A, arm B) pair per demo run on a stack.
FAMILY_SETS = [
    (["c5", "m5", "r5"], ["c7a", "m7a", "r7a"]),
    (["c5a", "m5a", "r5a"], ["c8g", "m8g", "r8g"]),
    (["c5n", "m5n", "r5n"], ["c6g", "m6g", "r6g"]),
    (["c6in", "m6in", "r6in"], ["c7gn", "m7gd", "r7gd"]),
    (["c6id", "m6id", "r6id"], ["c8i", "m8i", "r8i"]),
]
ZONES = ["us-east-1a", "us-east-1b"]
SIZE = "xlarge"
# True termination probabilities of the 6 pools of an arm (3 types x 2 zones): one clearly best pool,
# two close runners-up, three bad ones.
PROBABILITIES = [0.03, 0.06, 0.08, 0.15, 0.22, 0.30]


def launcher_auth() -> dict:
    """The launcher's Authorization header: the token demo.sh made for the demo's caller."""
    token = os.environ.get("DEMO_LAUNCHER_TOKEN", "")
    if not token:
        raise SystemExit("demo: DEMO_LAUNCHER_TOKEN is not set (demo.sh sets it for the launcher it starts)")
    return {"authorization": f"Bearer {token}"}


def http(method: str, url: str, body: object | None = None, headers: dict | None = None, timeout: float = 30):
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if body is not None and not isinstance(body, bytes):
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read().decode()
            return resp.status, (json.loads(text) if text.strip() else None)
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def pools_counts(selector: str, types: list[str], zones: list[str]) -> dict[str, int]:
    """Jobs per pool as pool-selector counts them now (all history)."""
    q = urllib.parse.urlencode({"instance_types": ",".join(types), "availability_zones": ",".join(zones),
                                "window": "0", "strategy": "naive", "limit": "1000"})
    status, body = http("GET", f"{selector}/pools?{q}")
    if status == 404:
        return {}
    if status != 200:
        raise SystemExit(f"demo: {selector}/pools answered {status}: {body}")
    return {p["pool_id"]: int(p["jobs"]) for p in body.get("pools", [])}


def cmd_plan(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for fam_a, fam_b in FAMILY_SETS:
        types = [f"{f}.{SIZE}" for f in fam_a + fam_b]
        if not pools_counts(args.selector, types, ZONES):
            break
    else:
        raise SystemExit("demo: every family set already has events on this stack; `make down && make up` for a fresh one")
    rng = random.Random(args.seed)
    probs = PROBABILITIES[:]
    rng.shuffle(probs)  # which (type, zone) is best is random, the same for both arms
    arms = {}
    truth_pools = []
    for arm, fams in (("A", fam_a), ("B", fam_b)):
        pools = []
        i = 0
        for fam in fams:
            for zone in ZONES:
                itype = f"{fam}.{SIZE}"
                pid = f"pool-{itype}-{zone}"
                pools.append({"pool_id": pid, "instance_type": itype, "availability_zone": zone,
                              "termination_probability": probs[i], "index": i})
                truth_pools.append({"pool_id": pid, "instance_type": itype, "availability_zone": zone, "weight": 1.0,
                                    "termination_probability": probs[i], "jobs": 0, "spot_terminations": 0,
                                    "other_failures": 0})
                i += 1
        arms[arm] = {"strategy": None if arm == "A" else "naive", "families": fams, "pools": pools,
                     "instance_types": [f"{f}.{SIZE}" for f in fams]}
    truth_pools.sort(key=lambda p: (p["termination_probability"], p["pool_id"]))
    truth = {"seed": args.seed, "skew": 0.0, "other_failure_probability": 0.0, "events": 0, "pools": truth_pools}
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    (out / "plan.json").write_text(json.dumps({"zones": ZONES, "arms": arms}, indent=2) + "\n")
    print(f"demo: arm A {fam_a} (pooled), arm B {fam_b} (naive), zones {ZONES}; truth in {out / 'truth.json'}")
    return 0


def post_events(intake: str, token: str, events: list[dict]) -> None:
    body = "".join(json.dumps(e) + "\n" for e in events).encode()
    for attempt in range(20):
        status, resp = http("POST", f"{intake}/events", body, {"authorization": f"Bearer {token}",
                                                              "content-type": "application/x-ndjson"})
        if status == 202:
            return
        if status in (429, 503):
            time.sleep(0.5 * (attempt + 1))
            continue
        raise SystemExit(f"demo: POST {intake}/events answered {status}: {resp}")
    raise SystemExit("demo: the intake kept refusing the seed events")


def wait_counts(selector: str, arms: dict, want: dict[str, int], what: str, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while True:
        got = {}
        for arm in arms.values():
            got.update(pools_counts(selector, arm["instance_types"], ZONES))
        total_got = sum(got.get(p, 0) for p in want)
        if all(got.get(p, 0) >= n for p, n in want.items()):
            return
        if time.monotonic() > end:
            raise SystemExit(f"demo: {what}: /pools counts {total_got} of {sum(want.values())} jobs after {deadline_s:.0f}s")
        time.sleep(1)


def cmd_run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    plan = json.loads((out / "plan.json").read_text())
    arms = plan["arms"]
    rng = random.Random(args.seed + 1)
    now = datetime.now(timezone.utc)
    # Seed: the same draws for pool i of both arms.
    events = []
    expected: dict[str, int] = {}
    for i in range(len(PROBABILITIES)):
        draws = [rng.random() for _ in range(args.seed_jobs)]
        for arm in arms.values():
            pool = arm["pools"][i]
            for u in draws:
                lost = u < pool["termination_probability"]
                events.append({"finished_at": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "job_id": str(uuid.uuid4()),
                               "pool_id": pool["pool_id"], "status": "FAILED" if lost else "SUCCEEDED",
                               "reason": "SPOT_INSTANCE_TERMINATION" if lost else ""})
            expected[pool["pool_id"]] = args.seed_jobs
    post_events(args.intake, args.token, events)
    t0 = time.monotonic()
    wait_counts(args.selector, arms, expected, "seed events", 180)
    print(f"demo: seeded {len(events)} events ({args.seed_jobs} per pool) through the intake; counted in /pools after "
          f"{time.monotonic() - t0:.1f}s", flush=True)

    launches = []
    rounds = (args.launches + args.round_size - 1) // args.round_size
    started = time.monotonic()
    for rnd in range(rounds):
        ids = []
        n = min(args.round_size, args.launches - rnd * args.round_size)
        for _ in range(n):
            for name in sorted(arms):
                arm = arms[name]
                req = {"application": "astronauts", "instance_types": arm["instance_types"], "availability_zones": ZONES,
                       "size": "small", "max_attempts": 1}
                if arm["strategy"]:
                    req["strategy"] = arm["strategy"]
                status, rec = http("POST", f"{args.launcher}/launch", req, launcher_auth())
                if status != 202:
                    raise SystemExit(f"demo: POST /launch ({name}) answered {status}: {rec}")
                ids.append((name, rec["launch_id"]))
        # Wait until every launch of the round is finished and its outcome published.
        end = time.monotonic() + 120
        done = {}
        while len(done) < len(ids):
            for name, lid in ids:
                if lid in done:
                    continue
                status, rec = http("GET", f"{args.launcher}/launches/{lid}", None, launcher_auth())
                if status == 200 and rec["state"] in ("COMPLETED", "FAILED", "CANCELLED") and \
                        all(a.get("outcome_published") or a.get("state") == "CANCELLED" for a in rec["attempts"]):
                    done[lid] = (name, rec)
            if len(done) < len(ids):
                if time.monotonic() > end:
                    raise SystemExit(f"demo: round {rnd + 1}: {len(ids) - len(done)} launches not finished after 120s")
                time.sleep(0.3)
        for name, lid in ids:
            _, rec = done[lid]
            first = rec["attempts"][0]
            launches.append({"round": rnd, "arm": name, "launch_id": lid, "pool_id": first["pool_id"],
                             "status": first.get("status"), "reason": first.get("reason")})
            expected[first["pool_id"]] = expected.get(first["pool_id"], 0) + 1
        wait_counts(args.selector, arms, expected, f"round {rnd + 1}", 120)
        if (rnd + 1) % 5 == 0 or rnd + 1 == rounds:
            print(f"demo: round {rnd + 1}/{rounds} done ({len(launches)} launches, {time.monotonic() - started:.0f}s)", flush=True)
    (out / "launches.json").write_text(json.dumps(launches, indent=1) + "\n")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    plan = json.loads((out / "plan.json").read_text())
    launches = json.loads((out / "launches.json").read_text())
    labels = {"A": "default (pooled)", "B": "naive (k/n)"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    summary = {}
    for name, arm in sorted(plan["arms"].items()):
        p = {pl["pool_id"]: pl["termination_probability"] for pl in arm["pools"]}
        best = min(p.values())
        mine = [l for l in launches if l["arm"] == name]
        regret = []
        total = 0.0
        for l in mine:
            total += p[l["pool_id"]] - best
            regret.append(total)
        axes[0].plot(range(1, len(regret) + 1), regret, label=f"arm {name}: {labels[name]}")
        best_pool = min(p, key=p.get)
        half = mine[len(mine) // 2:]
        share_best = sum(1 for l in half if l["pool_id"] == best_pool) / max(1, len(half))
        lost = sum(1 for l in mine if l["reason"] == "SPOT_INSTANCE_TERMINATION")
        summary[name] = {"strategy": labels[name], "launches": len(mine), "cumulative_regret": round(total, 4),
                         "mean_regret": round(total / max(1, len(mine)), 4), "best_pool_share_last_half": round(share_best, 3),
                         "spot_terminations": lost}
        ax = axes[1] if name == "A" else axes[2]
        order = sorted(arm["pools"], key=lambda pl: pl["termination_probability"])
        for pl in order:
            counts = []
            c = 0
            for k, l in enumerate(mine, 1):
                c += l["pool_id"] == pl["pool_id"]
                counts.append(c / k)
            ax.plot(range(1, len(counts) + 1), counts, label=f"p={pl['termination_probability']:.2f} {pl['instance_type']} {pl['availability_zone'][-2:]}")
        ax.set_title(f"arm {name} ({labels[name]}): share of launches per pool")
        ax.set_xlabel("launches of the arm")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_title("cumulative regret (p(chosen) - min p)")
    axes[0].set_xlabel("launches of the arm")
    axes[0].legend(fontsize=8)
    fig.suptitle("The launcher's loop on the local stack: launches -> outcomes -> intake -> S3 -> next ranking")
    fig.tight_layout()
    targets = [out]
    if args.docs:
        targets.append(Path(args.docs))
    for t in targets:
        t.mkdir(parents=True, exist_ok=True)
        fig.savefig(t / "demo-loop.png", dpi=110)
        fig.savefig(t / "demo-loop.svg")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, s in summary.items():
        print(f"demo: arm {name} {s['strategy']}: {s['launches']} launches, cumulative regret {s['cumulative_regret']:.3f} "
              f"(mean {s['mean_regret']:.4f}), best pool's share in the last half {s['best_pool_share_last_half']:.0%}, "
              f"{s['spot_terminations']} spot terminations")
    print(f"demo: plot {out / 'demo-loop.png'} and .svg" + (f" (copied to {args.docs})" if args.docs else ""))
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("plan", "run", "plot"):
        p = sub.add_parser(name)
        p.add_argument("--out", required=True)
        p.add_argument("--seed", type=int, default=14)
        p.add_argument("--selector", default="http://127.0.0.1:16050")
        if name == "run":
            p.add_argument("--launcher", required=True)
            p.add_argument("--intake", required=True)
            p.add_argument("--token", required=True)
            p.add_argument("--launches", type=int, default=60, help="launches per arm")
            p.add_argument("--round-size", type=int, default=2, help="launches per arm per round")
            p.add_argument("--seed-jobs", type=int, default=8, help="seed events per pool")
        if name == "plot":
            p.add_argument("--docs", help="also write the plot here (docs/img)")
    args = ap.parse_args(argv[1:])
    return {"plan": cmd_plan, "run": cmd_run, "plot": cmd_plot}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
