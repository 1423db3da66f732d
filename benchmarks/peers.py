"""Peers benchmark: DSICE against Optuna, Nevergrad, random and coordinate search on a virtual
batch cluster, measured in what a user pays for (wall-clock hours, GPU-hours).

Run: ``.venv/bin/python benchmarks/peers.py [--quick] [--problems NAME ...]
[--strategies NAME ...] [--modes sync refill] [--out FILE] [--json FILE]``. Prints a markdown
table per problem and the issue-12 targets for every ``dsice*`` row (docs/benchmarks.md,
"Peers on a virtual cluster").

Each run drives one strategy on one problem through ``cluster.VirtualCluster`` (cap 26, 9 h +-
15 % jobs, 3 % of attempts die part-way and are retried, a configuration that cannot run holds
its slot for a quarter of a job), in synchronous rounds and in refill-on-completion mode. Peers
run ``--budget`` evaluations (they never stop by themselves); the project's strategies (names
starting with ``dsice``) run until they stop, at most ``--stop-budget`` evaluations.

Adding a strategy is one line in ``STRATEGIES``: ``("dsice-fast", lambda s: Fast(s.shape,
cap=s.cap, seed=s.seed))``; a factory gets a ``Setting`` (shape, cap, seed, budget).
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]     # run as a script from anywhere

from cluster import MODES, AskTell, ClusterSpec, VirtualCluster
from landscapes import LANDSCAPES
from peer_strategies import CoordinateSearch, NevergradPeer, OptunaPeer
from peer_tables import (
    RunSummary,
    problem_table,
    row,
    summarise,
    verdict_table,
    verdicts,
)

from search import DSICE, EagerDSICE, ExploringDSICE, RandomSearch


@dataclass(frozen=True)
class Setting:
    """What a strategy factory gets for one run."""

    shape: tuple[int, ...]
    cap: int
    seed: int
    budget: int                 # evaluations this run may use


Factory = Callable[[Setting], AskTell]

STRATEGIES: list[tuple[str, Factory]] = [
    ("optuna-tpe", lambda s: OptunaPeer.tpe(s.shape, s.seed)),
    ("optuna-cmaes", lambda s: OptunaPeer.cmaes(s.shape, s.seed)),
    ("ng-ngopt", lambda s: NevergradPeer(s.shape, "NGOpt", cap=s.cap, budget=s.budget,
                                         seed=s.seed)),
    ("ng-discrete-1+1", lambda s: NevergradPeer(s.shape, "DiscreteOnePlusOne", cap=s.cap,
                                                budget=s.budget, seed=s.seed)),
    ("random", lambda s: RandomSearch(s.shape, cap=s.cap, seed=s.seed)),
    ("coordinate", lambda s: CoordinateSearch(s.shape, cap=s.cap)),
    ("dsice", lambda s: DSICE(s.shape, cap=s.cap)),
    ("dsice-async", lambda s: DSICE(s.shape, cap=s.cap, mode="async")),
    ("dsice-explore", lambda s: ExploringDSICE(s.shape, cap=s.cap, seed=s.seed,
                                               explore_budget=150, restarts=3)),
    ("dsice-eager", lambda s: EagerDSICE(s.shape, cap=s.cap, seed=s.seed)),
]
NEEDS = {"optuna-": "optuna", "ng-": "nevergrad"}     # name prefix -> package (the bench extra)
SLOW_FIRST = ("optuna-tpe", "dsice-explore", "ng-ngopt")   # scheduled first: longest runs


def is_project(strategy: str) -> bool:
    """The project's own strategies: run until they stop; checked against the targets."""
    return strategy.startswith("dsice")


@cache
def landscape(name: str) -> Any:
    return LANDSCAPES[name]()


@dataclass(frozen=True)
class Task:
    problem: str
    strategy: str
    mode: str
    seed: int
    cap: int
    budget: int


