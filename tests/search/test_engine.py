"""DSICE engine behaviour: failures, constraints, maximize, modes, stages, speculation, API."""
import itertools
import random

import numpy as np
import pytest

from search import DSICE, StageRecord

from .search_helpers import drive, quad_e


def sphere(centre):
    return lambda p: float(sum((x - c) ** 2 for x, c in zip(p, centre)))


def test_readme_loop_and_state():
    s = DSICE(shape=(10, 11, 11, 11), cap=26)
    assert (s.stage, s.level, s.base) == (1, 1, (5, 5, 5, 5))
    f = sphere((2, 7, 3, 8))
    drive(s, f)
    assert s.best == ((2, 7, 3, 8), 0.0)
    assert s.base == (2, 7, 3, 8) and s.level == 4
    assert all(isinstance(r, StageRecord) for r in s.stages)
    assert [r.number for r in s.stages] == list(range(1, len(s.stages) + 1))
    assert sum(len(r.points) for r in s.stages) == len(s.history)
    assert len(s.stages[0].points) == 40       # the 4 axis lines through the centre
    assert s.stage == s.stages[-1].number


def test_from_values_maps_indices_to_values():
    s = DSICE.from_values({"lr": [1e-5, 1e-4, 1e-3], "w2": [0, 10, 50, 100]}, cap=4)
    assert s.shape == (3, 4) and s.names == ("lr", "w2")
    assert s.point_values((1, 2)) == {"lr": 1e-4, "w2": 50}
    with pytest.raises(ValueError, match="from_values"):
        DSICE((3, 3)).point_values((0, 0))


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "fast"}, "mode"), ({"cap": 0}, "cap"), ({"alpha": -1}, "alpha"),
    ({"start": (9, 9)}, "start")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DSICE((5, 5), **kwargs)


def test_synchronous_round_waits_and_ignores_tell_order():
    a, b = DSICE((11, 11), cap=4), DSICE((11, 11), cap=4)
    for _ in range(6):
        batch_a, batch_b = a.ask(), b.ask()
        assert batch_a == batch_b
        a.tell({p: quad_e(p) for p in batch_a})
        first, rest = batch_b[:1], batch_b[1:]
        b.tell({p: quad_e(p) for p in first})
        assert b.ask() == []                    # the round is still outstanding
        b.tell({p: quad_e(p) for p in reversed(rest)})
    assert a.ask() == b.ask()


def test_failed_points_are_never_reproposed_or_best():
    fails = {(5, 6), (6, 7), (3, 5)}
    s = DSICE((11, 11), cap=4)
    drive(s, lambda p: None if p in fails else quad_e(p))
    points = [p for p, _ in s.history]
    assert len(points) == len(set(points))
    assert fails <= set(points)
    best_value = min(v for _, v in s.history if v is not None)
    assert s.best[1] == best_value and s.best[0] not in fails
    assert s.best[0] != (6, 7)


def test_failed_base_is_left_for_any_measured_point():
    s = DSICE((5, 5), cap=4)
    drive(s, lambda p: None if p == (2, 2) else float(abs(p[0] - 4) + abs(p[1] - 0)))
    assert s.best == ((4, 0), 0.0) and s.stages[0].moved


def test_everything_fails():
    s = DSICE((4, 4), cap=3)
    drive(s, lambda p: None)
    assert s.best is None and s.done
    assert s.stages[-1].best is None


def test_constraints_are_never_proposed():
    valid = lambda p: p[0] + p[1] <= 12          # noqa: E731 - the optimum (6,7) is on the edge
    for mode in ("sync", "async", "sequential"):
        s = DSICE((11, 11), cap=4, mode=mode, valid=valid)
        drive(s, quad_e)
        assert all(valid(p) for p, _ in s.history)
        assert s.best[1] == min(v for _, v in s.history)


def test_invalid_centre_starts_at_the_nearest_valid_point():
    s = DSICE((5, 5), valid=lambda p: p != (2, 2))
    assert s.base == (3, 2)
    with pytest.raises(ValueError, match="constraint"):
        DSICE((3, 3), valid=lambda p: False)


