"""Public test problems for the search benchmarks: objectives tabulated on discrete grids.

Every problem is a full table of values over its grid (numpy array indexed by the index tuple),
so the grid optimum is known exactly and evaluation is free. A problem may carry a constraint
(a boolean table, ``valid``): invalid points are never run, and the optimum and median are taken
over the valid points only. Noise is a fixed, seeded table: the
"noisy" problems are deterministic functions of the point, like a training run with fixed seeds.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

PAPER_SHAPE = (10, 11, 11, 11)      # lr x w2 x w3 x w4 in the seed paper: 13,310 points


@dataclass(frozen=True)
class Problem:
    """A tabulated minimisation problem on a grid."""

    name: str
    description: str
    table: np.ndarray
    valid: np.ndarray | None = None      # boolean table; None = every point is valid

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.table.shape)

    @cached_property
    def _valid_values(self) -> np.ndarray:
        return self.table if self.valid is None else self.table[self.valid]

    @cached_property
    def optimum(self) -> float:
        return float(self._valid_values.min())

    @cached_property
    def median(self) -> float:
        return float(np.median(self._valid_values))

    @property
    def constraint(self) -> Callable[[tuple[int, ...]], bool] | None:
        """The constraint as a strategy's ``valid`` callable (None when unconstrained)."""
        mask = self.valid
        return None if mask is None else (lambda point: bool(mask[point]))

    def __call__(self, point: tuple[int, ...]) -> float:
        return float(self.table[point])

    def outcome(self, point: tuple[int, ...]) -> float | None:
        """What a trial at ``point`` returns: its value, or None where it cannot run (invalid)."""
        if self.valid is not None and not self.valid[point]:
            return None
        return float(self.table[point])

    def regret(self, value: float) -> float:
        """Normalised regret: 0 at the grid optimum, 1 at the grid median value."""
        return (value - self.optimum) / (self.median - self.optimum)


def _grid(shape: tuple[int, ...], axes: list[np.ndarray]) -> list[np.ndarray]:
    return list(np.meshgrid(*axes, indexing="ij"))


def paper_like(noise: float = 0.0, seed: int = 0) -> Problem:
    """A smooth 10x11x11x11 landscape shaped like the paper's Perceptual-Index surface.

    Values 2.0-2.4 with the optimum (about 2.0) away from the centre at (2, 8, 3, 7),
    unequal curvatures per axis and two coupled pairs so that diagonal directions help.
    """
    x = _grid(PAPER_SHAPE, [np.arange(n, dtype=float) for n in PAPER_SHAPE])
    c = (2.0, 8.0, 3.0, 7.0)
    u = [xi - ci for xi, ci in zip(x, c)]
    q = (0.9 * u[0] ** 2 + 0.35 * u[1] ** 2 + 0.5 * u[2] ** 2 + 0.25 * u[3] ** 2
         + 0.4 * u[0] * u[2] - 0.2 * u[1] * u[3])
    table = 2.0 + 0.12 * (np.sqrt(1.0 + q) - 1.0) / 3.0
    if noise:
        table = table + np.random.default_rng(seed).normal(0.0, noise, PAPER_SHAPE)
    kind = f"noisy (sd {noise:g})" if noise else "smooth"
    return Problem(f"paper-4d-{'noisy' if noise else 'smooth'}",
                   f"10x11x11x11, {kind}, optimum near (2,8,3,7)", table)


def sphere(n: int = 11, d: int = 4) -> Problem:
    """Sphere on [-5, 5]^d with the minimum off-centre at x = 2 (on the grid)."""
    x = _grid((n,) * d, [np.linspace(-5, 5, n)] * d)
    table = sum((xi - 2.0) ** 2 for xi in x)
    return Problem(f"sphere-{d}d", f"{n}^{d}, sum (x_i - 2)^2 on [-5,5]", np.asarray(table))


def rosenbrock(n: int = 11, d: int = 4) -> Problem:
    """Rosenbrock on [-1, 1.5]^d (step 0.25 for n = 11, so x = 1 is on the grid)."""
    x = _grid((n,) * d, [np.linspace(-1.0, 1.5, n)] * d)
    table = sum(100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2 for i in range(d - 1))
    return Problem(f"rosenbrock-{d}d", f"{n}^{d} on [-1,1.5], curved valley", np.asarray(table))


def rastrigin(n: int = 11, d: int = 4) -> Problem:
    """Rastrigin on [-3.5, 1.5]^d (step 0.5): integers are basins, half-integers ridges.

    The optimum x = 0 sits at index 7 of 11, two steps from the centre.
    """
    x = _grid((n,) * d, [np.linspace(-3.5, 1.5, n)] * d)
    table = 10.0 * d + sum(xi ** 2 - 10.0 * np.cos(2 * np.pi * xi) for xi in x)
    return Problem(f"rastrigin-{d}d", f"{n}^{d} on [-3.5,1.5], multimodal", np.asarray(table))


def deceptive() -> Problem:
    """10x11x11x11: a local optimum (value 1.0) next to the centre whose basin covers the middle
    of the grid; the global optimum (0.0) lies in a far corner, at (8, 1, 9, 9), in a basin where
    about 1.5 % of the grid beats the local optimum. The value is the lower of the two wells."""
    x = _grid(PAPER_SHAPE, [np.arange(n, dtype=float) for n in PAPER_SHAPE])
    local = 1.0 + 0.1 * sum((xi - ci) ** 2 for xi, ci in zip(x, (6, 5, 4, 6)))
    far = 0.12 * sum((xi - ci) ** 2 for xi, ci in zip(x, (8, 1, 9, 9)))
    return Problem("deceptive-4d", "10x11x11x11, local optimum 1.0 next to the centre, "
                   "global 0.0 at (8,1,9,9)", np.minimum(local, far))


def constrained() -> Problem:
    """10x11x11x11 shaped like a GPU-kernel tuning space: 58 % of the points are invalid.

    Think of x1 as an unroll factor and x2..x4 as tile sizes: a point is valid when the "threads
    per block" (x2+1)(x3+1)(x4+1) stay <= 400 and x2 + x4 is even (a vector-width rule). Bigger
    tiles are faster, so the unconstrained optimum (3, 9, 8, 9) is invalid and the valid optimum
    lies on the resource boundary, at (3, 9, 4, 7).
    """
    x = _grid(PAPER_SHAPE, [np.arange(n, dtype=float) for n in PAPER_SHAPE])
    valid = ((x[1] + 1) * (x[2] + 1) * (x[3] + 1) <= 400) & ((x[1] + x[3]) % 2 == 0)
    u = [xi - ci for xi, ci in zip(x, (3.0, 9.0, 8.0, 9.0))]
    q = 0.6 * u[0] ** 2 + 0.3 * (u[1] ** 2 + u[2] ** 2 + u[3] ** 2) + 0.2 * u[1] * u[2]
    return Problem("constrained-4d", "10x11x11x11, 58 % invalid (resource and parity rules), "
                   "optimum on the boundary", 1.0 + 0.1 * np.sqrt(1.0 + q), valid)


PROBLEMS: dict[str, Callable[[], Problem]] = {
    "paper-4d-smooth": paper_like,
    "paper-4d-noisy": lambda: paper_like(noise=0.01, seed=1),
    "sphere-4d": sphere,
    "rosenbrock-4d": rosenbrock,
    "rastrigin-4d": rastrigin,
    "deceptive-4d": deceptive,
    "constrained-4d": constrained,
}
