"""IPPE line search on one grid line (docs/spec/dsice.md#ippe): phase T (initial points), phase D (d-Spline).

A ``LineAgent`` never measures anything itself: it reads results from a ``Board`` (the engine's
database view) and says which of its points it wants next. The engine routes results to it.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from . import dspline
from .base import Index, Result
from .neighbours import Direction

MAX_LINE_POINTS = 30      # stop rule: this many known points on the line
CONFIRMATIONS = 3         # stop rule: the same estimate in this many consecutive fits


def _mids(l: int, r: int) -> tuple[int, int]:
    """The two tri-section points of the segment [l, r] (r - l >= 2)."""
    if r - l == 2:
        return l + 1, l + 2
    m1 = l + (r - l) // 3
    return m1, m1 + (r - m1) // 2


def tri4(L: int) -> list[int]:
    """Phase-T initial line indices: ``[0, L-1, mid1, mid2]`` without duplicates."""
    if L < 1:
        raise ValueError(f"a line needs at least 1 point, got L={L}")
    order = [0, L - 1]
    if L - 1 >= 2:
        order += _mids(0, L - 1)
    return list(dict.fromkeys(order))


def trisection_order(L: int) -> list[int]:
    """Every line index in recursive tri-section order (BFS over sub-segments, docs/spec/dsice.md#trisection).

    Uses the corrected rule: a length-2 sub-segment [l, l+2] emits l+1 (DSICE emits the
    global left+1 there and misses points).
    """
    order = tri4(L)
    queue: deque[tuple[int, int]] = deque()
    if L - 1 >= 2:
        m1, m2 = _mids(0, L - 1)
        queue.extend([(0, m1), (m1, m2), (m2, L - 1)])
    while queue:
        l, r = queue.popleft()
        if r - l < 2:
            continue
        m1, m2 = _mids(l, r)
        order += [m1, m2]
        queue.extend([(l, m1), (m1, m2), (m2, r)])
    return list(dict.fromkeys(order))


@dataclass
class Board:
    """The engine's database as the line agents see it.

    ``results`` maps measured points to a value, or None for a failed point. A point that
    fails ``valid`` is treated like a failed point: known, but never a value.
    """

    results: Mapping[Index, Result]
    valid: Callable[[Index], bool]
    minimize: bool = True
    _validity: dict[Index, bool] = field(default_factory=dict, init=False, repr=False)

    def is_valid(self, p: Index) -> bool:
        cached = self._validity.get(p)
        if cached is None:
            cached = self._validity[p] = bool(self.valid(p))
        return cached

    def known(self, p: Index) -> bool:
        """Measured, failed or invalid: nothing more to learn about ``p``."""
        return p in self.results or not self.is_valid(p)

    def value(self, p: Index) -> float | None:
        """The measured value, or None when unmeasured, failed or invalid."""
        return self.results.get(p)

    def better(self, a: float, b: float) -> bool:
        return a < b if self.minimize else a > b


class LineAgent:
    """IPPE on the line ``points`` (ordered by t); phase T then phase D (docs/spec/dsice.md#ippe)."""

    def __init__(self, points: Sequence[Index], direction: Direction, board: Board, *,
                 recursive: bool, alpha: float = dspline.DEFAULT_ALPHA,
                 max_points: int = MAX_LINE_POINTS) -> None:
        self.points = list(points)
        self.direction = direction
        self.index = {p: i for i, p in enumerate(self.points)}
        self._board = board
        self._alpha = alpha
        self._max_points = max_points
        L = len(self.points)
        self._tri = [self.points[i] for i in tri4(L)]
        # Parallel stages use the full recursive tri-section list so that spare slots get the
        # next most useful points; the sequential search only ever needs tri4.
        self._order_t = [self.points[i] for i in (trisection_order(L) if recursive else tri4(L))]
        self.phase = "T"
        self.estimate: int | None = None
        self.count = 0
        self.done = False
        self._priority: list[Index] = []
        self.end_round()

    # -- what the line wants -----------------------------------------------------------------
    def wanted(self, pending: Collection[Index] = frozenset()) -> list[Index]:
        """Unknown, non-pending points in this line's current priority order."""
        if self.done:
            return []
        order = self._order_t if self.phase == "T" else self._priority
        return [p for p in order if not self._board.known(p) and p not in pending]

    # -- results ---------------------------------------------------------------------------
    def register(self, point: Index) -> None:
        """A result on this line arrived: in phase D, refit and update the confirmation count."""
        if self.done or self.phase != "D" or point not in self.index:
            return
        previous = self.estimate
        self._refit()
        self.count = self.count + 1 if self.estimate == previous else 1
        self._check_stop()

    def end_round(self) -> None:
        """Round boundary: switch T -> D once every tri4 point is known; re-check stop rules."""
        if self.done:
            return
        if self.phase == "T":
            if all(self._board.known(p) for p in self._tri):
                self.phase = "D"
                self._refit()
                self.count = 1
                self._check_stop()
        else:
            self._check_stop()

    def best(self) -> tuple[Index, float] | None:
        """Best measured point of the line; ties go to the lower line index."""
        best: tuple[Index, float] | None = None
        for p in self.points:
            v = self._board.value(p)
            if v is not None and (best is None or self._board.better(v, best[1])):
                best = (p, v)
        return best

    def current_fit(self) -> dspline.LineFit | None:
        """The d-Spline through every measured point of the line now (None without data)."""
        obs = [(i, v) for i, p in enumerate(self.points)
               if (v := self._board.value(p)) is not None]
        return dspline.fit(len(self.points), obs, self._alpha)

    # -- internals -------------------------------------------------------------------------
    def _refit(self) -> None:
        line_fit = self.current_fit()
        if line_fit is None:          # every known point failed: no estimate, plain order
            self.estimate = None
            self._priority = list(self.points)
            return
        self.estimate = line_fit.estimate(self._board.minimize)
        self._priority = [self.points[s] for s in line_fit.priority(self._board.minimize)]

    def _check_stop(self) -> None:
        known = sum(1 for p in self.points if self._board.known(p))
        if (self.count >= CONFIRMATIONS or known >= self._max_points
                or known == len(self.points)):
            self.done = True
