"""The last words of ``make demo``: the best point, what share of the grid it took, what next.

    python -m orchestrator.demo_summary configs/demo.toml [--venv .venv]

It only reads the experiment (like ``status``), so it is safe at any time.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from . import queries
from .config import load_config
from .errors import OrchestratorError
from .render import cell


def summary_lines(data: dict[str, Any], objective: str, grid_size: int, config_arg: str,
                  venv: str) -> list[str]:
    """The summary of a finished (or stopped) demo, as lines to print."""
    cli = f"{venv}/bin/orchestrator"
    best = data["best"]
    measured = data["evaluations"] + data["failed_points"]
    share = measured / grid_size if grid_size else 0.0
    lines = []
    if best is None:
        lines.append(f"{data['experiment']}: no successful evaluation ({data['state']})")
    else:
        lines.append(f"best point: {cell(best['params'])}  ({objective} = {best['value']:.6g})")
    lines.append(f"{data['strategy']} measured {measured} of the grid's {grid_size} points "
                 f"({share:.0%}); an exhaustive search would run all {grid_size}")
    tries = [
        (f"{cli} status {config_arg}", "where it is (also while it runs)"),
        (f"{cli} history {config_arg}", "every evaluation"),
        (f"{cli} stages {config_arg}", "DSICE's stages: base point, level, best"),
        (f"{cli} plot {config_arg} --out runs/plots", "objective, job timeline, utilisation"),
        (f"cp {config_arg} my.toml", "then point [trial] at your own program"),
        (f"{cli} check my.toml --run-one", "validate it and run one trial, before any state"),
    ]
    width = max(len(command) for command, _ in tries)
    lines += ["", "next, try:"] + [f"  {c.ljust(width)}  # {why}" for c, why in tries]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", metavar="CONFIG")
    parser.add_argument("--venv", default=".venv", help="where the orchestrator script lives")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        data = queries.query(args.config, queries.status)
    except OrchestratorError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return 1
    for line in summary_lines(data, config.objective_key, math.prod(config.shape), args.config,
                              args.venv):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
