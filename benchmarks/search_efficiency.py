"""Search efficiency: DSICE (with and without exploration) vs random search vs Optuna TPE.

Run: ``.venv/bin/python benchmarks/search_efficiency.py [--quick] [--only NAME ...]`` (a few
minutes; --quick is well under a minute). Prints a markdown table per problem (pasted into
docs/benchmarks.md) plus DSICE's stage sizes and the cost of one ask()+tell() cycle.

Every method runs with at most ``cap`` = 26 concurrent points: DSICE in synchronous rounds,
random search and TPE in batches of 26 asks followed by 26 tells. A round is one job duration
when every job takes the same time: rounds are the simulated wall-clock. "Within 1 %" means a
normalised regret (best - optimum) / (median - optimum) <= 0.01 (see Problem.regret).

Constrained problems: every strategy gets the constraint. DSICE and random search never propose
an invalid point; for TPE an invalid proposal is told a penalty (the worst valid value) and is
not counted as an evaluation or a slot (it would never be submitted as a job).
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))       # run as a script from anywhere

from problems import PROBLEMS, Problem  # noqa: E402

from search import DSICE, ExploringDSICE, RandomSearch, Strategy  # noqa: E402

CAP = 26
BUDGETS = (150, 374)
REGRET_AT = 363             # the regret column: after this many evaluations
NEAR = 0.01
EXPLORE = {"explore_budget": 150, "restarts": 3}      # the "DSICE + exploration" rows
MAX_REJECTS = 100_000       # TPE: invalid proposals tolerated per round before giving up


@dataclass
class Trace:
    """Values in evaluation order, with the round (batch) each evaluation belonged to."""

    values: list[float] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    cycle_seconds: list[float] = field(default_factory=list)
    stage_sizes: list[int] = field(default_factory=list)

    def first(self, reached: Callable[[float], bool]) -> tuple[float, float]:
        """(evaluations, rounds) until the running best first satisfies ``reached``."""
        best = math.inf
        for i, (v, r) in enumerate(zip(self.values, self.rounds)):
            best = min(best, v)
            if reached(best):
                return i + 1, r
        return math.inf, math.inf

    def best_after(self, n: int) -> float:
        return min(self.values[:n])


def run_strategy(s: Strategy, problem: Problem) -> Trace:
    trace, round_no = Trace(), 0
    while not s.done:
        start = time.perf_counter()
        batch = s.ask()
        asked = time.perf_counter()
        round_no += 1
        results = {p: problem(p) for p in batch}
        told = time.perf_counter()
        s.tell(results)
        # Engine time only: the objective (a table lookup here) is excluded.
        trace.cycle_seconds.append(asked - start + time.perf_counter() - told)
        trace.values += list(results.values())
        trace.rounds += [round_no] * len(results)
    if isinstance(s, (DSICE, ExploringDSICE)):
        trace.stage_sizes = [len(r.points) for r in s.stages]
    return trace


def run_tpe(problem: Problem, seed: int, budget: int) -> Trace | None:
    try:
        import optuna
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {f"x{i}": optuna.distributions.IntDistribution(0, n - 1)
             for i, n in enumerate(problem.shape)}
    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    study = optuna.create_study(sampler=sampler)
    valid = problem.constraint
    penalty = float(problem.table[problem.valid].max()) if problem.valid is not None else 0.0
    trace = Trace()
    for round_no in range(1, math.ceil(budget / CAP) + 1):
        trials, rejects = [], 0
        while len(trials) < CAP:
            trial = study.ask(dists)
            point = tuple(trial.params[f"x{i}"] for i in range(len(problem.shape)))
            if valid is None or valid(point):
                trials.append((trial, point))
                continue
            study.tell(trial, penalty)  # free: an invalid point is never submitted
            rejects += 1
            if rejects > MAX_REJECTS:
                raise RuntimeError(f"TPE proposed {rejects} invalid points in one round")
        for trial, point in trials:     # repeats are counted: TPE may ask for a point twice
            value = problem(point)
            study.tell(trial, value)
            trace.values.append(value)
            trace.rounds.append(round_no)
    return trace


@dataclass
class Row:
    method: str
    runs: int
    to_opt: tuple[float, float]
    to_near: tuple[float, float]
    best: tuple[float, ...]
    regret: float                  # normalised regret of the best after REGRET_AT evaluations
    reached: str                   # runs that reached the grid optimum, "k/n"
    total: float
    total_rounds: float


def summarise(method: str, traces: list[Trace], problem: Problem) -> Row:
    def med(xs: Iterator[float]) -> float:
        return statistics.median(list(xs))

    opt = [t.first(lambda v, best=problem.optimum: v <= best) for t in traces]
    hits = sum(1 for e, _ in opt if not math.isinf(e))
    near = [t.first(lambda v: problem.regret(v) <= NEAR) for t in traces]
    # Medians over runs; a run that never got there counts as infinitely late.
    return Row(method, len(traces),
               (med(e for e, _ in opt), med(r for _, r in opt)),
               (med(e for e, _ in near), med(r for _, r in near)),
               tuple(med(t.best_after(b) for t in traces) for b in BUDGETS),
               med(problem.regret(t.best_after(REGRET_AT)) for t in traces),
               f"{hits}/{len(traces)}",
               med(len(t.values) for t in traces), med(t.rounds[-1] for t in traces))


def fmt_count(x: float, budget: float) -> str:
    return f"> {budget:.0f}" if math.isinf(x) else f"{x:.0f}"


def table(problem: Problem, rows: list[Row]) -> str:
    lines = [f"### {problem.name}: {problem.description}; grid optimum {problem.optimum:.5g}",
             "",
             "| method | runs | reached optimum | evals to optimum | rounds to optimum | "
             "evals to 1 % | rounds to 1 % | best @150 | best @374 | "
             f"regret @{REGRET_AT} | evaluations run |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r.method} | {r.runs} | {r.reached} | {fmt_count(r.to_opt[0], r.total)} | "
            f"{fmt_count(r.to_opt[1], r.total_rounds)} | {fmt_count(r.to_near[0], r.total)} | "
            f"{fmt_count(r.to_near[1], r.total_rounds)} | {r.best[0]:.4f} | "
            f"{r.best[1]:.4f} | {r.regret:.4f} | {r.total:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and a smaller budget")
    parser.add_argument("--only", nargs="+", choices=sorted(PROBLEMS), metavar="NAME",
                        help=f"run only these problems ({', '.join(PROBLEMS)})")
    args = parser.parse_args(argv)
    random_seeds = range(3 if args.quick else 10)
    explore_seeds = range(2 if args.quick else 5)
    tpe_seeds = range(1 if args.quick else 3)
    # Random/TPE budget in whole rounds of 26: 390 (>= the paper's 374) or 754 (about twice).
    budget = CAP * (15 if args.quick else 29)

    for name, make in PROBLEMS.items():
        if args.only and name not in args.only:
            continue
        problem = make()
        valid = problem.constraint
        dsice = run_strategy(DSICE(problem.shape, cap=CAP, valid=valid), problem)
        rows = [summarise("DSICE (sync, cap 26)", [dsice], problem)]
        exploring = [run_strategy(ExploringDSICE(problem.shape, cap=CAP, seed=s, valid=valid,
                                                 **EXPLORE), problem) for s in explore_seeds]
        rows.append(summarise(
            f"DSICE + exploration ({EXPLORE['explore_budget']}, {EXPLORE['restarts']} restarts)",
            exploring, problem))
        sequential = run_strategy(DSICE(problem.shape, mode="sequential", valid=valid), problem)
        rows.append(summarise("DSICE sequential (cap 1)", [sequential], problem))
        rows.append(summarise("random", [
            run_strategy(RandomSearch(problem.shape, cap=CAP, seed=s, max_evaluations=budget,
                                      valid=valid),
                         problem) for s in random_seeds], problem))
        tpe = [t for s in tpe_seeds if (t := run_tpe(problem, s, budget)) is not None]
        if tpe:
            rows.append(summarise("Optuna TPE", tpe, problem))
        print(table(problem, rows))
        print()
        print(f"DSICE stage sizes: {dsice.stage_sizes}; rounds {dsice.rounds[-1]}; "
              f"ask+tell per round: mean {1e3 * statistics.mean(dsice.cycle_seconds):.2f} ms, "
              f"max {1e3 * max(dsice.cycle_seconds):.2f} ms")
        cycles = [c for t in exploring for c in t.cycle_seconds]
        print(f"DSICE + exploration: rounds to optimum per seed "
              f"{[t.first(lambda v, best=problem.optimum: v <= best)[1] for t in exploring]}; "
              f"ask+tell per round: mean {1e3 * statistics.mean(cycles):.2f} ms, "
              f"max {1e3 * max(cycles):.2f} ms")
        if not tpe:
            print("Optuna is not installed: TPE skipped (pip install optuna).")
        print()
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
