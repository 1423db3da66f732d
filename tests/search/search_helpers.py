"""Shared helpers for the search tests: the example objectives of docs/spec/dsice.md#examples and an ask/tell driver.

Imported by the tests as ``.search_helpers``."""
from __future__ import annotations

from collections.abc import Callable

from search import Index, Strategy

Objective = Callable[[Index], float | None]


def quad_c(p: Index) -> float:
    """Examples C and D (docs/spec/dsice.md#example-c): 5x5 grid, optimum (3, 4) = 0.3."""
    x1, x2 = p
    return round(2 * (x1 - x2 + 1) ** 2 + 0.5 * (x1 + x2 - 7) ** 2 + 0.1 * x1, 6)


def quad_e(p: Index) -> float:
    """Example E (docs/spec/dsice.md#example-e): 11x11 grid, optimum (6, 7) = 0.6."""
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


Journal = list[tuple[str, object]]


def drive_refill(s: Strategy, f: Objective, cap: int, seed: int = 0,
                 max_calls: int = 100_000) -> Journal:
    """Run ``s`` in refill mode on a seeded virtual cluster of ``cap`` slots: jobs take a
    seeded 1-3 time units; all results finishing at the same moment are told as one group,
    then ``ask(free)`` is called with the idle slots. Returns the journal of calls in order:
    ``("ask", (free, batch))`` and ``("tell", results)``, what a master records for replay."""
    import heapq
    import random
    rng = random.Random(seed)
    running: list[tuple[int, int, Index]] = []
    journal: Journal = []
    now = serial = 0

    def ask(free: int) -> None:
        nonlocal serial
        batch = s.ask(free)
        journal.append(("ask", (free, batch)))
        assert len(batch) <= free, f"asked for {len(batch)} points with {free} slots free"
        for p in batch:
            heapq.heappush(running, (now + rng.randint(1, 3), serial, p))
            serial += 1

    ask(cap)
    while running and len(journal) < max_calls:
        now = running[0][0]
        group: dict[Index, float | None] = {}
        while running and running[0][0] == now:
            group[heapq.heappop(running)[2]] = None
        group = {p: f(p) for p in group}
        s.tell(group)
        journal.append(("tell", group))
        if not s.done:
            ask(cap - len(running))
    assert len(journal) < max_calls, "the strategy did not terminate"
    return journal


def replay_journal(s: Strategy, journal: Journal) -> None:
    """Replay a refill journal on a fresh ``s``: every ask must answer what it answered then."""
    for kind, entry in journal:
        if kind == "ask":
            free, batch = entry  # type: ignore[misc]
            assert s.ask(free) == batch
        else:
            s.tell(entry)  # type: ignore[arg-type]
