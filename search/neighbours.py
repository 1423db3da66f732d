"""Neighbours, directions and lines on an integer grid (docs/spec/dsice.md#lines, #neighbours)."""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache

from .base import Index

Direction = tuple[int, ...]


@lru_cache(maxsize=64)
def neighbour_offsets(d: int, k: int) -> tuple[Direction, ...]:
    """Offsets in {-1,0,1}^d changing 1..k axes, in the order of docs/spec/dsice.md#neighbours.

    Order: number of changed axes ascending, then the axis-subset bitmask ascending (bit p is
    parameter p), then the sign mask j = 0..2^nnz-1 where bit t set means the t-th changed
    axis moves by -1.
    """
    out: list[Direction] = []
    for nnz in range(1, min(k, d) + 1):
        subsets = sorted(itertools.combinations(range(d), nnz),
                         key=lambda axes: sum(1 << p for p in axes))
        for axes in subsets:
            for j in range(1 << nnz):
                delta = [0] * d
                for t, p in enumerate(axes):
                    delta[p] = -1 if (j >> t) & 1 else 1
                out.append(tuple(delta))
    return tuple(out)


def neighbours(base: Index, shape: Sequence[int], k: int) -> list[Index]:
    """``N_k(base)``: grid points differing from ``base`` by ±1 in 1..k axes, in that order."""
    result = []
    for delta in neighbour_offsets(len(shape), k):
        c = tuple(b + e for b, e in zip(base, delta))
        if all(0 <= x < n for x, n in zip(c, shape)):
            result.append(c)
    return result


def direction(base: Index, point: Index) -> Direction:
    """``dir(b, c)``: the primitive vector from b to c with its first nonzero entry positive."""
    diff = [c - b for b, c in zip(base, point)]
    g = math.gcd(*diff)
    if g == 0:
        raise ValueError(f"no direction from {base} to itself")
    v = [x // g for x in diff]
    first = next(x for x in v if x != 0)
    return tuple(-x for x in v) if first < 0 else tuple(v)


def changed_axes(v: Direction) -> int:
    return sum(1 for x in v if x != 0)


def line_points(base: Index, v: Direction, shape: Sequence[int]) -> list[Index]:
    """``L(b, v)``: every in-grid point ``b + t v``, ordered by increasing ``t``."""
    t_min, t_max = -math.inf, math.inf
    for b, x, n in zip(base, v, shape):
        if x > 0:
            t_min, t_max = max(t_min, -(b // x)), min(t_max, (n - 1 - b) // x)
        elif x < 0:
            t_min, t_max = max(t_min, -((n - 1 - b) // -x)), min(t_max, b // -x)
    return [tuple(b + t * x for b, x in zip(base, v)) for t in range(int(t_min), int(t_max) + 1)]
