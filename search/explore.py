"""Exploration and multi-start around DSICE (``ExploringDSICE``) and the ``make_dsice`` factory.

DSICE's line and direction searches are local: on a deceptive landscape or one with many invalid
points it can settle in the basin of its start. ``ExploringDSICE`` keeps DSICE's rounds exactly and
fills the slots DSICE leaves idle (a round with fewer than ``cap`` points) with exploration points:
half from two TPE-like density-ratio models (mostly the global one), half from a seeded
scrambled-Sobol sample of the grid. Every exploration result is ``inform``-ed to DSICE, so its
line fits use it. When a point measured anywhere is strictly better than everything the current
DSICE run reached, a new DSICE starts from that point, informed with everything measured so far
(nothing is measured twice). Deterministic: replaying the same ask/tell rounds reproduces every
round. See docs/search.md, "Exploration and multi-start".
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .base import Index, Result, Validity
from .dsice import DSICE
from .restarting import RestartingDSICE
from .stage import StageRecord

DSICE_OPTIONS = ("mode", "alpha", "neighbours_first", "start")
EXPLORE_OPTIONS = ("explore_budget", "restarts", "restart_early", "model_share", "seed")
SOBOL_CHUNK = 256          # a power of two keeps the scrambled Sobol points balanced
MODEL_MIN_POINTS = 20      # measured values before the density-ratio model is trusted
GOOD_SHARE = 0.15          # the best share of the measured points is "good" (as in TPE)
BANDWIDTH = 0.08           # kernel width, as a share of each axis
# Share of the model slots (rounded down) for the local model. Its picks near DSICE's best points
# keep the run busy (nearby restarts, bigger stages), so fewer slots stay idle: at 0.5, deceptive-4d
# got 49-112 exploration points in 12 rounds (seeds 0-7) against 97-122 at 0.15, and reached its
# far basin later (docs/benchmarks.md).
LOCAL_SHARE = 0.15
CANDIDATES = 512           # candidates drawn around the good points per model and round


def space_filling(shape: Sequence[int], seed: int) -> Iterator[Index]:
    """Every point of the grid exactly once, in a seeded space-filling order.

    First the distinct grid cells of a scrambled Sobol sequence (as many draws as the grid has
    points), so early points spread over the whole grid; then the cells it missed, in a seeded
    random order, so that the stream is exhaustive.
    """
    shape = tuple(shape)
    size = math.prod(shape)
    sizes = np.asarray(shape)
    # Heavy (~60 MB): imported only when exploration is on.
    from scipy.stats import qmc  # type: ignore[import-untyped]
    sobol = qmc.Sobol(len(shape), scramble=True, seed=seed)
    seen: set[Index] = set()
    drawn = 0
    while drawn < size and len(seen) < size:
        cells = np.minimum((sobol.random(SOBOL_CHUNK) * sizes).astype(int), sizes - 1)
        drawn += SOBOL_CHUNK
        for cell in cells:
            point = tuple(int(i) for i in cell)
            if point not in seen:
                seen.add(point)
                yield point
    for flat in np.random.default_rng(seed).permutation(size):
        point = tuple(int(i) for i in np.unravel_index(int(flat), shape))
        if point not in seen:
            yield point


def _split(measured: list[tuple[Index, float]], minimize: bool
           ) -> tuple[list[Index], list[Index]]:
    """(good, bad): the best GOOD_SHARE of the measured points and the rest (stable order)."""
    ranked = sorted(measured, key=lambda pv: pv[1] if minimize else -pv[1])
    n_good = max(1, math.ceil(GOOD_SHARE * len(ranked)))
    return [p for p, _ in ranked[:n_good]], [p for p, _ in ranked[n_good:]]


def candidates_around(measured: list[tuple[Index, float]], shape: Sequence[int],
                      minimize: bool, rng: np.random.Generator) -> list[Index]:
    """Candidate points near the good points: Gaussian steps of twice the kernel width."""
    good, _ = _split(measured, minimize)
    sizes = np.asarray(shape)
    # Bounded work per round: the candidates are shared out among the good points.
    centres = np.repeat(np.asarray(good), math.ceil(CANDIDATES / len(good)), axis=0)
    steps = rng.normal(0.0, BANDWIDTH * 2, centres.shape) * sizes
    cells = np.clip(np.rint(centres + steps), 0, sizes - 1).astype(int)
    return list(dict.fromkeys(map(tuple, cells.tolist())))


def density_ratio_pick(candidates: list[Index], measured: list[tuple[Index, float]],
                       shape: Sequence[int], minimize: bool, n: int) -> list[Index]:
    """Up to ``n`` candidates with the highest TPE-style ratio l(x) / g(x).

    l and g are Gaussian kernel densities (width BANDWIDTH of each axis) over the good and the
    other measured points. Each pick is added to g ("constant liar"), so a round's picks spread
    out instead of piling onto one spot.
    """
    if not candidates or n <= 0:
        return []
    good, bad = _split(measured, minimize)
    scale = np.asarray(shape, dtype=float) * BANDWIDTH      # coordinates in kernel widths
    x = np.asarray(candidates) / scale
    xx = (x ** 2).sum(axis=1)

    def density(points: list[Index]) -> np.ndarray:
        if not points:
            return np.zeros(len(x))
        y = np.asarray(points) / scale
        # |x - y|^2 by one matrix product: fast for thousands of candidates and points.
        d2 = np.maximum(xx[:, None] + (y ** 2).sum(axis=1)[None, :] - 2.0 * x @ y.T, 0.0)
        return np.asarray(np.exp(-0.5 * d2).sum(axis=1))

    l_sum, g_sum, g_count = density(good), density(bad), len(bad)
    chosen: list[Index] = []
    alive = np.ones(len(x), dtype=bool)
    for _ in range(min(n, len(candidates))):
        # 1e-3 acts as a flat prior (no division by zero far from every point); the +1 keeps
        # the means defined when a set is empty.
        ratio = (l_sum + 1e-3) / (len(good) + 1) / ((g_sum + 1e-3) / (g_count + 1))
        i = int(np.argmax(np.where(alive, ratio, -np.inf)))
        chosen.append(candidates[i])
        alive[i] = False
        g_sum = g_sum + density([candidates[i]])
        g_count += 1
    return chosen


class ExploringDSICE(RestartingDSICE):
    """DSICE in synchronous rounds, plus exploration in its idle slots and multi-start.

    Each round is the inner DSICE's round followed by up to ``cap - len(round)`` exploration
    points, until ``explore_budget`` exploration points are spent; once DSICE is done and no
    restart is warranted, the rest of the budget is spent in exploration rounds of ``cap`` points.
    A ``model_share`` of each round's exploration points comes from the density-ratio models (once
    ``MODEL_MIN_POINTS`` values are known), the rest from the space-filling stream.

    Restarts (at most ``restarts``): a new DSICE run starts from the best point measured anywhere
    when that point is strictly better than everything the current run measured or stands on;
    checked after every round with ``restart_early`` (default), else only once the run is done.
    ``done`` when the run is done, the budget is spent and no restart is warranted. With
    ``explore_budget=0`` it asks exactly what ``DSICE`` asks.
    """

    def __init__(self, shape: Sequence[int], *, cap: int = 26, explore_budget: int = 150,
                 restarts: int = 3, seed: int = 0, restart_early: bool = True,
                 model_share: float = 0.5, minimize: bool = True,
                 valid: Validity | None = None, **dsice_options: Any) -> None:
        super().__init__(shape, minimize=minimize, valid=valid)
        unknown = sorted(set(dsice_options) - set(DSICE_OPTIONS))
        if unknown:
            raise ValueError(f"unknown DSICE option {unknown[0]!r} "
                             f"(known: {', '.join(DSICE_OPTIONS)})")
        if dsice_options.get("mode", "sync") != "sync":
            raise ValueError("exploration needs synchronous rounds: mode must be 'sync'")
        if explore_budget < 0:
            raise ValueError(f"explore_budget must be >= 0, got {explore_budget}")
        if restarts < 0:
            raise ValueError(f"restarts must be >= 0, got {restarts}")
        self.cap = int(cap)
        self.explore_budget = int(explore_budget)
        self.restarts_left = int(restarts)
        self.explored = 0
        self._explore_set: set[Index] = set()
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        if not 0 <= model_share <= 1:
            raise ValueError(f"model_share must be in [0, 1], got {model_share}")
        self.model_share = float(model_share)
        self.restart_early = restart_early
        self._options = {k: v for k, v in dsice_options.items() if k not in ("mode", "start")}
        self._inner = DSICE(self.shape, cap=cap, minimize=minimize, valid=valid,
                            **dsice_options)
        self.runs = 1
        self._earlier_stages: list[StageRecord] = []
        self._stream = space_filling(self.shape, seed)
        self._lookahead: Index | None = None
        # Results in round order (history is in tell order, which may differ): the models and
        # restarts read this, so the decisions do not depend on completion order.
        self._ordered: list[tuple[Index, Result]] = []
        self._round_inner: list[Index] = []
        self._round_explore: list[Index] = []
        self._told: dict[Index, Result] = {}

    # -- state the master shows (delegated to the current DSICE run) ---------------------------
    @property
    def stage(self) -> int:
        return len(self._earlier_stages) + self._inner.stage

    @property
    def stages(self) -> list[StageRecord]:
        """Stage records of every DSICE run so far, numbered on across restarts."""
        offset = len(self._earlier_stages)
        return self._earlier_stages + [replace(r, number=offset + r.number)
                                       for r in self._inner.stages]

    def speculate(self, n: int) -> list[Index]:
        return [p for p in self._inner.speculate(n) if p not in self._outstanding]

    @property
    def done(self) -> bool:
        return (not self._outstanding and self._inner.done and self._restart_point() is None
                and not self._can_explore())

    # -- the protocol ---------------------------------------------------------------------------
    def _propose(self) -> list[Index]:
        if self._outstanding:          # synchronous rounds: wait for the whole round
            return []
        self._settle()
        self._round_inner = self._inner.ask()
        free = min(self.cap - len(self._round_inner), self.explore_budget - self.explored)
        self._round_explore = self._explore(free, set(self._round_inner))
        self.explored += len(self._round_explore)
        self._explore_set.update(self._round_explore)
        return self._round_inner + self._round_explore

    def _observe(self, results: Mapping[Index, Result]) -> None:
        self._told.update((tuple(int(i) for i in p), v) for p, v in results.items())
        if self._outstanding:
            return                     # the round is not complete yet
        told, self._told = self._told, {}
        self._ordered += [(p, told[p]) for p in self._round_inner + self._round_explore]
        # Round order, not completion order: the inner run's decisions stay replayable.
        if self._round_explore:
            self._inner.inform({p: told[p] for p in self._round_explore})
        if self._round_inner:
            self._inner.tell({p: told[p] for p in self._round_inner})
        self._round_inner, self._round_explore = [], []
        self._settle()

    # -- exploration and restarts ----------------------------------------------------------
    def _explore(self, n: int, taken: set[Index]) -> list[Index]:
        """``n`` valid, unmeasured points: model picks, then the space-filling stream.

        Two density-ratio models share the model slots: a *global* one fitted on exploration
        results only (an independent sample, not the DSICE run's cluster, so it can find another
        basin) and a *local* one fitted on everything (steps off DSICE's lines near the best
        points, e.g. along a constraint boundary), which gets ``LOCAL_SHARE`` of them, rounded
        down (none in a round with fewer than 7 model slots).
        """
        n_model = math.ceil(n * self.model_share) if n > 0 else 0
        n_local = int(n_model * LOCAL_SHARE)
        everything = [(p, v) for p, v in self._ordered if v is not None]
        explored = [(p, v) for p, v in everything if p in self._explore_set]
        # Seeded by the state, not by a running generator: replay gives the same picks.
        rng = np.random.default_rng([self.seed, len(self._ordered), self.explored])
        out: list[Index] = []
        for measured, k in ((explored, n_model - n_local), (everything, n_local)):
            if k > 0 and len(measured) >= MODEL_MIN_POINTS:
                taken = taken | set(out)
                around = candidates_around(measured, self.shape, self.minimize, rng)
                candidates = [p for p in around if p not in self._results and p not in taken
                              and self.is_valid(p)]
                out += density_ratio_pick(candidates, measured, self.shape, self.minimize, k)
        taken = taken | set(out)
        while len(out) < n and (point := self._fresh()) is not None:
            self._lookahead = None     # consumed (a taken point is measured in this round anyway)
            if point not in taken:
                out.append(point)
        return out

    def _fresh(self) -> Index | None:
        """The next valid, unmeasured point of the space-filling stream, not consumed."""
        while True:
            point = self._lookahead
            if point is not None and point not in self._results and self.is_valid(point):
                return point
            self._lookahead = next(self._stream, None)
            if self._lookahead is None:
                return None

    def _can_explore(self) -> bool:
        return self.explored < self.explore_budget and self._fresh() is not None

    def _restart_point(self) -> Index | None:
        """The best point measured anywhere, when a restart from it is warranted."""
        if self.restarts_left <= 0 or not (self._inner.done or self.restart_early):
            return None
        found = self._best_ordered()
        if found is None:
            return None
        run_best = self._run_best()
        if run_best is not None and not self.better(found[1], run_best):
            return None
        return found[0]

    def _best_ordered(self) -> tuple[Index, float] | None:
        """Like ``best``, but ties go to the first point in round order, not tell order."""
        best: tuple[Index, float] | None = None
        for point, value in self._ordered:
            if value is not None and (best is None or self.better(value, best[1])):
                best = (point, value)
        return best

    def _settle(self) -> None:
        """Restart as long as a restart is warranted (one restart makes the next unwarranted)."""
        while (start := self._restart_point()) is not None:
            self._restart(start)

    def _restart(self, start: Index) -> None:
        self._earlier_stages = self.stages
        self.restarts_left -= 1
        self.runs += 1
        self._inner = DSICE(self.shape, cap=self.cap, minimize=self.minimize, valid=self._valid,
                            start=start, **self._options)
        self._inner.inform(dict(self._ordered))


def make_dsice(shape: Sequence[int], *, cap: int, minimize: bool = True,
               valid: Validity | None = None, **options: Any) -> DSICE | ExploringDSICE:
    """The DSICE strategy for a config's ``[search.options]``: a plain ``DSICE`` unless an
    exploration option (``explore_budget``, ``restarts``, ``restart_early``,
    ``model_share``) is given.

    Raises ``ValueError`` naming an unknown option."""
    known = DSICE_OPTIONS + EXPLORE_OPTIONS
    for name in options:
        if name not in known:
            raise ValueError(f"unknown search option {name!r} (known: {', '.join(known)})")
    # ``seed`` alone does not switch exploration on: plain DSICE is deterministic and ignores it.
    if any(name in options for name in EXPLORE_OPTIONS if name != "seed"):
        return ExploringDSICE(shape, cap=cap, minimize=minimize, valid=valid, **options)
    options.pop("seed", None)
    return DSICE(shape, cap=cap, minimize=minimize, valid=valid, **options)
