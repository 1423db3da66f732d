"""Property tests of ExploringDSICE on random small grids (values, failures, constraints)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from search import ExploringDSICE

from .search_helpers import drive
from .test_properties import SETTINGS, objective, problems


@SETTINGS
@given(problems(), st.integers(1, 6), st.integers(0, 12), st.integers(0, 2), st.booleans(),
       st.booleans(), st.integers(0, 3))
def test_explores_without_repeats_within_budget_and_replays(problem, cap, budget, restarts,
                                                            minimize, early, seed):
    shape, table, fails, invalid = problem
    f = objective(table, fails)
    kwargs = dict(cap=cap, explore_budget=budget, restarts=restarts, minimize=minimize,
                  restart_early=early, seed=seed, valid=lambda p: p not in invalid)
    s = ExploringDSICE(shape, **kwargs)
    rounds = drive(s, f, max_rounds=len(table) + 1)
    points = [p for p, _ in s.history]
    assert len(points) == len(set(points))
    assert not set(points) & invalid
    assert all(1 <= len(r) <= cap for r in rounds)
    assert s.explored <= budget and s.runs <= restarts + 1
    measured = [v for _, v in s.history if v is not None]
    if measured:
        assert s.best[1] == (min(measured) if minimize else max(measured))
    # The master's restart: a fresh instance replaying the rounds asks the same rounds.
    fresh = ExploringDSICE(shape, **kwargs)
    for expected in rounds:
        assert fresh.ask() == expected
        fresh.tell({p: f(p) for p in expected})
    assert fresh.done and fresh.stages == s.stages
