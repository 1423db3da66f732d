"""Neighbour order, directions, lines (docs/spec/dsice.md#lines, #neighbours) and IPPE lists (#phase-t, #example-b)."""
import pytest

from search import DSICE
from search.ippe import Board, LineAgent, tri4, trisection_order
from search.neighbours import direction, line_points, neighbour_offsets, neighbours


def test_neighbour_order_d2_k2():
    assert neighbour_offsets(2, 2) == ((1, 0), (-1, 0), (0, 1), (0, -1),
                                       (1, 1), (-1, 1), (1, -1), (-1, -1))


@pytest.mark.parametrize("j, points", [(1, 8), (2, 24), (3, 32), (4, 16)])
def test_neighbour_counts_d4(j, points):
    exactly_j = [d for d in neighbour_offsets(4, 4) if sum(map(abs, d)) == j]
    assert len(exactly_j) == points
    assert len({direction((0,) * 4, d) for d in exactly_j}) == points // 2


def test_neighbours_stay_on_the_grid():
    assert neighbours((0, 4), (5, 5), 2) == [(1, 4), (0, 3), (1, 3)]
    assert neighbours((0,), (1,), 1) == []


def test_direction_is_primitive_with_positive_first_entry():
    assert direction((2, 2), (1, 3)) == (1, -1)
    assert direction((0, 0, 0), (0, -4, 2)) == (0, 2, -1)
    with pytest.raises(ValueError):
        direction((1, 1), (1, 1))


def test_line_points_cover_the_whole_grid_line():
    assert line_points((2, 3), (1, 1), (5, 5)) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert line_points((3, 4), (1, -1), (5, 5)) == [(3, 4), (4, 3)]
    assert line_points((2, 2), (0, 1), (5, 5)) == [(2, t) for t in range(5)]


@pytest.mark.parametrize("L, expected", [(11, [0, 10, 3, 6]), (10, [0, 9, 3, 6]),
                                         (5, [0, 4, 1, 2]), (4, [0, 3, 1, 2]), (3, [0, 2, 1]),
                                         (2, [0, 1]), (1, [0])])
def test_tri4(L, expected):
    assert tri4(L) == expected


def test_recursive_trisection_order():
    assert trisection_order(11) == [0, 10, 3, 6, 1, 2, 4, 5, 7, 8, 9]
    assert trisection_order(12) == [0, 11, 3, 7, 1, 2, 4, 5, 8, 9, 6, 10]
    for L in range(1, 40):
        assert sorted(trisection_order(L)) == list(range(L))


Y_B = [9.0, 7.2, 5.9, 4.9, 4.3, 3.9, 3.6, 3.5, 3.8, 4.6, 6.0]


def test_example_b_line_agent_step_by_step():
    results: dict = {}
    points = [(i,) for i in range(11)]
    line = LineAgent(points, (1,), Board(results, lambda p: True), recursive=False)
    assert line.wanted() == [(0,), (10,), (3,), (6,)]
    for i in (0, 10, 3, 6):
        results[(i,)] = Y_B[i]
        line.register((i,))
    line.end_round()
    assert (line.phase, line.estimate, line.count) == ("D", 6, 1)
    assert line.wanted() == [(i,) for i in (4, 5, 7, 2, 8, 1, 9)]
    results[(4,)] = Y_B[4]
    line.register((4,))
    assert (line.estimate, line.count) == (6, 2)
    assert line.wanted() == [(i,) for i in (2, 7, 5, 8, 1, 9)]
    results[(2,)] = Y_B[2]
    line.register((2,))
    assert line.count == 3 and line.done
    assert line.best() == ((6,), 3.6)


def test_example_b_through_the_engine():
    s = DSICE((11,), mode="sequential")
    while not s.done:
        s.tell({p: Y_B[p[0]] for p in s.ask()})
    assert [p[0] for p, _ in s.history] == [0, 10, 3, 6, 4, 2]
    assert s.best == ((6,), 3.6) and s.base == (6,)


def test_line_stops_at_30_points():
    results: dict = {}
    points = [(i,) for i in range(60)]
    # A noisy zig-zag keeps the estimate moving so that only the 30-point rule stops it.
    values = {(i,): (i % 7) * 1.0 + (0.5 if i % 2 else 0.0) for i in range(60)}
    line = LineAgent(points, (1,), Board(results, lambda p: True), recursive=False)
    while not line.done:
        p = line.wanted()[0]
        results[p] = values[p]
        line.register(p)
        line.end_round()
    assert len(results) <= 30


def test_failed_points_count_for_completion_but_not_the_fit():
    results: dict = {(0,): None, (4,): None}
    line = LineAgent([(i,) for i in range(5)], (1,), Board(results, lambda p: True),
                     recursive=False)
    assert line.wanted() == [(1,), (2,)]
    results[(1,)] = 1.0
    results[(2,)] = 2.0
    line.end_round()
    assert line.phase == "D"
    while not line.done:
        p = line.wanted()[0]
        results[p] = 3.0
        line.register(p)
    assert line.best() == ((1,), 1.0)
