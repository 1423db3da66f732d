"""ExploringDSICE (exploration in idle slots, multi-start), DSICE.inform and make_dsice."""
from __future__ import annotations

import pytest

from search import DSICE, ExploringDSICE, Index, Strategy, make_dsice

from .search_helpers import Objective, drive, quad_e


def deceptive(p: Index) -> float:
    """15x15: a local optimum 1.0 at (8, 6) next to the centre, the global 0.0 at (2, 12)."""
    x, y = p
    return round(min(1.0 + 0.1 * ((x - 8) ** 2 + (y - 6) ** 2),
                     0.15 * ((x - 2) ** 2 + (y - 12) ** 2)), 6)


def bowl4(p: Index) -> float:
    """A smooth 4-parameter bowl with its optimum away from the centre."""
    return float(sum((i - c) ** 2 for i, c in zip(p, (1, 5, 2, 4))) + 0.1 * p[0])


def sparse_valid(p: Index) -> bool:
    """About 60 % of the 15x15 grid is invalid (a parity rule and a 'resource' limit)."""
    return (p[0] + p[1]) % 2 == 0 and (p[0] + 1) * (p[1] + 1) <= 120


def run(s: Strategy, f: Objective) -> tuple[list[list[Index]], dict[Index, float | None]]:
    rounds = drive(s, f)
    return rounds, dict(s.history)


def replay(s: Strategy, rounds: list[list[Index]], values: dict[Index, float | None]) -> None:
    for expected in rounds:
        assert s.ask() == expected
        s.tell({p: values[p] for p in expected})


# -- DSICE.inform ---------------------------------------------------------------------------
def test_informed_points_are_never_proposed_and_can_be_the_result():
    s = DSICE((11, 11), cap=26)
    s.inform({(6, 7): quad_e((6, 7)), (0, 0): quad_e((0, 0))})
    rounds = drive(s, quad_e)
    asked = [p for r in rounds for p in r]
    assert (6, 7) not in asked and (0, 0) not in asked
    assert s.base == (6, 7) and s.best == ((6, 7), 0.6)
    # Stage records list the engine's own points only: they still partition its history.
    assert [p for r in s.stages for p in r.points] == [p for p, _ in s.history]


def test_inform_during_a_round_waits_for_the_round_and_replays():
    s = DSICE((11, 11), cap=6)
    first = s.ask()
    s.inform({(10, 10): quad_e((10, 10)), (6, 7): None})
    s.tell({p: quad_e(p) for p in first})
    second = s.ask()
    t = DSICE((11, 11), cap=6)
    assert t.ask() == first
    t.inform({(10, 10): quad_e((10, 10)), (6, 7): None})
    t.tell({p: quad_e(p) for p in first})
    assert t.ask() == second
    assert (6, 7) not in second and (10, 10) not in second


@pytest.mark.parametrize("point, message", [
    ((5, 5), "already measured"), ((6, 5), "outstanding"), ((11, 0), "not a point of the grid"),
    ((1, 0), "not a valid point")])
def test_inform_rejects_bad_points(point, message):
    s = DSICE((11, 11), cap=1, valid=lambda p: p != (1, 0))
    s.tell({p: 1.0 for p in s.ask()})          # the centre (5, 5)
    assert s.ask() == [(6, 5)]
    with pytest.raises(ValueError, match=message):
        s.inform({point: 1.0})


# -- ExploringDSICE -------------------------------------------------------------------------
@pytest.mark.parametrize("shape, f, cap", [((11, 11), quad_e, 26), ((7, 8, 6, 7), bowl4, 26),
                                           ((11, 11), quad_e, 3)])
def test_without_budget_it_is_exactly_dsice(shape, f, cap):
    plain = DSICE(shape, cap=cap)
    exploring = ExploringDSICE(shape, cap=cap, explore_budget=0, restarts=3)
    assert drive(exploring, f) == drive(plain, f)
    assert exploring.stages == plain.stages and exploring.base == plain.base


def test_rounds_fit_the_cap_budget_is_kept_and_nothing_is_asked_twice():
    s = ExploringDSICE((7, 8, 6, 7), cap=26, explore_budget=60, seed=3)
    rounds, _ = run(s, bowl4)
    asked = [p for r in rounds for p in r]
    assert len(asked) == len(set(asked))
    assert all(1 <= len(r) <= 26 for r in rounds)
    own = {p for record in s.stages for p in record.points}
    explored = [p for p in asked if p not in own]
    assert len(explored) == s.explored <= 60
    # Exploration only fills idle slots: a round's DSICE points always come first, and a round
    # is only topped up with exploration points when DSICE asked for fewer than the cap.
    for r in rounds:
        k = sum(1 for p in r if p in own)
        assert all(p in own for p in r[:k]) and not any(p in own for p in r[k:])


