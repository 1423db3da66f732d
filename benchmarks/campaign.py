"""The paper's tuning campaign on a simulated cluster: wall-clock with speculation off and on.

Run: ``.venv/bin/python benchmarks/campaign.py [--seeds N]`` (about 10 s per run, two runs per
seed). Each run is ``orchestrator simulate configs/paper-campaign.toml`` with another seed: the
real master, DSICE and SQLite against 26 simulated slots, 9 h +- 15 % jobs, 3 % failed attempts,
and the public paper-shaped objective. Prints a markdown table (pasted into
docs/benchmarks.md) next to the paper's 262 h for 3,470 GPU-hours.

Targets with speculation on: utilisation >= 85 %, makespan <= 1.2 x GPU-hours / cap, and the
same final best point (and the same stages) as with speculation off.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.simulate import run_simulation

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "paper-campaign.toml"
PAPER = {"makespan_hours": 262.0, "gpu_hours": 3470.0, "cap": 26, "evaluations": 374}
UTILISATION_TARGET = 0.85
MAKESPAN_FACTOR = 1.2


def run(seed: int, speculation: str) -> dict[str, Any]:
    started = time.perf_counter()
    report = run_simulation(CONFIG, {"seed": seed}, speculation=speculation).report
    return {**report, "real_seconds": time.perf_counter() - started}


def row(label: str, r: dict[str, Any]) -> str:
    best = r["best"]
    return (f"| {label} | {r['makespan_hours']:.1f} | {r['gpu_hours']:.0f} | "
            f"{r['ideal_makespan_hours']:.1f} | {r['utilisation']:.1%} | {r['evaluations']} | "
            f"{r['reruns']} | {r['speculation']['extra_evaluations']} | "
            f"{best['value']:.5f} at {_params(best['params'])} | {r['real_seconds']:.0f} s |")


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in params.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    args = parser.parse_args()
    paper_util = PAPER["gpu_hours"] / (PAPER["cap"] * PAPER["makespan_hours"])
    print("| run | makespan (h) | GPU-hours | GPU-hours / cap (h) | utilisation | evaluations "
          "| reruns | speculative extra | best | real time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| paper (PJM, cap 26) | {PAPER['makespan_hours']:.0f} | {PAPER['gpu_hours']:.0f} | "
          f"{PAPER['gpu_hours'] / PAPER['cap']:.1f} | {paper_util:.1%} | {PAPER['evaluations']} "
          "| - | - | 2.00053 at lr 1e-4, w2 50, w3 0.01, w4 0.01 | - |")
    results: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    failures: list[str] = []
    for seed in range(args.seeds):
        for mode in ("off", "on"):
            r = run(seed, mode)
            results[mode].append(r)
            print(row(f"seed {seed}, speculation {mode}", r), flush=True)
        off, on = results["off"][-1], results["on"][-1]
        if on["best"] != off["best"]:
            failures.append(f"seed {seed}: best {on['best']} with speculation, "
                            f"{off['best']} without")
        if _stage_shapes(on) != _stage_shapes(off):
            failures.append(f"seed {seed}: the stages differ with speculation: "
                            f"{_stage_shapes(on)} against {_stage_shapes(off)}")
        if on["utilisation"] < UTILISATION_TARGET:
            failures.append(f"seed {seed}: utilisation {on['utilisation']:.1%} < 85 %")
        if on["makespan_hours"] > MAKESPAN_FACTOR * on["ideal_makespan_hours"]:
            failures.append(f"seed {seed}: makespan {on['makespan_hours']:.1f} h > 1.2 x "
                            f"{on['ideal_makespan_hours']:.1f} h")
    print()
    for mode, runs in results.items():
        print(f"speculation {mode}: median makespan {_median(runs, 'makespan_hours'):.1f} h, "
              f"median GPU-hours {_median(runs, 'gpu_hours'):.0f}, "
              f"median utilisation {_median(runs, 'utilisation'):.1%}, "
              f"median evaluations {_median(runs, 'evaluations'):.0f}")
    print("targets (speculation on: utilisation >= 85 %, makespan <= 1.2 x GPU-hours / cap, "
          "same best as off): " + ("all met" if not failures else "MISSED: " + "; ".join(failures)))
    return 0 if not failures else 1


def _stage_shapes(report: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(number, level, points) of every stage: what the search decided, without the times."""
    return [(s["number"], s["level"], s["points"]) for s in report["stages"]]


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


if __name__ == "__main__":
    sys.exit(main())
