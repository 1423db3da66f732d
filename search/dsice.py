"""The DSICE search engine (rules: docs/spec/dsice.md, §4-§5).

Iterative dimension search: from a base point, examine the directions that change up to ``k``
parameters; search lines with IPPE (d-Spline guided); move the base on strict improvement, else
raise ``k``; stop when ``k == d`` brings no move.

Modes:

* ``"sync"`` (default) – parallel level-escalating radial stages in synchronous rounds of at most
  ``cap`` points; ``ask()`` returns ``[]`` until every point of the round is told.
* ``"async"`` – the same stages, but ``ask()`` refills every free slot and ``tell`` may be partial.
* ``"sequential"`` – DSICE's S_2018 loop, one point at a time (S_IPPE for a single parameter).

Failures (``tell({p: None})``) and points rejected by ``valid`` are *known without a value*: never
proposed, never fed to a spline, counted as measured for line completion, never a result.

``inform`` hands the engine values of points it never asked for (measured by an exploration or an
earlier run): they count as measured, feed every line fit and may be results like its own points.
"""
from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .base import Index, Result, Strategy, Validity
from .dspline import DEFAULT_ALPHA
from .ippe import Board
from .neighbours import Direction, direction, neighbours
from .stage import IppeStage, RadialStage, SequentialStage, Stage, StageRecord

Mode = Literal["sync", "async", "sequential"]
MODES = ("sync", "async", "sequential")


