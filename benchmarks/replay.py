"""Replay speed: generate a realistic v1 event file and time ``guardian replay`` on it.

Generates ``--events`` events (default 500,000) for ``--services`` services in
three regions, each emitting one metric event per series every 10 s of event
time with Poisson-ish errors and jittered latency; ``--deploys`` of them deploy
(canary, progressive, blue-green, rolling), a few of those go bad, and a few
checks fail. Then it times the replay loop (decode + engine + advance) in
process with the default rule pack and prints one JSON line of figures.

    .venv/bin/python benchmarks/replay.py [--events 500000] [--keep FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guardian.cli.replay_cmd import run_replay
from guardian.engine import Engine, load_rules
from guardian.gc_tuning import tuned_gc

EPOCH_MS = 1_795_478_400_000
REGIONS = ("us-east", "eu-west", "asia-east")
STRATEGIES = ("canary", "progressive", "blue_green", "rolling")


def generate(path: Path, events: int, services: int, deploys: int, seed: int) -> int:
    """Write the event file; return how many lines were written."""
    rng = random.Random(seed)
    names = [f"svc-{i:04d}" for i in range(services)]
    base_latency = {n: rng.uniform(40, 180) for n in names}
    deploying = {n: i for i, n in enumerate(rng.sample(names, deploys))}
    bad = set(rng.sample(sorted(deploying), max(1, deploys // 10)))
    series: list[tuple[str, str, str | None]] = []
    for n in names:
        for region in REGIONS[: rng.randint(1, 3)]:
            cohorts: tuple[str | None, ...] = (None,)
            if n in deploying and STRATEGIES[deploying[n] % 4] == "canary":
                cohorts = ("stable", "canary")
            series.extend((n, region, c) for c in cohorts)
    per_tick = len(series)
    ticks = events // per_tick + 1
    deploy_tick = ticks // 2
    written = 0
    with path.open("wb") as out:
        for tick in range(ticks):
            ts = EPOCH_MS + tick * 10_000
            if tick == deploy_tick:
                for n, i in deploying.items():
                    strategy = STRATEGIES[i % 4]
                    record = {
                        "kind": "deploy",
                        "type": "started",
                        "deploy_id": f"d-{n}",
                        "service": n,
                        "environment": "production",
                        "version": "2.0.0",
                        "previous_version": "1.9.0",
                        "strategy": strategy,
                        "regions": ["us-east"],
                        "timestamp": ts,
                    }
                    out.write(orjson.dumps(record) + b"\n")
                    written += 1
            for n, region, cohort in series:
                if written >= events:
                    return written
                rate = 0.007
                latency = base_latency[n]
                if n in bad and tick >= deploy_tick and (cohort != "stable"):
                    rate, latency = 0.08, latency * 2.5
                requests = rng.randint(150, 250)
                values = {
                    "requests": requests,
                    "errors": sum(1 for _ in range(3) if rng.random() < rate * requests / 3),
                    "latency_p95_ms": round(latency * rng.uniform(0.9, 1.1), 1),
                    "latency_p99_ms": round(latency * 2.2 * rng.uniform(0.9, 1.1), 1),
                    "availability": round(1 - rate * rng.uniform(0.5, 1.0), 4),
                    "cpu_utilization": round(rng.uniform(0.3, 0.6), 3),
                    "memory_utilization": round(rng.uniform(0.4, 0.7), 3),
                }
                record = {
                    "kind": "metric",
                    "service": n,
                    "environment": "production",
                    "region": region,
                    "timestamp": ts - rng.randint(0, 2_000),
                    "values": values,
                }
                if cohort is not None:
                    record["cohort"] = cohort
                out.write(orjson.dumps(record) + b"\n")
                written += 1
    return written


def main() -> None:
    """Generate, replay, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--deploys", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rules", type=Path, default=Path(__file__).resolve().parents[1] / "rules")
    parser.add_argument("--keep", type=Path, default=None, help="Write the event file here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "events.jsonl"
        lines = generate(path, args.events, args.services, args.deploys, args.seed)
        engine = Engine(load_rules(args.rules))
        bad: list[int] = []
        data = path.read_bytes().splitlines()
        with tuned_gc():  # as `guardian replay` does
            start = time.perf_counter()
            decisions = list(run_replay(engine, data, lambda n, _: bad.append(n)))
            elapsed = time.perf_counter() - start
    actions: dict[str, int] = {}
    for d in decisions:
        actions[d.action] = actions.get(d.action, 0) + 1
    stats = engine.stats
    print(
        json.dumps(
            {
                "benchmark": "replay",
                "events": lines,
                "seconds": round(elapsed, 3),
                "events_per_s": round(lines / elapsed),
                "decisions": len(decisions),
                "by_action": actions,
                "undecodable": len(bad),
                "tracked_series": stats.tracked_series,
                "late_events": stats.late_events,
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
