"""The contract every strategy keeps (search/base.py), run over every strategy and mode.

Never re-asks a point, never has more than ``cap`` points out (nor more than ``free`` in refill
mode, for strategies that use the hint), terminates by itself, ``best`` is the best value told,
and replay lands on the same state: ``orchestrator.strategies.replay`` for synchronous rounds,
a journal of tell groups and ``ask(free)`` calls for refill mode.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest

from orchestrator.strategies import replay
from search import (
    DSICE,
    EagerDSICE,
    ExploringDSICE,
    GridSearch,
    Index,
    RandomSearch,
    Strategy,
)

from .search_helpers import drive, drive_refill, replay_journal

SHAPE = (5, 6, 4)
CAP = 5


def objective(p: Index) -> float | None:
    """A tilted bowl with a few failing points (a failure is told as None)."""
    if p in {(3, 1, 1), (0, 5, 3), (2, 2, 2)}:
        return None
    x, y, z = p
    return round((x - 3) ** 2 + 0.5 * (y - 1) ** 2 + 2 * (z - 2) ** 2 + 0.3 * x * y, 6)


def valid(p: Index) -> bool:
    return (p[0] + p[1] + p[2]) % 7 != 3


Factory = Callable[[], Strategy]
STRATEGIES: dict[str, Factory] = {
    "grid": lambda: GridSearch(SHAPE, cap=CAP, valid=valid),
    "random": lambda: RandomSearch(SHAPE, cap=CAP, seed=3, max_evaluations=40, valid=valid),
    "dsice-sync": lambda: DSICE(SHAPE, cap=CAP, valid=valid),
    "dsice-async": lambda: DSICE(SHAPE, cap=CAP, mode="async", valid=valid),
    "dsice-sequential": lambda: DSICE(SHAPE, mode="sequential", valid=valid),
    "dsice-exploring": lambda: ExploringDSICE(SHAPE, cap=CAP, explore_budget=12, restarts=2,
                                              seed=1, valid=valid),
    "dsice-eager": lambda: EagerDSICE(SHAPE, cap=CAP, explore_budget=8, seed=1, valid=valid),
}
USES_FREE = {"dsice-async", "dsice-eager"}     # the others ignore the hint (base contract)


def caps(name: str) -> int:
    return 1 if name == "dsice-sequential" else CAP


@pytest.fixture(params=sorted(STRATEGIES))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# Stage records partition the history, except ExploringDSICE's (exploration is in no stage).
PARTITIONED = {"dsice-sync", "dsice-async", "dsice-sequential", "dsice-eager"}


def check_run(s: Strategy, asked: list[Index], name: str) -> None:
    assert s.done and s.ask() == [] and not s.outstanding
    if name in PARTITIONED:
        assert sorted(p for r in s.stages for p in r.points) == sorted(asked)
        assert [r.number for r in s.stages] == list(range(1, len(s.stages) + 1))
    assert len(asked) == len(set(asked)), "a point was asked twice"
    assert all(valid(p) for p in asked), "an invalid point was asked"
    assert sorted(asked) == sorted(p for p, _ in s.history)
    told = [(p, v) for p, v in s.history if v is not None]
    best = s.best
    assert best is not None and best[1] == min(v for _, v in told)
    assert best == next((p, v) for p, v in told if v == best[1])   # first one on ties


def test_synchronous_rounds(name: str) -> None:
    s = STRATEGIES[name]()
    rounds = drive(s, objective, max_rounds=200)
    assert all(1 <= len(r) <= caps(name) for r in rounds)
    check_run(s, [p for r in rounds for p in r], name)


def test_refill_mode(name: str) -> None:
    s = STRATEGIES[name]()
    journal = drive_refill(s, objective, caps(name), seed=5)
    asks = [entry for kind, entry in journal if kind == "ask"]
    asked = [p for _, batch in asks for p in batch]   # type: ignore[misc]
    if name in USES_FREE:
        assert all(len(batch) <= free for free, batch in asks)   # type: ignore[misc]
    check_run(s, asked, name)


def test_refill_journal_replays_identically(name: str) -> None:
    journal = drive_refill(STRATEGIES[name](), objective, caps(name), seed=11)
    fresh = STRATEGIES[name]()
    replay_journal(fresh, journal)
    assert fresh.done


@pytest.mark.parametrize("cut", [1, 3, 6])
def test_replay_lands_on_the_round_in_progress(name: str, cut: int) -> None:
    """Outcomes known up to round ``cut``: replay asks the same rounds and stops in round
    ``cut + 1`` with the same points, as the master does after a restart."""
    original = STRATEGIES[name]()
    rounds = drive(original, objective, max_rounds=200)
    if len(rounds) <= cut:
        pytest.skip(f"{name} needs only {len(rounds)} rounds")
    known = {p: objective(p) for r in rounds[:cut] for p in r}
    state = replay(STRATEGIES[name](), known)
    assert state.rounds == cut + 1 and state.current == rounds[cut]
    assert [p for p, _ in state.strategy.history] == [p for r in rounds[:cut] for p in r]