def run_task(task: Task) -> RunSummary:
    problem = landscape(task.problem)
    factory = dict(STRATEGIES)[task.strategy]
    started = time.perf_counter()
    strategy = factory(Setting(problem.shape, task.cap, task.seed, task.budget))
    cluster = VirtualCluster(ClusterSpec(cap=task.cap, seed=task.seed), problem.outcome,
                             budget=task.budget)
    campaign = cluster.run(strategy, task.mode)  # type: ignore[arg-type]
    return summarise(campaign, problem, name=task.problem, strategy=task.strategy,
                     seed=task.seed, budget=task.budget, seconds=time.perf_counter() - started)


def available(strategies: Sequence[str]) -> tuple[list[str], list[str]]:
    """(strategies whose packages import, notes for those skipped)."""
    kept, notes = [], []
    for name in strategies:
        package = next((p for prefix, p in NEEDS.items() if name.startswith(prefix)), None)
        if package is not None:
            try:
                __import__(package)
            except ImportError:
                notes.append(f"{name} skipped: {package} is not installed "
                             "(pip install -e '.[bench]')")
                continue
        kept.append(name)
    return kept, notes


def tasks(args: argparse.Namespace, strategies: Sequence[str]) -> list[Task]:
    out = [Task(p, s, m, seed, args.cap, args.stop_budget if is_project(s) else args.budget)
           for p in args.problems for s in strategies for m in args.modes
           for seed in range(args.seeds)]
    return sorted(out, key=lambda t: t.strategy not in SLOW_FIRST)


