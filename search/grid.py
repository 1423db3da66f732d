"""Exhaustive grid search in row-major order, in rounds of at most ``cap`` points."""
from __future__ import annotations

import itertools
from collections.abc import Sequence

from .base import Index, Strategy, Validity


class GridSearch(Strategy):
    def __init__(self, shape: Sequence[int], *, cap: int = 1, minimize: bool = True,
                 valid: Validity | None = None) -> None:
        super().__init__(shape, minimize=minimize, valid=valid)
        if cap < 1:
            raise ValueError("cap must be >= 1")
        self.cap = cap
        self._order = (p for p in itertools.product(*(range(n) for n in self.shape))
                       if self.is_valid(p))
        self._next: list[Index] = []
        self._exhausted = False

    def _fill(self) -> None:
        while len(self._next) < self.cap and not self._exhausted:
            try:
                self._next.append(next(self._order))
            except StopIteration:
                self._exhausted = True

    def _propose(self) -> list[Index]:
        if self._outstanding:      # synchronous rounds: wait for the round to finish
            return []
        self._fill()
        batch, self._next = self._next[: self.cap], self._next[self.cap:]
        return batch

    @property
    def done(self) -> bool:
        self._fill()
        return not self._next and not self._outstanding and self._exhausted
