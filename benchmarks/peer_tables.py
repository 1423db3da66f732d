"""Figures of one campaign, their medians and ranges over seeds, and the markdown tables.

"Within 1 %" is a normalised regret ``(best - optimum) / (median - optimum) <= 0.01`` (as in
search_efficiency.py); "optimum" is the grid optimum (regret <= 1e-9). Evaluations count in
completion order, and the hours are the virtual clock when that evaluation ended: when the
user could have read the answer.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from cluster import Campaign

NEAR = 0.01
AT_OPTIMUM = 1e-9
REGRET_AT = (150, 363)
UTILISATION_TARGET = 0.85
PAPER_PROBLEM = "paper-4d-smooth"
PAPER_STOP, PAPER_BEST_BY = 374, 150


class Scored(Protocol):
    def regret(self, value: float) -> float: ...


@dataclass(frozen=True)
class RunSummary:
    problem: str
    strategy: str
    mode: str
    seed: int
    budget: int                 # evaluations the run was allowed
    near_evals: float           # inf: not reached
    near_hours: float
    opt_evals: float
    opt_hours: float
    regret: tuple[float, ...]   # normalised regret of the best after each REGRET_AT count
    best_at: float              # evaluation that first reached the run's final best
    utilisation: float
    gpu_hours: float
    makespan: float
    evaluations: int
    failed: int                 # evaluations whose configuration could not run
    asks: int
    duplicates: int
    stopped_at: int | None      # evaluations when it stopped by itself; None: did not stop
    stalled: bool
    seconds: float              # real time of the run (strategy and simulation)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values: "not reached" (inf) becomes None."""
        def plain(x: Any) -> Any:
            if isinstance(x, tuple):
                return [plain(v) for v in x]
            return None if isinstance(x, float) and math.isinf(x) else x
        return {k: plain(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        """The inverse of ``as_dict`` (None back to inf, except ``stopped_at``)."""
        def back(x: Any) -> Any:
            return math.inf if x is None else x
        fields = {k: v if k == "stopped_at" else back(v) for k, v in data.items()}
        fields["regret"] = tuple(back(v) for v in data["regret"])
        return cls(**fields)


def summarise(campaign: Campaign, problem: Scored, *, name: str, strategy: str, seed: int,
              budget: int, seconds: float) -> RunSummary:
    regrets: list[float] = []          # running best's regret after each evaluation
    best = math.inf
    for e in campaign.evaluations:
        if e.value is not None:
            best = min(best, e.value)
        regrets.append(problem.regret(best) if best < math.inf else math.inf)

    def first(limit: float) -> tuple[float, float]:
        for k, r in enumerate(regrets):
            if r <= limit:
                return k + 1, campaign.evaluations[k].ended
        return math.inf, math.inf

    def at(n: int) -> float:
        return regrets[min(n, len(regrets)) - 1] if regrets else math.inf

    near, opt = first(NEAR), first(AT_OPTIMUM)
    best_at = next((k + 1 for k, r in enumerate(regrets) if r <= regrets[-1]), math.inf)
    n = len(campaign.evaluations)
    return RunSummary(
        name, strategy, campaign.mode, seed, budget, near[0], near[1], opt[0], opt[1],
        tuple(at(k) for k in REGRET_AT), best_at, campaign.utilisation, campaign.busy_hours,
        campaign.makespan, n, sum(1 for e in campaign.evaluations if e.value is None),
        campaign.asks, campaign.duplicates, n if campaign.stopped else None, campaign.stalled,
        seconds)


@dataclass(frozen=True)
class Spread:
    """Median and range over seeds; inf stands for "not reached"."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, xs: Iterable[float]) -> Spread:
        values = sorted(xs)
        return cls(statistics.median(values), values[0], values[-1])

    def show(self, digits: int = 0, limit: float | None = None) -> str:
        def one(x: float) -> str:
            if math.isinf(x):
                return f"> {limit:.0f}" if limit is not None else "never"
            return f"{x:.{digits}f}"
        if self.low == self.high:
            return one(self.median)
        return f"{one(self.median)} ({one(self.low)}–{one(self.high)})"


@dataclass(frozen=True)
class Row:
    strategy: str
    mode: str
    runs: int
    near_hours: Spread
    near_evals: Spread
    opt_hours: Spread
    opt_evals: Spread
    regret: tuple[Spread, ...]
    utilisation: Spread
    gpu_hours: Spread
    makespan: Spread
    stops: str                  # "386 (380–392)", "did not stop (> 400)", or "k/n stopped"
    stopped_at: Spread | None
    best_at: Spread
    evaluations: Spread
    duplicates: Spread
    seconds: float


def row(runs: Sequence[RunSummary]) -> Row:
    stops = [r.stopped_at for r in runs if r.stopped_at is not None]
    evaluations = Spread.of(r.evaluations for r in runs)
    stopped_at = Spread.of(stops) if len(stops) == len(runs) else None
    if stopped_at is not None:
        stops_text = stopped_at.show()
    elif not stops:
        stalled = sum(r.stalled for r in runs)
        stops_text = (f"did not stop (> {evaluations.high:.0f})" if not stalled
                      else f"stalled in {stalled}/{len(runs)}")
    else:
        stops_text = f"{len(stops)}/{len(runs)} stopped"
    return Row(runs[0].strategy, runs[0].mode, len(runs),
               Spread.of(r.near_hours for r in runs), Spread.of(r.near_evals for r in runs),
               Spread.of(r.opt_hours for r in runs), Spread.of(r.opt_evals for r in runs),
               tuple(Spread.of(r.regret[i] for r in runs) for i in range(len(REGRET_AT))),
               Spread.of(r.utilisation for r in runs), Spread.of(r.gpu_hours for r in runs),
               Spread.of(r.makespan for r in runs), stops_text, stopped_at,
               Spread.of(r.best_at for r in runs), evaluations,
               Spread.of(r.duplicates for r in runs), sum(r.seconds for r in runs))


def problem_table(title: str, rows: Sequence[Row]) -> str:
    head = ("| strategy | mode | h to 1 % | evals to 1 % | h to optimum | evals to optimum | "
            f"regret @{REGRET_AT[0]} | regret @{REGRET_AT[1]} | utilisation | GPU-h | "
            "makespan h | stops after | repeats asked | real s |")
    lines = [f"### {title}", "", head, "|" + "---|" * 14]
    for r in rows:
        limit = r.evaluations.high
        lines.append(
            f"| {r.strategy} | {r.mode} | {r.near_hours.show(0, _hours_limit(r))} | "
            f"{r.near_evals.show(0, limit)} | {r.opt_hours.show(0, _hours_limit(r))} | "
            f"{r.opt_evals.show(0, limit)} | {r.regret[0].show(3)} | {r.regret[1].show(3)} | "
            f"{_percent(r.utilisation)} | {r.gpu_hours.show()} | {r.makespan.show()} | "
            f"{r.stops} | {r.duplicates.show()} | {r.seconds:.0f} |")
    return "\n".join(lines)


def _hours_limit(r: Row) -> float:
    return r.makespan.high


def _percent(s: Spread) -> str:
    if s.low == s.high:
        return f"{s.median:.0%}"
    return f"{s.median:.0%} ({s.low:.0%}–{s.high:.0%})"


@dataclass(frozen=True)
class Verdict:
    problem: str
    strategy: str
    mode: str
    checks: dict[str, tuple[bool, str]]     # target -> (met, the figures)

    @property
    def met(self) -> bool:
        return all(ok for ok, _ in self.checks.values())


def verdicts(problem: str, rows: Sequence[Row], is_candidate: Any) -> list[Verdict]:
    """Issue 12's targets for every candidate row against the best peer row (any mode)."""
    peers = [r for r in rows if not is_candidate(r.strategy)]
    out: list[Verdict] = []
    if not peers:
        return out
    best_hours = min(peers, key=lambda r: r.near_hours.median)
    best_regret = min(peers, key=lambda r: r.regret[-1].median)
    for r in rows:
        if not is_candidate(r.strategy):
            continue
        checks = {
            "h to 1 %": (r.near_hours.median <= best_hours.near_hours.median,
                         (f"{_h(r.near_hours.median)} vs {_h(best_hours.near_hours.median)} "
                         f"({best_hours.strategy} {best_hours.mode})")),
            f"regret @{REGRET_AT[-1]}": (
                r.regret[-1].median <= best_regret.regret[-1].median + AT_OPTIMUM,
                (f"{r.regret[-1].median:.3f} vs {best_regret.regret[-1].median:.3f} "
                f"({best_regret.strategy} {best_regret.mode})")),
            "utilisation": (r.utilisation.median >= UTILISATION_TARGET,
                            f"{r.utilisation.median:.0%}"),
            "stops": (r.stopped_at is not None, r.stops),
        }
        if problem == PAPER_PROBLEM:
            stop = r.stopped_at.median if r.stopped_at is not None else math.inf
            checks["paper figures"] = (
                stop <= PAPER_STOP and r.best_at.median <= PAPER_BEST_BY,
                (f"stops after {_h(stop)}, best at {_h(r.best_at.median)} "
                f"(<= {PAPER_STOP}, <= {PAPER_BEST_BY})"))
        out.append(Verdict(problem, r.strategy, r.mode, checks))
    return out


def _h(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.0f}"


def verdict_table(all_verdicts: Sequence[Verdict]) -> str:
    if not all_verdicts:
        return "(no candidate rows)"
    names = list(dict.fromkeys(k for v in all_verdicts for k in v.checks))
    lines = ["| problem | strategy | mode | " + " | ".join(names) + " |",
             "|" + "---|" * (3 + len(names))]
    for v in all_verdicts:
        cells = []
        for name in names:
            if name not in v.checks:
                cells.append("–")
                continue
            ok, text = v.checks[name]
            cells.append(f"{'yes' if ok else '**no**'}: {text}")
        lines.append(f"| {v.problem} | {v.strategy} | {v.mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
