"""The peers benchmark's problems: the 4-D ones of problems.py, 6-D and 10-D classics, and five
real GPU-kernel tuning spaces in which every configuration was measured (benchmarks/data/).

Every problem offers ``shape``, ``optimum``, ``median``, ``regret(value)`` and
``outcome(point)`` (the value, or None for a trial that cannot run). In this benchmark nobody is
told a constraint: a point that cannot run is a failed trial that still holds a job slot.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from problems import PROBLEMS, Problem

DATA = Path(__file__).resolve().parent / "data"
TUNING_SPACES = ("pnpoly_rtx2080ti", "convolution_rtxtitan", "dedispersion_a4000",
                 "convolution_w6600", "gemm_rtx2080ti")
MEDIAN_SAMPLE = 20_000      # random points for the median of a grid too large to tabulate


@dataclass(frozen=True)
class GridFunction:
    """A problem too large to tabulate: a function of the index tuple with a known optimum.

    The median (the regret's scale) is estimated from a seeded random sample of the grid.
    """

    name: str
    description: str
    shape: tuple[int, ...]
    function: Callable[[np.ndarray], np.ndarray] = field(repr=False)   # rows of indices
    optimum: float = 0.0

    @cached_property
    def median(self) -> float:
        rng = np.random.default_rng(0)
        sample = np.stack([rng.integers(n, size=MEDIAN_SAMPLE) for n in self.shape], axis=1)
        return float(np.median(self.function(sample)))

    def outcome(self, point: tuple[int, ...]) -> float | None:
        return float(self.function(np.asarray([point]))[0])

    def regret(self, value: float) -> float:
        return (value - self.optimum) / (self.median - self.optimum)


def hartmann6(n: int = 10) -> Problem:
    """Hartmann-6 on an n^6 grid of [0, 1]^6 (n = 10: a million points, tabulated)."""
    alpha = np.array([1.0, 1.2, 3.0, 3.2])
    a = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
    p = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
    x = np.meshgrid(*[np.linspace(0.0, 1.0, n)] * 6, indexing="ij", sparse=True)
    table = np.zeros((n,) * 6)
    for i in range(4):
        table -= alpha[i] * np.exp(-sum(a[i, j] * (x[j] - p[i, j]) ** 2 for j in range(6)))
    return Problem("hartmann-6d", f"{n}^6 on [0,1]^6, Hartmann-6 (6 local minima)", table)


LEVY_AXIS = np.linspace(-11.0, 5.0, 9)     # step 2: x = 1 (the optimum) at index 6, centre at 4


def _levy(rows: np.ndarray) -> np.ndarray:
    w = 1.0 + (LEVY_AXIS[rows] - 1.0) / 4.0
    head = np.sin(np.pi * w[:, 0]) ** 2
    body = ((w[:, :-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:, :-1] + 1) ** 2)).sum(axis=1)
    tail = (w[:, -1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[:, -1]) ** 2)
    return head + body + tail


def levy10() -> GridFunction:
    """Levy on a 9^10 grid of [-11, 5]^10 (3.5e9 points): optimum 0 at index 6 on every axis."""
    return GridFunction("levy-10d", "9^10 on [-11,5]^10, Levy (multimodal), optimum 0 two "
                        "steps off-centre on every axis", (9,) * 10, _levy)


def tuning_space(stem: str, directory: Path = DATA) -> Problem:
    """A measured tuning space: ``values`` where ``status == 0`` and finite, else a failed trial."""
    path = directory / f"{stem}.npz"
    try:
        with np.load(path) as z:
            values, status, meta = z["values"], z["status"], json.loads(str(z["meta"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a tuning space (values, status, meta): {exc}") from exc
    if values.shape != status.shape or values.ndim != len(meta["params"]):
        raise ValueError(f"{path}: values {values.shape}, status {status.shape} and "
                         f"{len(meta['params'])} params do not match")
    valid = (status == 0) & np.isfinite(values)
    if not valid.any():
        raise ValueError(f"{path}: no configuration ran")
    grid = " x ".join(str(n) for n in values.shape)
    description = (f"{meta.get('kernel', '?')} on {meta.get('device', '?')}, {grid}, "
                   f"{valid.mean():.1%} runnable, time in ms")
    return Problem(stem.replace("_", "-"), description, np.where(valid, values, np.nan), valid)


def _tuning(stem: str) -> Callable[[], Problem]:
    return lambda: tuning_space(stem)


LANDSCAPES: dict[str, Callable[[], Problem | GridFunction]] = {
    **PROBLEMS,
    "hartmann-6d": hartmann6,
    "levy-10d": levy10,
    **{stem.replace("_", "-"): _tuning(stem) for stem in TUNING_SPACES},
}


def grid_size(problem: Problem | GridFunction) -> int:
    return math.prod(problem.shape)