def test_maximize_finds_the_maximum():
    s = DSICE((11, 11), cap=4, minimize=False)
    drive(s, lambda p: -quad_e(p))
    assert s.best == ((6, 7), -0.6)


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 7, 1), (2,), (6, 1, 5)])
def test_size_one_axes(shape):
    f = sphere(tuple(n - 1 for n in shape))
    for mode in ("sync", "sequential"):
        s = DSICE(shape, cap=3, mode=mode)
        drive(s, f)
        assert s.best[1] == min(v for _, v in s.history)
        assert len({p for p, _ in s.history}) == len(s.history)


def test_eight_parameters():
    f = sphere((1, 2, 3, 0, 4, 2, 1, 3))
    s = DSICE((5,) * 8, cap=26)
    drive(s, f)
    assert s.best == ((1, 2, 3, 0, 4, 2, 1, 3), 0.0)
    assert len(s.history) < 5 ** 8 // 10


def run_async(s, f, seed):
    """Complete outstanding points in a random order, one or several per tell."""
    rng = random.Random(seed)
    calls = []
    while not s.done:
        batch = s.ask()
        assert len(s.outstanding) <= s.cap
        pending = sorted(s.outstanding)
        assert pending, "an async engine that is not done must have work outstanding"
        rng.shuffle(pending)
        told = {p: f(p) for p in pending[: rng.randint(1, len(pending))]}
        calls.append((batch, told))
        s.tell(told)
    return calls


def test_async_keeps_slots_full_and_replays():
    s = DSICE((11, 11), cap=4, mode="async")
    calls = run_async(s, quad_e, seed=3)
    assert s.best == ((6, 7), 0.6)
    replay = DSICE((11, 11), cap=4, mode="async")
    for batch, told in calls:
        assert replay.ask() == batch
        replay.tell(told)
    assert replay.done and replay.history == s.history


def test_speculate_is_pure_and_useful():
    s = DSICE((11, 11), cap=4)
    twin = DSICE((11, 11), cap=4)
    asked, hits = 0, 0
    while not s.done:
        guesses = s.speculate(8)
        assert guesses == s.speculate(8)
        assert all(p not in s.outstanding and p not in dict(s.history) for p in guesses)
        batch = s.ask()
        assert batch == twin.ask()
        hits += len(set(batch) & set(guesses))
        asked += len(batch)
        s.tell({p: quad_e(p) for p in batch})
        twin.tell({p: quad_e(p) for p in batch})
    assert hits / asked > 0.5


def test_speculation_while_a_round_is_outstanding_is_what_comes_next():
    s = DSICE((10, 11, 11, 11), cap=26)
    s.tell({p: 1.0 for p in s.ask()})
    batch = s.ask()
    guesses = s.speculate(5)
    assert guesses and not set(guesses) & set(batch)
    s.tell({p: 1.0 for p in batch})
    assert set(guesses) & set(s.ask() + s.speculate(30))


def test_stage_record_is_frozen():
    s = DSICE((5, 5), cap=4)
    drive(s, lambda p: float(sum(p)))
    with pytest.raises(AttributeError):
        s.stages[0].moved = False


def test_noisy_four_parameter_problem_terminates():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.3, size=(10, 11, 11, 11))
    f = lambda p: float(sum((x - 4) ** 2 for x in p) + noise[p])   # noqa: E731
    s = DSICE((10, 11, 11, 11), cap=26)
    drive(s, f)
    assert len(s.history) < 1000
    assert s.best[1] == min(v for _, v in s.history)


def test_all_modes_agree_on_small_smooth_problems():
    for centre in itertools.product(range(0, 5, 2), repeat=2):
        f = sphere(centre)
        for mode in ("sync", "async", "sequential"):
            s = DSICE((5, 5), cap=3, mode=mode)
            drive(s, f) if mode != "async" else run_async(s, f, seed=1)
            assert s.best == (centre, 0.0)