class DSICE(Strategy):
    """DSICE over a grid of ``shape`` (index tuples); see the module docstring and docs/search.md."""

    def __init__(self, shape: Sequence[int], *, cap: int = 26, mode: Mode = "sync",
                 minimize: bool = True, valid: Validity | None = None,
                 alpha: float = DEFAULT_ALPHA, neighbours_first: bool = True,
                 start: Sequence[int] | None = None, max_level: int | None = None) -> None:
        super().__init__(shape, minimize=minimize, valid=valid)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if cap < 1:
            raise ValueError(f"cap must be >= 1, got {cap}")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.mode: Mode = mode
        self.cap = 1 if mode == "sequential" else int(cap)
        self.alpha = float(alpha)
        if max_level is not None and max_level < 1:
            raise ValueError(f"max_level must be >= 1, got {max_level}")
        # The highest level k: the search stops when a stage at this level moves nothing.
        self.max_level = len(self.shape) if max_level is None else min(int(max_level),
                                                                        len(self.shape))
        self.neighbours_first = neighbours_first
        self.names: tuple[str, ...] | None = None
        self.values: tuple[tuple[Any, ...], ...] | None = None
        self._board = Board(self._results, self.is_valid, minimize)
        self._searched: defaultdict[Index, set[Direction]] = defaultdict(set)
        self._round: list[Index] = []
        self.informed: list[tuple[Index, Result]] = []
        self._informed_pending: list[Index] = []   # informed mid-round: registered at its end
        self._finished = False
        self._free_hint: int | None = None       # ``free`` of the ask() in progress
        self._stages: list[StageRecord] = []
        self.level: int = 1
        self.base: Index = self._start(start)
        self._stage: Stage | None = self._next_stage(1)

    @classmethod
    def from_values(cls, values: Mapping[str, Sequence[Any]], **kwargs: Any) -> DSICE:
        """Build from named candidate lists; ``point_values`` maps an index back to values."""
        if not values:
            raise ValueError("values must name at least one parameter")
        engine = cls(tuple(len(v) for v in values.values()), **kwargs)
        engine.names = tuple(values)
        engine.values = tuple(tuple(v) for v in values.values())
        return engine

    def point_values(self, point: Index) -> dict[str, Any]:
        """The parameter values of an index tuple (only for engines built by ``from_values``)."""
        if self.names is None or self.values is None:
            raise ValueError("point_values needs an engine built with DSICE.from_values")
        return {name: vals[i] for name, vals, i in zip(self.names, self.values, point)}

    # -- state the master shows -----------------------------------------------------------------
    @property
    def stage(self) -> int:
        """Current stage number (1-based); the last one once the search is done."""
        return self._stage.number if self._stage is not None else len(self._stages)

    @property
    def current_stage(self) -> Stage | None:
        """The stage in progress (None once done), for strategies built on the engine."""
        return self._stage

    @property
    def stages(self) -> list[StageRecord]:
        """The finished stages, in order."""
        return self._stages

    @property
    def done(self) -> bool:
        return self._finished and not self._outstanding

    @property
    def best(self) -> tuple[Index, float] | None:
        """The best point measured by the engine or informed to it (first one on ties)."""
        best: tuple[Index, float] | None = None
        for point, value in self.history + self.informed:
            if value is not None and (best is None or self.better(value, best[1])):
                best = (point, value)
        return best

    @property
    def result(self) -> tuple[Index, float] | None:
        """The current base and its value (the search's answer once done); None if unmeasured."""
        value = self._board.value(self.base)
        return None if value is None else (self.base, value)

    def inform(self, results: Mapping[Index, Result]) -> None:
        """Values (or None for failures) of points measured elsewhere, never asked for here.

        They are known from now on (never proposed), feed the line fits and may become stage
        results. In ``sync`` mode, points informed while a round is out are registered with the
        stages after that round's own points; otherwise at once, as a round boundary. Replaying
        the same ask/tell/inform sequence reproduces the same decisions.
        """
        points: list[Index] = []
        for point, value in results.items():
            point = tuple(int(i) for i in point)
            if len(point) != len(self.shape) or not all(
                    0 <= i < n for i, n in zip(point, self.shape)):
                raise ValueError(f"informed point {point} is not a point of the grid {self.shape}")
            if point in self._results:
                raise ValueError(f"informed point {point} was already measured")
            if point in self._outstanding:
                raise ValueError(f"informed point {point} is outstanding: tell it instead")
            if not self.is_valid(point):
                raise ValueError(f"informed point {point} is not a valid point")
            value = None if value is None else float(value)
            self._results[point] = value
            self.informed.append((point, value))
            points.append(point)
        if self._stage is None:
            return
        if self.mode != "async" and self._outstanding:
            self._informed_pending += points
            return
        for point in points:
            self._stage.register(point, own=False)
        self._stage.end_round()
        self._advance()

    # -- the protocol ---------------------------------------------------------------------------
    def ask(self, free: int | None = None) -> list[Index]:
        """As ``Strategy.ask``; in ``async`` mode at most ``free`` points when it is given."""
        self._free_hint = free
        return super().ask(free)

    def _propose(self) -> list[Index]:
        if self._stage is None:
            return []
        if self.mode == "async":
            free = self.cap - len(self._outstanding)
            if self._free_hint is not None:
                free = min(free, self._free_hint)
            return self._stage.candidates(self._outstanding)[:max(free, 0)]
        if self._outstanding:          # synchronous rounds: wait for the whole round
            return []
        self._round = self._stage.candidates(())[: self.cap]
        return list(self._round)

    def _observe(self, results: Mapping[Index, Result]) -> None:
        if self._stage is None:
            return
        if self.mode == "async":
            told = [tuple(int(i) for i in p) for p in results]
        elif self._outstanding:
            return                     # the round is not complete yet
        else:
            # Registered in round (list) order, whatever order the caller told them in, so
            # the decisions do not depend on completion order.
            told, self._round = self._round, []
        informed, self._informed_pending = self._informed_pending, []
        for point in told:
            self._stage.register(point)
        for point in informed:
            self._stage.register(point, own=False)
        self._stage.end_round()
        self._advance()

    # -- speculation ------------------------------------------------------------------------
    def speculate(self, n: int) -> list[Index]:
        """Up to ``n`` valid points not yet measured or outstanding that the search will most
        likely ask for next, most likely first. Pure: changes no state."""
        if self._stage is None or n <= 0:
            return []
        ranked = self._stage.candidates(self._outstanding) + self._stage.hints()
        out: list[Index] = []
        for p in dict.fromkeys(ranked):
            if not self._board.known(p) and p not in self._outstanding:
                out.append(p)
                if len(out) == n:
                    break
        return out

    # -- the outer loop -----------------------------------------------------------------------
    def _advance(self) -> None:
        """Finish every stage that is complete and start the next (or stop)."""
        while self._stage is not None and not self._outstanding and (
                self._stage.complete() or not self._stage.candidates(())):
            self._stage = self._finish(self._stage)

    def _finish(self, stage: Stage) -> Stage | None:
        found = stage.outcome()
        base_value = self._board.value(self.base)
        moved = (found is not None and found[0] != self.base
                 and (base_value is None or self._board.better(found[1], base_value)))
        self._stages.append(StageRecord(
            number=stage.number, base=stage.base, level=stage.level, points=tuple(stage.points),
            best=None if found is None else found[0],
            best_value=None if found is None else found[1], moved=moved))
        if stage.final:
            if found is not None:
                self.base = found[0]
            self._finished = True
            return None
        if moved:
            assert found is not None
            self._searched[found[0]].add(direction(self.base, found[0]))
            self.base = found[0]
        else:
            self._searched[self.base].update(stage.directions)
            if self.level >= self.max_level:
                self._finished = True
                return None
            self.level += 1
        return self._next_stage(stage.number + 1)

    def _next_stage(self, number: int) -> Stage | None:
        """The next stage with something to examine; escalates past empty levels."""
        while True:
            stage = self._make_stage(number)
            # A stage without directions is kept only to measure a still unknown base.
            if stage.directions or not self._board.known(self.base):
                return stage
            if self.level >= self.max_level:
                self._finished = True
                return None
            self.level += 1

    def _make_stage(self, number: int) -> Stage:
        searched = self._searched.get(self.base, set())
        if self.mode == "sequential":
            if len(self.shape) == 1:
                return IppeStage(number, self.base, self._board, self.shape, alpha=self.alpha)
            return SequentialStage(number, self.base, self.level, self._board, self.shape,
                                   searched, alpha=self.alpha)
        return RadialStage(number, self.base, self.level, self._board, self.shape, searched,
                           neighbours_first=self.neighbours_first, alpha=self.alpha)

    def _start(self, start: Sequence[int] | None) -> Index:
        """The start base: ``start``, else the grid centre, else the nearest valid point to it."""
        if start is not None:
            point = tuple(int(i) for i in start)
            if len(point) != len(self.shape) or not all(
                    0 <= i < n for i, n in zip(point, self.shape)):
                raise ValueError(f"start {point} is not a point of the grid {self.shape}")
            if not self.is_valid(point):
                raise ValueError(f"start {point} is not a valid point")
            return point
        centre = tuple(n // 2 for n in self.shape)
        # Breadth-first over axis neighbours: the closest valid point in steps, deterministic.
        seen, queue = {centre}, deque([centre])
        while queue:
            point = queue.popleft()
            if self._board.is_valid(point):
                return point
            for c in neighbours(point, self.shape, 1):
                if c not in seen:
                    seen.add(c)
                    queue.append(c)
        raise ValueError("no point of the grid satisfies the constraint")
