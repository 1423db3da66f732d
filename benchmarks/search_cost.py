"""Per-round cost of the search engine at many values per parameter (issue: bounded work).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/search_cost.py [--values 100 500 1000]
[--rounds 8]``. For each size, a 4-parameter grid of ``n`` values per axis and a smooth bowl,
both DSICE variants run ``--rounds`` synchronous rounds of 26 points; printed: the mean and the
largest time of one ``tell()`` (the d-Spline refits happen there) and of one ``ask()``. Numbers
go into docs/benchmarks.md ("Search cost per round").
"""
from __future__ import annotations

import argparse
import statistics
import time

from search import DSICE, EagerDSICE, Strategy


def bowl(n: int):
    centre = [0.3 * n, 0.6 * n, 0.45 * n, 0.7 * n]
    return lambda p: sum((x - c) ** 2 for x, c in zip(p, centre)) / n ** 2


def measure(strategy: Strategy, objective, rounds: int) -> tuple[list[float], list[float]]:
    asks, tells = [], []
    for _ in range(rounds):
        if strategy.done:
            break
        start = time.perf_counter()
        batch = strategy.ask()
        asks.append(time.perf_counter() - start)
        results = {p: objective(p) for p in batch}
        start = time.perf_counter()
        strategy.tell(results)
        tells.append(time.perf_counter() - start)
    return asks, tells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    print("| variant | values per parameter | rounds | tell mean | tell max | ask max |")
    print("|---|---|---|---|---|---|")
    for n in args.values:
        for name, strategy in (("paper", DSICE((n,) * 4, cap=26)),
                               ("eager", EagerDSICE((n,) * 4, cap=26))):
            asks, tells = measure(strategy, bowl(n), args.rounds)
            print(f"| {name} | {n} | {len(tells)} | {1e3 * statistics.mean(tells):.1f} ms | "
                  f"{1e3 * max(tells):.1f} ms | {1e3 * max(asks):.1f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
