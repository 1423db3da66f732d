"""Shared helpers for the search tests: the spec's example objectives and an ask/tell driver.

Imported by the tests as ``.search_helpers``."""
from __future__ import annotations

from collections.abc import Callable

from search import Index, Strategy

Objective = Callable[[Index], float | None]


def quad_c(p: Index) -> float:
    """Examples C and D (spec §5): 5x5 grid, optimum (3, 4) = 0.3."""
    x1, x2 = p
    return round(2 * (x1 - x2 + 1) ** 2 + 0.5 * (x1 + x2 - 7) ** 2 + 0.1 * x1, 6)


def quad_e(p: Index) -> float:
    """Example E (spec §7): 11x11 grid, optimum (6, 7) = 0.6."""
    x1, x2 = p
    return round(2 * (x1 - x2 + 1) ** 2 + 0.5 * (x1 + x2 - 13) ** 2 + 0.1 * x1, 6)


def drive(s: Strategy, f: Objective, max_rounds: int = 100_000) -> list[list[Index]]:
    """Run ``s`` to completion in synchronous rounds; returns the rounds asked."""
    rounds: list[list[Index]] = []
    while not s.done:
        batch = s.ask()
        assert batch, "a synchronous engine that is not done must ask for something"
        rounds.append(batch)
        s.tell({p: f(p) for p in batch})
        assert len(rounds) <= max_rounds
    return rounds
