"""One stage of the DSICE search: the points examined from one base at one level.

Three kinds, sharing one small interface used by the engine (``search.dsice``):

* ``RadialStage`` – the parallel stage (docs/spec/dsice.md#stage): the base, its level-k
  neighbours, and one IPPE line agent per unexamined direction, all running at once
  (round-robin list).
* ``SequentialStage`` – one S_2018 step (docs/spec/dsice.md#sequential): direction search over
  the neighbours, then IPPE on the single most promising line.
* ``IppeStage`` – S_IPPE for a single parameter (docs/spec/dsice.md#s-ippe): IPPE on the whole
  axis, no base point.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import zip_longest

from .base import Index
from .ippe import Board, LineAgent
from .neighbours import Direction, changed_axes, direction, line_points, neighbours


@dataclass(frozen=True)
class StageRecord:
    """A finished stage, as the master stores and shows it."""

    number: int
    base: Index
    level: int
    points: tuple[Index, ...]      # every point told during the stage (failed ones included)
    best: Index | None             # the stage result p*; None if nothing on it was measured
    best_value: float | None
    moved: bool                    # the base moved to ``best``


def _unique(points: Iterable[Index]) -> list[Index]:
    return list(dict.fromkeys(points))


class Stage(ABC):
    """Interface between the engine and a stage (pure bookkeeping, no I/O)."""

    #: True when the search ends after this stage whatever its outcome (S_IPPE).
    final = False

    def __init__(self, number: int, base: Index, level: int, board: Board) -> None:
        self.number = number
        self.base = base
        self.level = level
        self.board = board
        self.points: list[Index] = []
        self.directions: list[Direction] = []

    @abstractmethod
    def candidates(self, pending: Collection[Index]) -> list[Index]:
        """Unknown, non-pending points this stage wants, most wanted first."""

    @abstractmethod
    def hints(self) -> list[Index]:
        """Points likely needed soon after ``candidates`` (for speculative measurement)."""

    @abstractmethod
    def _lines_for(self, point: Index) -> list[LineAgent]:
        """The line agents a result at ``point`` is routed to."""

    @abstractmethod
    def _settled(self) -> bool:
        """Every agent is done and nothing more of the stage is needed."""

    @abstractmethod
    def outcome(self) -> tuple[Index, float] | None:
        """The stage result ``p*`` and its value (None if nothing usable was measured)."""

    def register(self, point: Index, *, own: bool = True) -> None:
        """Route one result (already in the board) to the line agents.

        ``own=False`` is a point measured elsewhere (``DSICE.inform``): it feeds the lines but is
        not listed in ``points``, so the stage records still partition the engine's history.
        """
        if own:
            self.points.append(point)
        for line in self._lines_for(point):
            line.register(point)

    def end_round(self) -> None:
        """A round (sync) or a tell (async) ended: let agents switch phase and re-check."""
        for line in self._agents():
            line.end_round()

    def complete(self) -> bool:
        return self.board.known(self.base) and self._settled()

    @property
    def lines(self) -> list[LineAgent]:
        """The stage's line agents, in creation order (read-only use)."""
        return self._agents()

    def _agents(self) -> list[LineAgent]:
        return []

    def _heading(self) -> Index | None:
        """The point the base would move to if the stage ended now, if any."""
        found = self.outcome()
        if found is None or found[0] == self.base:
            return None
        base_value = self.board.value(self.base)
        if base_value is None or self.board.better(found[1], base_value):
            return found[0]
        return None

    def _unknown(self, points: Iterable[Index], pending: Collection[Index]) -> list[Index]:
        return [p for p in points if not self.board.known(p) and p not in pending]


