"""RandomSearch: seeded, without repeats, within its budget, honouring cap and constraint."""
from __future__ import annotations

import itertools
import math

import pytest

from search import RandomSearch

from .search_helpers import drive


def test_same_seed_same_points_other_seed_other_points() -> None:
    def points(seed: int) -> list[tuple[int, ...]]:
        s = RandomSearch((7, 8, 9), cap=4, seed=seed, max_evaluations=20)
        return [p for r in drive(s, lambda p: float(sum(p))) for p in r]
    assert points(1) == points(1)
    assert points(1) != points(2)


@pytest.mark.parametrize("shape, cap, budget", [((3, 4), 5, None), ((2, 2, 2), 3, 5),
                                                 ((6,), 4, 100), ((1,), 2, None)])
def test_no_repeats_budget_and_rounds_within_the_cap(shape, cap, budget) -> None:
    s = RandomSearch(shape, cap=cap, seed=0, max_evaluations=budget)
    rounds = drive(s, lambda p: float(sum(p)))
    asked = [p for r in rounds for p in r]
    size = math.prod(shape)
    assert len(asked) == len(set(asked)) == min(size, budget or size)
    assert all(1 <= len(r) <= cap for r in rounds)
    assert set(asked) <= set(itertools.product(*(range(n) for n in shape)))
    assert s.done and s.ask() == []


def test_constraint_is_honoured_and_an_exhausted_space_ends_the_search() -> None:
    valid = lambda p: p[0] != p[1]
    s = RandomSearch((4, 4), cap=3, seed=5, max_evaluations=100, valid=valid)
    asked = [p for r in drive(s, lambda p: float(p[0])) for p in r]
    assert sorted(asked) == sorted(p for p in itertools.product(range(4), repeat=2) if valid(p))
    assert s.budget == 12                                 # shrunk to what the space holds


def test_round_waits_until_every_point_is_told_and_best_is_the_minimum() -> None:
    s = RandomSearch((10, 10), cap=4, seed=2, max_evaluations=8)
    first = s.ask()
    s.tell({first[0]: 3.0})
    assert s.ask() == []                                  # the round is still out
    s.tell({p: float(i) for i, p in enumerate(first[1:])})
    second = s.ask()
    assert len(second) == 4 and not set(second) & set(first)
    s.tell({p: None for p in second})                     # failures are never best
    assert s.done and s.best == (first[1], 0.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="cap must be >= 1"):
        RandomSearch((3,), cap=0)
