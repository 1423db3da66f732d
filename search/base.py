"""The strategy interface every search implements.

A strategy is pure: no I/O, no clock, no database. It works on *index tuples* into a discrete
grid (``shape[i]`` candidate values for parameter ``i``); the caller maps indices to values.

Protocol (ask/tell, synchronous rounds):

    while not s.done:
        batch = s.ask()            # new points to measure; [] means "waiting" or "done"
        s.tell({p: value_or_None for p in batch})

``ask(free)`` may be told how many slots are idle now (None: unknown); strategies that do not
need it ignore it. In refill mode the caller tells each group of results as soon as it has them
and then asks again, so ``tell`` may carry only part of what was asked for.

``ask()`` never returns a point that was measured, failed or is still outstanding. ``tell`` takes
a value (float) or ``None`` for a failed point. Strategies are deterministic: replaying the same
``tell`` calls on a fresh instance reproduces the same ``ask`` answers, which is how the master
rebuilds a strategy after a restart.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stage import StageRecord

Index = tuple[int, ...]
Result = float | None
Validity = Callable[[Index], bool]


class Strategy(ABC):
    """Base class: bookkeeping of measured/outstanding points shared by all strategies.

    Optional capabilities have defaults here, so callers never probe for them: ``stages``
    (finished stages, for strategies that work in stages), ``stage``, ``level`` and ``base``
    (where a staged search stands) and ``speculate(n)`` (points likely to be asked for next).
    """

    #: Finished stages, oldest first; strategies without stages have none.
    stages: Sequence[StageRecord] = ()
    #: The stage in progress (1-based), or None for strategies without stages.
    stage: int | None = None
    #: The current level and base point of a staged search (DSICE), None for others.
    level: int | None = None
    base: Index | None = None

    def __init__(self, shape: Sequence[int], *, minimize: bool = True,
                 valid: Validity | None = None) -> None:
        if not shape or any(int(n) < 1 for n in shape):
            raise ValueError(f"shape must be a non-empty sequence of sizes >= 1, got {shape!r}")
        self.shape: tuple[int, ...] = tuple(int(n) for n in shape)
        self.minimize = minimize
        self._valid = valid
        self.history: list[tuple[Index, Result]] = []
        self._results: dict[Index, Result] = {}
        self._outstanding: set[Index] = set()

    # -- the protocol -------------------------------------------------------------------------
    def ask(self, free: int | None = None) -> list[Index]:
        """Points to measure next (never measured, failed or outstanding); [] = waiting or done.
        ``free``: how many slots are idle now, a hint (None: unknown)."""
        if self.done:
            return []
        batch = [p for p in self._propose() if p not in self._results and p not in self._outstanding]
        self._outstanding.update(batch)
        return batch

    def tell(self, results: Mapping[Index, Result]) -> None:
        """Record values (or ``None`` for failures) of outstanding points, in the given order."""
        for point, value in results.items():
            point = tuple(int(i) for i in point)
            if point in self._results:
                raise ValueError(f"point {point} was already measured")
            if point not in self._outstanding:
                raise ValueError(f"point {point} was not asked for")
            self._outstanding.discard(point)
            value = None if value is None else float(value)
            self._results[point] = value
            self.history.append((point, value))
        self._observe(results)

    @property
    @abstractmethod
    def done(self) -> bool:
        """True when the strategy will propose nothing more."""

    @property
    def best(self) -> tuple[Index, float] | None:
        """The best successfully measured point and its value. Ties: the first told (in
        synchronous rounds, round order, and within a round the order of ``ask``). The master
        shows this point as the experiment's best everywhere (see docs/search.md)."""
        best: tuple[Index, float] | None = None
        for point, value in self.history:
            if value is None:
                continue
            if best is None or self.better(value, best[1]):
                best = (point, value)
        return best

    def speculate(self, n: int) -> list[Index]:
        """Up to ``n`` points likely to be asked for soon, to run in idle slots (default none).
        Never changes the strategy's state: asking for them later is what makes them count."""
        return []

    @property
    def outstanding(self) -> frozenset[Index]:
        return frozenset(self._outstanding)

    # -- for subclasses -----------------------------------------------------------------------
    @abstractmethod
    def _propose(self) -> list[Index]:
        """Candidate points for the next round (filtered against measured/outstanding by ask)."""

    def _observe(self, results: Mapping[Index, Result]) -> None:
        """Hook called after ``tell`` recorded ``results``."""

    def better(self, a: float, b: float) -> bool:
        return a < b if self.minimize else a > b

    def is_valid(self, point: Index) -> bool:
        return self._valid is None or bool(self._valid(point))
