"""``EagerDSICE``: DSICE that keeps every slot busy with work it asks for itself.

The paper's DSICE (``search.dsice``) waits: a synchronous round waits for its slowest point, and a
stage waits for all its points before the base moves, so on a cluster of 26 slots about half of
them idle (docs/search.md). ``EagerDSICE`` runs the same stages without a round barrier (DSICE's
``async`` mode) and gives the slots the stage cannot use, in this order, to:

1. **the combined estimate** of the stage's lines (docs/spec/dsice.md#combined-estimate): each
   line's d-Spline minimum is a displacement from the base; the displacements of lines that change
   disjoint axes are added up, most promising first, so one point (and its prefixes) tries all the
   lines' findings at once instead of one line at a time;
2. **the next stage's first points**: the neighbours of the point the base is heading for
   (``DSICE.speculate``), so the next stage has its results when it starts;
3. **exploration** of the whole grid (a density-ratio model over the exploration results, then
   a space-filling stream; ``search.explore``), at most ``explore_budget`` points in all.

Every result the engine did not ask for itself is ``inform``-ed to it (its lines use it). When a
point measured anywhere is strictly better than everything the current run reached, the run
restarts from there (docs/spec/dsice.md#restart), which is how the base moves on the combined
estimate. The escalation stops at ``max_level`` (default 2): higher levels rarely move the base
and cost most of the paper's evaluations.

Deterministic: the decisions depend only on the sequence of ``tell`` groups and ``ask(free)``
calls, so a master that journals them replays the identical history, in synchronous rounds and in
refill mode alike.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .base import Index, Result, Validity
from .dsice import DSICE
from .dspline import DEFAULT_ALPHA
from .explore import (
    MODEL_MIN_POINTS,
    candidates_around,
    density_ratio_pick,
    space_filling,
)
from .restarting import RestartingDSICE
from .stage import StageRecord

EAGER_OPTIONS = ("alpha", "neighbours_first", "start", "max_level", "explore_budget",
                 "restarts", "seed", "combine", "patience", "explore_share")
SURROGATE_PICKS = 2     # quadratic-model points per ask: more crowd out the line searches


class EagerDSICE(RestartingDSICE):
    """DSICE without idle slots; see the module docstring and docs/search.md ("Variants")."""

    def __init__(self, shape: Sequence[int], *, cap: int = 26, minimize: bool = True,
                 valid: Validity | None = None, alpha: float = DEFAULT_ALPHA,
                 neighbours_first: bool = True, start: Sequence[int] | None = None,
                 max_level: int | None = 2, explore_budget: int = 40, restarts: int = 25,
                 seed: int = 0, combine: bool = True, patience: int | None = 200,
                 explore_share: float = 0.0) -> None:
        super().__init__(shape, minimize=minimize, valid=valid)
        if cap < 1:
            raise ValueError(f"cap must be >= 1, got {cap}")
        if explore_budget < 0:
            raise ValueError(f"explore_budget must be >= 0, got {explore_budget}")
        if restarts < 0:
            raise ValueError(f"restarts must be >= 0, got {restarts}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}")
        if not 0 <= explore_share <= 1:
            raise ValueError(f"explore_share must be in [0, 1], got {explore_share}")
        # Share of every ask that goes to exploration first, while the budget lasts.
        self.explore_share = float(explore_share)
        self.cap = int(cap)
        # Stop once this many results in a row brought no better value (None: never).
        self.patience = patience
        self.stopped = False
        self._since_better = 0
        self._best_before: float | None = None
        self.explore_budget = int(explore_budget)
        self.restarts_left = int(restarts)
        self.seed = int(seed)
        self.combine = bool(combine)
        self._alpha = float(alpha)
        self._neighbours_first = neighbours_first
        self._max_level = max_level
        self._room = 0                    # slots the ask() in progress may fill
        self._inner = self._new_run(start)
        self.runs = 1
        self.explored = 0
        self._explore_set: set[Index] = set()
        self._stream = space_filling(self.shape, self.seed) if explore_budget else iter(())
        # Stage records partition the history: every told point (asked by the run or filled
        # in) belongs to the stage in progress when it was told; a stage cut short by a restart
        # is recorded as a move to the restart point.
        self._records: list[StageRecord] = []
        self._stage_points: list[Index] = []
        self._run_records = 0             # records of the current run already taken

    def _new_run(self, start: Sequence[int] | None) -> DSICE:
        return DSICE(self.shape, cap=self.cap, mode="async", minimize=self.minimize,
                     valid=self.is_valid, start=start, alpha=self._alpha,
                     neighbours_first=self._neighbours_first, max_level=self._max_level)

    # -- state the master shows (the current DSICE run's) ----------------------------------------
    @property
    def stage(self) -> int:
        """Current stage number (1-based), counted across runs; the last one once done."""
        if self._inner.done:
            return max(len(self._records), 1)
        return len(self._records) + 1

    @property
    def stages(self) -> list[StageRecord]:
        """Finished stages of every run, numbered on across restarts. The last stage of the
        search is listed once nothing of it is outstanding any more."""
        records = list(self._records)
        if not self.done:
            # The run's last stage waits for the points still out, which belong to it.
            return records[:-1] if self._inner.done and records else records
        if self._stage_points and self._inner.done and records:
            records[-1] = replace(records[-1],
                                  points=records[-1].points + tuple(self._stage_points))
        elif self._stage_points:           # stopped by the patience rule within a stage
            result = self._inner.result
            stage = self._inner.current_stage
            records.append(StageRecord(
                number=len(records) + 1,
                base=self._inner.base if stage is None else stage.base,
                level=self._inner.level, points=tuple(self._stage_points),
                best=None if result is None else result[0],
                best_value=None if result is None else result[1], moved=False))
        return records

    def speculate(self, n: int) -> list[Index]:
        return [p for p in self._inner.speculate(n + len(self._outstanding))
                if p not in self._outstanding][:max(n, 0)]

    @property
    def done(self) -> bool:
        if self._outstanding:
            return False
        return self.stopped or (self._inner.done and self._restart_point() is None)

    # -- the protocol -----------------------------------------------------------------------------
    def ask(self, free: int | None = None) -> list[Index]:
        """Up to ``free`` points (default: the slots of ``cap`` not outstanding)."""
        room = self.cap - len(self._outstanding)
        self._room = room if free is None else max(0, min(room, int(free)))
        return super().ask(free)

    def _propose(self) -> list[Index]:
        self._settle()
        room = self._room
        if room <= 0 or self._inner.done or self.stopped:
            return []
        out = self._take_exploration(math.floor(self.explore_share * room), set())
        taken = set(out)
        out += [p for p in self._inner.ask(room - len(out))
                if p not in self._outstanding and p not in taken]
        taken = set(out)

        def take(points: list[Index]) -> None:
            for p in points:
                if len(out) >= room:
                    return
                if p not in taken and not self._known(p):
                    out.append(p)
                    taken.add(p)

        # The order was measured (docs/search.md, "Variants"): exploration before the model
        # and the speculation, or the far basin of a deceptive landscape is found too late.
        if len(out) < room and self.combine:
            take(self._combined())
        if len(out) < room:
            take(self._take_exploration(room - len(out), taken))
        if len(out) < room:
            take(self._surrogate(min(SURROGATE_PICKS, room - len(out)), taken))
        if len(out) < room:
            take(self._inner.speculate(room + len(self._outstanding)))
        return out

    def _take_exploration(self, n: int, taken: set[Index]) -> list[Index]:
        """Up to ``n`` exploration points within what is left of the budget."""
        explore = self._explore(min(n, self.explore_budget - self.explored), taken)
        self.explored += len(explore)
        self._explore_set.update(explore)
        return explore

    def _observe(self, results: Mapping[Index, Result]) -> None:
        told = {tuple(int(i) for i in p): v for p, v in results.items()}
        self._count_progress(told)
        # Results of points the run asked for are told to it; the others are informed. Informed
        # first, so that the run's own results are registered with every fit up to date.
        informed = {p: v for p, v in told.items() if p not in self._inner.outstanding}
        own = {p: v for p, v in told.items() if p in self._inner.outstanding}
        if informed:
            self._inner.inform(informed)
        if own:
            self._inner.tell(own)
        self._stage_points += told
        self._take_records()
        self._settle()

    def _count_progress(self, told: Mapping[Index, Result]) -> None:
        """The patience rule: results in a row (in tell order) without a better value."""
        best = self._best_before
        for value in told.values():
            if value is not None and (best is None or self.better(value, best)):
                best = value
                self._since_better = 0
            else:
                self._since_better += 1
        self._best_before = best
        if self.patience is not None and self._since_better >= self.patience:
            self.stopped = True

    def _take_records(self) -> None:
        """Adopt the stages the current run finished, with the points told during them."""
        for record in self._inner.stages[self._run_records:]:
            self._records.append(replace(record, number=len(self._records) + 1,
                                         points=tuple(self._stage_points)))
            self._stage_points = []
        self._run_records = len(self._inner.stages)

    # -- where the idle slots go ------------------------------------------------------------------
    def _known(self, p: Index) -> bool:
        return p in self._results or p in self._outstanding or not self.is_valid(p)

    def _combined(self) -> list[Index]:
        """Points that add up the d-Spline findings of the current stage's lines.

        Each line with a fit whose minimum is off the base proposes the displacement base ->
        that minimum, ranked by the fitted gain. Displacements of lines on disjoint axes are
        summed greedily; the full sum comes first, then its shorter prefixes (two lines at least:
        a single displacement is on its line, which measures it anyway)."""
        stage = self._inner.current_stage
        if stage is None:
            return []
        base = stage.base
        moves: list[tuple[float, int, np.ndarray, frozenset[int]]] = []
        for order, line in enumerate(stage.lines):
            fit = line.current_fit()
            if fit is None or base not in line.index:
                continue
            values = fit.sample_values
            at_base = line.index[base]
            estimate = fit.estimate(self.minimize)
            gain = float(values[at_base] - values[estimate])
            if not self.minimize:
                gain = -gain
            if estimate == at_base or gain <= 0:
                continue
            step = np.subtract(line.points[estimate], base)
            axes = frozenset(int(i) for i in np.flatnonzero(step))
            moves.append((-gain, order, step, axes))
        moves.sort(key=lambda m: (m[0], m[1]))
        used: set[int] = set()
        chosen: list[np.ndarray] = []
        for _, _, step, axes in moves:
            if used.isdisjoint(axes):
                chosen.append(step)
                used |= axes
        if len(chosen) < 2:
            return []
        total = np.asarray(base)
        prefixes = []
        for step in chosen:
            total = total + step
            prefixes.append(tuple(int(i) for i in total))
        return list(reversed(prefixes[1:]))

    def _surrogate(self, n: int, taken: set[Index]) -> list[Index]:
        """Up to ``n`` points a quadratic model of every measured value predicts best."""
        measured = [(p, v) for p, v in self.history if v is not None]
        d = len(self.shape)
        n_coef = 1 + d + d * (d + 1) // 2
        if len(measured) < n_coef + d or n <= 0:
            return []
        sizes = np.asarray(self.shape, dtype=float)
        x = np.asarray([p for p, _ in measured], dtype=float) / np.maximum(sizes - 1, 1)
        y = np.asarray([v for _, v in measured])
        if not self.minimize:
            y = -y
        # Weighted towards the better half: the model has to be right near the optimum.
        rank = np.argsort(np.argsort(y))
        w = np.where(rank < max(n_coef + d, len(y) // 2), 1.0, 0.1)
        iu = np.triu_indices(d)

        def features(z: np.ndarray) -> np.ndarray:
            quad = (z[:, :, None] * z[:, None, :])[:, iu[0], iu[1]]
            return np.hstack([np.ones((len(z), 1)), z, quad])

        A = features(x) * w[:, None]
        coef = np.linalg.lstsq(A.T @ A + 1e-6 * np.eye(n_coef), A.T @ (y * w), rcond=None)[0]
        rng = np.random.default_rng([self.seed, len(self.history), 7])
        order = np.argsort(y, kind="stable")
        good = [(measured[i][0], float(y[i])) for i in order[:max(3, len(y) // 10)]]
        candidates = [p for p in candidates_around(good, self.shape, True, rng)
                      if p not in taken and not self._known(p)]
        if not candidates:
            return []
        z = np.asarray(candidates, dtype=float) / np.maximum(sizes - 1, 1)
        predicted = features(z) @ coef
        best = np.argsort(predicted, kind="stable")[:n]
        return [candidates[i] for i in best if predicted[i] < y.min()]

    def _explore(self, n: int, taken: set[Index]) -> list[Index]:
        """``n`` exploration points: a density-ratio model over the exploration results (once
        it has enough), else the space-filling stream."""
        if n <= 0:
            return []
        explored = [(p, v) for p in self._explore_set
                    if (v := self._results.get(p)) is not None]
        explored.sort()
        out: list[Index] = []
        if len(explored) >= MODEL_MIN_POINTS:
            rng = np.random.default_rng([self.seed, len(self.history), self.explored])
            around = candidates_around(explored, self.shape, self.minimize, rng)
            candidates = [p for p in around if p not in taken and not self._known(p)]
            out = density_ratio_pick(candidates, explored, self.shape, self.minimize,
                                     math.ceil(n / 2))
        while len(out) < n:
            point = next(self._stream, None)
            if point is None:
                break
            if point not in taken and point not in out and not self._known(point):
                out.append(point)
        return out

    # -- restarts -------------------------------------------------------------------------------
    def _restart_point(self) -> Index | None:
        if self.restarts_left <= 0 or (found := self.best) is None:
            return None
        run_best = self._run_best()
        if run_best is not None and not self.better(found[1], run_best):
            return None
        return found[0]

    def _settle(self) -> None:
        while (start := self._restart_point()) is not None:
            stage = self._inner.current_stage
            self._records.append(StageRecord(
                number=len(self._records) + 1,
                base=self._inner.base if stage is None else stage.base,
                level=self._inner.level, points=tuple(self._stage_points), best=start,
                best_value=self._results[start], moved=True))
            self._stage_points = []
            self.restarts_left -= 1
            self.runs += 1
            self._inner = self._new_run(start)
            self._inner.inform(dict(self.history))
            self._run_records = len(self._inner.stages)


def make_eager(shape: Sequence[int], *, cap: int, minimize: bool = True,
               valid: Validity | None = None, **options: Any) -> EagerDSICE:
    """``EagerDSICE`` from a config's ``[search.options]``; a ``ValueError`` names an unknown
    option and lists the known ones."""
    for name in options:
        if name not in EAGER_OPTIONS:
            raise ValueError(f"unknown option {name!r} for variant 'eager' "
                             f"(known: {', '.join(EAGER_OPTIONS)})")
    return EagerDSICE(shape, cap=cap, minimize=minimize, valid=valid, **options)
