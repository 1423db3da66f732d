"""``RestartingDSICE``: what the strategies that drive DSICE runs of their own share.

``ExploringDSICE`` and ``EagerDSICE`` each run one DSICE at a time (``_inner``) and start a new
one from a better point measured elsewhere. Both show the current run's level and base, cache
the constraint (their pickers test thousands of candidates against it), and compare a restart
point with the best value the current run reached itself.
"""
from __future__ import annotations

from collections.abc import Sequence

from .base import Index, Strategy, Validity
from .dsice import DSICE


class RestartingDSICE(Strategy):
    """Base of strategies around a restartable DSICE run; subclasses set ``_inner``."""

    _inner: DSICE

    def __init__(self, shape: Sequence[int], *, minimize: bool = True,
                 valid: Validity | None = None) -> None:
        super().__init__(shape, minimize=minimize, valid=valid)
        self._validity: dict[Index, bool] = {}

    # Read-only views of the current run; Strategy declares them as plain attributes so that
    # simpler strategies may assign them.
    @property
    def level(self) -> int:  # type: ignore[override]
        return self._inner.level

    @property
    def base(self) -> Index:  # type: ignore[override]
        return self._inner.base

    def is_valid(self, point: Index) -> bool:
        cached = self._validity.get(point)
        if cached is None:
            cached = self._validity[point] = super().is_valid(point)
        return cached

    def _run_best(self) -> float | None:
        """The best value the current run reached itself: its base or a point it measured."""
        values = [v for _, v in self._inner.history if v is not None]
        if (result := self._inner.result) is not None:
            values.append(result[1])
        return (min if self.minimize else max)(values) if values else None