class RadialStage(Stage):
    """docs/spec/dsice.md#stage: all unexamined level-<=k directions of the base searched at once."""

    def __init__(self, number: int, base: Index, level: int, board: Board,
                 shape: Sequence[int], searched: Collection[Direction], *,
                 neighbours_first: bool, alpha: float) -> None:
        super().__init__(number, base, level, board)
        self._shape = tuple(shape)
        self._neighbours_first = neighbours_first
        around = neighbours(base, shape, level)
        self.directions = _unique(v for c in around if (v := direction(base, c)) not in searched)
        chosen = set(self.directions)
        self._neighbours = [c for c in around if direction(base, c) in chosen]
        self._lines = {v: LineAgent(line_points(base, v, shape), v, board, recursive=True,
                                    alpha=alpha) for v in self.directions}
        # Level buckets: all 1-axis lines' lists interleaved first, then 2-axis lines, ...
        self._buckets: list[list[LineAgent]] = []
        for j in range(1, len(shape) + 1):
            bucket = [line for v, line in self._lines.items() if changed_axes(v) == j]
            if bucket:
                self._buckets.append(bucket)

    def candidates(self, pending: Collection[Index]) -> list[Index]:
        out = self._unknown([self.base], pending)
        if self._neighbours_first:
            out += self._unknown(self._neighbours, pending)
        for bucket in self._buckets:
            lists = [line.wanted(pending) for line in bucket]
            out += [p for rank in zip_longest(*lists) for p in rank if p is not None]
        return _unique(out)

    def hints(self) -> list[Index]:
        # If the stage is heading for a move, the next stage starts with the new base's
        # neighbours; otherwise (escalation) with this base's next-level neighbours.
        target = self._heading()
        if target is not None:
            return neighbours(target, self._shape, self.level)
        return neighbours(self.base, self._shape, self.level + 1)

    def _lines_for(self, point: Index) -> list[LineAgent]:
        if point == self.base:         # the base's value is given to every line
            return list(self._lines.values())
        line = self._lines.get(direction(self.base, point))
        return [line] if line is not None and point in line.index else []

    def _agents(self) -> list[LineAgent]:
        return list(self._lines.values())

    def _settled(self) -> bool:
        if not all(line.done for line in self._lines.values()):
            return False
        return not self._neighbours_first or all(self.board.known(c) for c in self._neighbours)

    def outcome(self) -> tuple[Index, float] | None:
        on_lines = {p for line in self._lines.values() for p in line.points} | {self.base}
        best: tuple[Index, float] | None = None
        for p in sorted(on_lines):     # ties go to the lexicographically smallest point
            v = self.board.value(p)
            if v is not None and (best is None or self.board.better(v, best[1])):
                best = (p, v)
        return best


class SequentialStage(Stage):
    """One S_2018 step: direction search over the neighbours, then IPPE on the best line."""

    def __init__(self, number: int, base: Index, level: int, board: Board,
                 shape: Sequence[int], searched: Collection[Direction], *, alpha: float) -> None:
        super().__init__(number, base, level, board)
        self._shape = tuple(shape)
        self._alpha = alpha
        around = neighbours(base, shape, level)
        self._examined = [c for c in around if direction(base, c) not in searched]
        self.directions = _unique(direction(base, c) for c in self._examined)
        self._line: LineAgent | None = None
        self._chosen = False
        self._choose_line()

    def _best_neighbour(self) -> Index | None:
        """First argmin over the measured examined neighbours (the base is not compared)."""
        best: tuple[Index, float] | None = None
        for c in self._examined:
            v = self.board.value(c)
            if v is not None and (best is None or self.board.better(v, best[1])):
                best = (c, v)
        return None if best is None else best[0]

    def _choose_line(self) -> None:
        if self._chosen or not all(self.board.known(c) for c in self._examined):
            return
        if not self.board.known(self.base):
            return
        self._chosen = True
        n_star = self._best_neighbour()
        if n_star is not None:         # every neighbour failed or is invalid: no line
            v = direction(self.base, n_star)
            self._line = LineAgent(line_points(self.base, v, self._shape), v, self.board,
                                   recursive=False, alpha=self._alpha)

    def candidates(self, pending: Collection[Index]) -> list[Index]:
        out = self._unknown([self.base], pending) + self._unknown(self._examined, pending)
        if self._line is not None:
            out += self._line.wanted(pending)
        return _unique(out)

    def hints(self) -> list[Index]:
        out: list[Index] = []
        if not self._chosen and (n := self._best_neighbour()) is not None:
            v = direction(self.base, n)
            out += line_points(self.base, v, self._shape)
        target = self._heading()
        out += neighbours(target if target is not None else self.base, self._shape,
                          self.level if target is not None else self.level + 1)
        return out

    def _lines_for(self, point: Index) -> list[LineAgent]:
        line = self._line
        return [line] if line is not None and point in line.index else []

    def end_round(self) -> None:
        if not self._chosen:
            self._choose_line()
        elif self._line is not None:
            self._line.end_round()

    def _settled(self) -> bool:
        return self._chosen and (self._line is None or self._line.done)

    def outcome(self) -> tuple[Index, float] | None:
        if self._line is not None and (found := self._line.best()) is not None:
            return found
        v = self.board.value(self.base)
        return None if v is None else (self.base, v)


class IppeStage(Stage):
    """S_IPPE: a single parameter, IPPE over the whole axis, then the search ends."""

    final = True

    def __init__(self, number: int, base: Index, board: Board, shape: Sequence[int], *,
                 alpha: float) -> None:
        super().__init__(number, base, 1, board)
        self.directions = [(1,)]
        self._line = LineAgent(line_points(base, (1,), shape), (1,), board, recursive=False,
                               alpha=alpha)

    def candidates(self, pending: Collection[Index]) -> list[Index]:
        return self._line.wanted(pending)

    def hints(self) -> list[Index]:
        return list(self._line.points)

    def _lines_for(self, point: Index) -> list[LineAgent]:
        return [self._line]

    def _agents(self) -> list[LineAgent]:
        return [self._line]

    def complete(self) -> bool:       # no base point here
        return self._settled()

    def _settled(self) -> bool:
        return self._line.done

    def outcome(self) -> tuple[Index, float] | None:
        return self._line.best()