def test_multi_start_escapes_a_deceptive_local_optimum():
    plain = DSICE((15, 15), cap=8)
    drive(plain, deceptive)
    assert plain.best == ((8, 6), 1.0)                 # stuck next to the centre
    runs = []
    for seed in range(4):
        s = ExploringDSICE((15, 15), cap=8, explore_budget=40, restarts=2, seed=seed)
        drive(s, deceptive)
        assert s.best == ((2, 12), 0.0) and s.base == (2, 12)
        assert [r.number for r in s.stages] == list(range(1, len(s.stages) + 1))
        assert s.stage == len(s.stages)
        runs.append(s.runs)
    assert max(runs) >= 2                              # some seeds got there by a restart


def test_restart_only_when_done_without_restart_early():
    s = ExploringDSICE((15, 15), cap=8, explore_budget=40, restarts=2, seed=2,
                       restart_early=False)
    drive(s, deceptive)
    assert s.best == ((2, 12), 0.0)


@pytest.mark.parametrize("seed", [2, 3])
def test_replay_reproduces_every_round_across_restarts(seed):
    kwargs = dict(cap=8, explore_budget=40, restarts=2, seed=seed)
    s = ExploringDSICE((15, 15), **kwargs)
    rounds, values = run(s, deceptive)
    assert s.runs >= 2
    for k in range(len(rounds)):
        fresh = ExploringDSICE((15, 15), **kwargs)
        replay(fresh, rounds[:k], values)
        assert fresh.ask() == rounds[k]
    fresh = ExploringDSICE((15, 15), **kwargs)
    replay(fresh, rounds, values)
    assert fresh.done and fresh.stages == s.stages


def test_tell_order_and_pieces_do_not_matter():
    a = ExploringDSICE((15, 15), cap=8, explore_budget=40, seed=1)
    b = ExploringDSICE((15, 15), cap=8, explore_budget=40, seed=1)
    while not a.done:
        batch = a.ask()
        assert b.ask() == batch
        a.tell({p: deceptive(p) for p in batch})
        for p in reversed(batch):                     # one at a time, backwards
            b.tell({p: deceptive(p)})
    assert b.done and a.history != b.history and a.stages == b.stages


def test_invalid_points_are_never_proposed():
    s = ExploringDSICE((15, 15), cap=8, explore_budget=60, seed=0, valid=sparse_valid)
    rounds, _ = run(s, deceptive)
    asked = [p for r in rounds for p in r]
    assert asked and all(sparse_valid(p) for p in asked)
    assert s.explored > 0


def test_failed_exploration_points_are_known_but_never_best():
    def flaky(p: Index) -> float | None:
        return None if (p[0] * 7 + p[1]) % 3 == 0 else deceptive(p)

    s = ExploringDSICE((15, 15), cap=8, explore_budget=40, seed=0)
    rounds, values = run(s, flaky)
    asked = [p for r in rounds for p in r]
    assert len(asked) == len(set(asked))
    assert s.best is not None and s.best[1] == min(v for v in values.values() if v is not None)


def test_speculate_and_state_delegate_to_the_current_run():
    s = ExploringDSICE((11, 11), cap=6, explore_budget=10)
    batch = s.ask()
    assert s.stage == 1 and s.level == 1 and s.base == (5, 5)
    assert not set(s.speculate(20)) & set(batch)
    s.tell({p: quad_e(p) for p in batch})
    assert s.speculate(0) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "async"}, "synchronous"), ({"explore_budget": -1}, "explore_budget"),
    ({"restarts": -1}, "restarts"), ({"model_share": 2}, "model_share"), ({"seed": -1}, "seed"),
    ({"bogus": 1}, "unknown DSICE option 'bogus'")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExploringDSICE((5, 5), **kwargs)


# -- make_dsice -----------------------------------------------------------------------------
def test_make_dsice_is_plain_dsice_without_exploration_options():
    s = make_dsice((11, 11), cap=26, alpha=0.2, seed=4)
    assert type(s) is DSICE and s.alpha == 0.2
    assert drive(s, quad_e) == drive(DSICE((11, 11), cap=26, alpha=0.2), quad_e)


def test_make_dsice_explores_with_exploration_options():
    s = make_dsice((11, 11), cap=26, minimize=True, valid=None, explore_budget=5, restarts=1)
    assert isinstance(s, ExploringDSICE) and s.explore_budget == 5 and s.restarts_left == 1
    assert isinstance(make_dsice((5, 5), cap=4, model_share=1.0), ExploringDSICE)


def test_make_dsice_names_an_unknown_option():
    with pytest.raises(ValueError, match="unknown search option 'explore_budgt'"):
        make_dsice((5, 5), cap=4, explore_budgt=10)