def execute(todo: list[Task], workers: int) -> list[RunSummary]:
    """Every task's summary; progress on stderr about every 10 % of the runs."""
    started, results = time.perf_counter(), []
    for result in _stream(todo, workers):
        results.append(result)
        if len(results) % max(1, len(todo) // 10) == 0 or len(results) == len(todo):
            print(f"{len(results)}/{len(todo)} runs, {time.perf_counter() - started:.0f} s",
                  file=sys.stderr, flush=True)
    return results


def _stream(todo: list[Task], workers: int) -> Iterator[RunSummary]:
    if workers <= 1:                   # one process: easier to profile and debug
        yield from map(run_task, todo)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(run_task, todo, chunksize=1)


def _key(run: Task | RunSummary) -> tuple[str, str, str, int]:
    return (run.problem, run.strategy, run.mode, run.seed)


def reused(files: Sequence[Path], wanted: list[Task]) -> dict[tuple[str, str, str, int],
                                                              RunSummary]:
    """The saved runs (``--json`` files) that match a wanted task; a bad line names its file."""
    keys = {_key(t): t for t in wanted}
    out: dict[tuple[str, str, str, int], RunSummary] = {}
    for path in files:
        try:
            lines = path.read_text().splitlines()
            runs = [RunSummary.from_dict(json.loads(line)) for line in lines if line.strip()]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise SystemExit(f"--reuse {path}: not a --json file of this benchmark: {exc}") from None
        for run in runs:
            task = keys.get(_key(run))
            if task is not None and task.budget == run.budget:
                out[_key(run)] = run
    return out


def report(args: argparse.Namespace, results: list[RunSummary], notes: list[str],
           seconds: float, strategies: Sequence[str]) -> str:
    groups: defaultdict[tuple[str, str, str], list[RunSummary]] = defaultdict(list)
    for r in results:
        groups[(r.problem, r.strategy, r.mode)].append(r)
    lines = [header(args, seconds, strategies), *notes, ""]
    all_verdicts = []
    for name in args.problems:
        problem = landscape(name)
        rows = [row(sorted(groups[(name, s, m)], key=lambda r: r.seed))
                for s in strategies for m in args.modes if groups[(name, s, m)]]
        title = (f"{name}: {problem.description}; grid optimum {problem.optimum:.5g}, "
                 f"median {problem.median:.5g}")
        lines += [problem_table(title, rows), ""]
        all_verdicts += verdicts(name, rows, is_project)
    lines += ["### Targets of issue 12 for the project's strategies",
              "", "Each `dsice*` row against the best peer row of its problem (either mode).",
              "", verdict_table(all_verdicts), ""]
    missed = [v for v in all_verdicts if not v.met]
    lines.append(f"{len(all_verdicts) - len(missed)} of {len(all_verdicts)} candidate rows "
                 "meet every target.")
    return "\n".join(lines) + "\n"


def header(args: argparse.Namespace, seconds: float, strategies: Sequence[str]) -> str:
    versions = []
    for package in ("optuna", "cmaes", "nevergrad", "numpy"):
        try:
            versions.append(f"{package} {__import__(package).__version__}")
        except ImportError:
            versions.append(f"{package} missing")
    spec = ClusterSpec(cap=args.cap)
    return "\n".join([
        (f"Peers benchmark, {datetime.date.today().isoformat()}: "
        f"`{' '.join(['benchmarks/peers.py', *sys.argv[1:]])}`"),
        "",
        (f"- cluster: cap {spec.cap}, jobs {spec.mean_hours:g} h +- {spec.spread:.0%} (normal), "
        f"{spec.attempt_failure_rate:.0%} of attempts die part-way and are retried, a "
        f"configuration that cannot run holds its slot {spec.failed_share:g} of a job"),
        (f"- seeds 0..{args.seeds - 1} (median, and the range in brackets); modes "
        f"{', '.join(args.modes)}"),
        (f"- budget: peers {args.budget} evaluations; project strategies until they stop, at "
        f"most {args.stop_budget}; asks (repeats included) at most 2 x the budget"),
        f"- strategies: {', '.join(strategies)}",
        (f"- {', '.join(versions)}; Python {platform.python_version()}, {args.workers} worker(s) "
        f"on {os.cpu_count()} CPUs; real time {seconds / 60:.1f} min"),
    ])


def parse(argv: list[str] | None) -> argparse.Namespace:
    names = [n for n, _ in STRATEGIES]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="2 seeds, budget 200, stop budget 600: a smoke run in a few minutes")
    p.add_argument("--problems", nargs="+", choices=list(LANDSCAPES), default=list(LANDSCAPES),
                   metavar="NAME", help=f"problems to run (default all: {', '.join(LANDSCAPES)})")
    p.add_argument("--strategies", nargs="+", choices=names, default=names, metavar="NAME",
                   help=f"strategies to run (default all: {', '.join(names)})")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 10; --quick 2)")
    p.add_argument("--cap", type=int, default=26, help="slots of the virtual cluster")
    p.add_argument("--budget", type=int, help="evaluations per peer run (default 400)")
    p.add_argument("--stop-budget", type=int,
                   help="most evaluations of a project strategy's run (default 2000)")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--out", type=Path, help="also write the markdown report here")
    p.add_argument("--json", type=Path, help="write every run's figures here (JSON lines)")
    p.add_argument("--reuse", type=Path, nargs="+", default=[], metavar="FILE",
                   help="runs saved with --json: those of the selected problems, strategies, "
                        "modes and seeds are reported, not run again (e.g. rerun only a new "
                        "variant next to saved peers)")
    args = p.parse_args(argv)
    quick = args.quick
    args.seeds = args.seeds if args.seeds is not None else (2 if quick else 10)
    args.budget = args.budget if args.budget is not None else (200 if quick else 400)
    args.stop_budget = (args.stop_budget if args.stop_budget is not None
                        else (600 if quick else 2000))
    for name in ("seeds", "cap", "budget", "stop_budget", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    strategies, notes = available(args.strategies)
    started = time.perf_counter()
    saved = reused(args.reuse, tasks(args, strategies))
    todo = [t for t in tasks(args, strategies) if _key(t) not in saved]
    results = list(saved.values()) + execute(todo, args.workers)
    if saved:
        notes.append(f"{len(saved)} runs reused from {', '.join(map(str, args.reuse))}; "
                     f"{len(todo)} run now")
    text = report(args, results, notes, time.perf_counter() - started, strategies)
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text("".join(json.dumps(r.as_dict()) + "\n" for r in results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
