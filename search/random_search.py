"""Seeded random search without repeats, in rounds of at most ``cap`` points."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .base import Index, Strategy, Validity


class RandomSearch(Strategy):
    def __init__(self, shape: Sequence[int], *, cap: int = 1, seed: int = 0,
                 max_evaluations: int | None = None, minimize: bool = True,
                 valid: Validity | None = None) -> None:
        super().__init__(shape, minimize=minimize, valid=valid)
        if cap < 1:
            raise ValueError("cap must be >= 1")
        self.cap = cap
        size = math.prod(self.shape)
        self.budget = size if max_evaluations is None else min(int(max_evaluations), size)
        # A seeded permutation of flat indices: deterministic and without repeats. For spaces too
        # large to permute we draw with rejection instead.
        self._rng = np.random.default_rng(seed)
        self._perm = self._rng.permutation(size) if size <= 5_000_000 else None
        self._cursor = 0
        self._seen: set[Index] = set()
        self._proposed = 0
        self._size = size
        self._ahead: Index | None = None    # drawn but not proposed yet (``done`` looks ahead)

    def _draw(self) -> Index | None:
        while True:
            if self._perm is not None:
                if self._cursor >= self._size:
                    return None
                flat = int(self._perm[self._cursor])
                self._cursor += 1
            else:
                if len(self._seen) >= self._size:
                    return None
                flat = int(self._rng.integers(self._size))
            point = tuple(int(i) for i in np.unravel_index(flat, self.shape))
            if point in self._seen:
                continue
            self._seen.add(point)
            if self.is_valid(point):
                return point

    def _next(self) -> Index | None:
        """The next valid point, drawn ahead once; None (and the budget shrunk) when none is left."""
        if self._ahead is None and self._proposed < self.budget:
            self._ahead = self._draw()
            if self._ahead is None:
                self.budget = self._proposed
        return self._ahead

    def _propose(self) -> list[Index]:
        if self._outstanding:
            return []
        batch: list[Index] = []
        while len(batch) < self.cap and (point := self._next()) is not None:
            batch.append(point)
            self._ahead = None
            self._proposed += 1
        return batch

    @property
    def done(self) -> bool:
        # Looking ahead: a constraint may leave fewer valid points than the budget.
        return not self._outstanding and self._next() is None
