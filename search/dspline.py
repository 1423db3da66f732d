"""d-Spline: a smoothing spline on one line of equally spaced samples (docs/spec/dsice.md#d-spline).

The unknowns are values on a finer grid of *markers*: ``m`` interpolation markers between
consecutive samples plus 2 buffer markers beyond each end. The fit minimises

    sum_r (f[q(s_r)] - y_r)^2 + alpha^2 * sum_i (f_i - 2 f_{i+1} + f_{i+2})^2

which is the least-squares solution of the stacked system ``[alpha*D; E] f ~= [0; y]``
(docs/spec/dsice.md#d-spline). The system is banded, and solved as such in O(S).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

DEFAULT_ALPHA = 0.1
DEFAULT_M = 2
# DSICE silently replaces alpha == 0 by this value; a zero penalty leaves f undetermined.
_ALPHA_FLOOR = 1e-10
REFINEMENTS = 2           # iterative-refinement steps after the banded Cholesky solve
# Banded and dense solutions agree to ~1e-9 (relative) for alpha >= 1e-3; below, lines of up to
# 100 samples (302 markers, a few ms dense) keep the dense solver.
BANDED_MIN_ALPHA = 1e-3
DENSE_MAX_MARKERS = 302


def n_markers(S: int, m: int = DEFAULT_M) -> int:
    """Number of markers for ``S`` samples: S + 4 buffers/edges + m per gap."""
    return S + 4 + m * (S - 1)


def q_of(s: int, m: int = DEFAULT_M) -> int:
    """Marker index of sample ``s``."""
    return 2 + s * (m + 1)


def near(q: int, S: int, m: int = DEFAULT_M) -> int:
    """The sample nearest to marker ``q`` (buffer markers map to the end samples)."""
    if q <= 2:
        return 0
    if q >= q_of(S - 1, m):
        return S - 1
    s0, off = divmod(q - 2, m + 1)
    return s0 if off <= m // 2 else s0 + 1


@lru_cache(maxsize=256)
def _penalty_band(M: int) -> np.ndarray:
    """``D^T D`` for ``M`` markers (D: second differences) in LAPACK's upper banded layout.

    Row 0 holds the second superdiagonal, row 1 the first, row 2 the diagonal; column j of row
    ``2 - k`` is the entry (j - k, j). Cached per line length, read-only.
    """
    band = np.zeros((3, M))
    rows = np.arange(M - 2)             # D row i has (1, -2, 1) at columns i, i+1, i+2
    np.add.at(band[2], rows, 1.0)
    np.add.at(band[2], rows + 1, 4.0)
    np.add.at(band[2], rows + 2, 1.0)
    np.add.at(band[1], rows + 1, -2.0)
    np.add.at(band[1], rows + 2, -2.0)
    np.add.at(band[0], rows + 2, 1.0)
    band.flags.writeable = False
    return band


def _solve(M: int, markers: np.ndarray, y: np.ndarray, a: float) -> np.ndarray:
    """The least-squares solution of ``[a*D; E] f ~= [0; y]``, in O(M).

    The normal equations ``(E^T E + a^2 D^T D) f = E^T y`` are pentadiagonal and positive
    definite (at least 2 distinct markers carry data), so a banded Cholesky solves them. Normal
    equations square the condition number; a few steps of iterative refinement on the residual
    of the stacked system recover the accuracy of a QR solution (tests compare with the dense
    least-squares solution). A system too ill-conditioned for Cholesky (alpha near zero on a long
    line) falls back to the dense solver.
    """
    from scipy.linalg import LinAlgError, solveh_banded  # type: ignore[import-untyped]
    a2 = a * a
    band = a2 * _penalty_band(M)
    np.add.at(band[2], markers, 1.0)
    rhs = np.zeros(M)
    np.add.at(rhs, markers, y)

    def residual(f: np.ndarray) -> np.ndarray:
        """``A^T (b - A f)`` of the stacked system, computed without forming A."""
        second = f[:-2] - 2.0 * f[1:-1] + f[2:]
        penalty = np.zeros(M)
        penalty[:-2] += second
        penalty[1:-1] -= 2.0 * second
        penalty[2:] += second
        r = -a2 * penalty
        np.add.at(r, markers, y - f[markers])
        return r

    try:
        f = solveh_banded(band, rhs, check_finite=False)
        for _ in range(REFINEMENTS):
            f = f + solveh_banded(band, residual(f), check_finite=False)
    except LinAlgError:
        f = np.full(M, np.nan)
    if np.all(np.isfinite(f)):
        return np.asarray(f)
    return _dense_solve(M, markers, y, a)


def _dense_solve(M: int, markers: np.ndarray, y: np.ndarray, a: float) -> np.ndarray:
    """The stacked system solved densely (numpy lstsq): O(M^3), the reference solution."""
    D = np.zeros((M - 2, M))
    for i in range(M - 2):
        D[i, i:i + 3] = (a, -2.0 * a, a)
    E = np.zeros((len(y), M))
    E[np.arange(len(y)), markers] = 1.0
    A = np.vstack([D, E])
    b = np.concatenate([np.zeros(M - 2), y])
    return np.asarray(np.linalg.lstsq(A, b, rcond=None)[0])


@dataclass(frozen=True)
class LineFit:
    """A fitted d-Spline over ``S`` samples: marker values ``f`` plus the data range."""

    f: np.ndarray
    S: int
    ymin: float
    ymax: float
    m: int = DEFAULT_M

    @property
    def sample_values(self) -> np.ndarray:
        return self.f[[q_of(s, self.m) for s in range(self.S)]]

    @property
    def curvature(self) -> np.ndarray:
        """``|f[q-1] - 2 f[q] + f[q+1]|`` at every sample marker, on the fine marker grid."""
        q = np.array([q_of(s, self.m) for s in range(self.S)])
        return np.asarray(np.abs(self.f[q - 1] - 2.0 * self.f[q] + self.f[q + 1]))

    def estimate(self, minimize: bool = True) -> int:
        """Estimated best sample: nearest sample to the *first* extreme marker."""
        q = int(np.argmin(self.f)) if minimize else int(np.argmax(self.f))
        return near(q, self.S, self.m)

    def zones(self) -> list[str]:
        """Per sample: 'lower' (below all data), 'higher' (above all data) or 'measured'."""
        return ["lower" if v < self.ymin else "higher" if v > self.ymax else "measured"
                for v in self.sample_values.tolist()]

    def priority(self, minimize: bool = True) -> list[int]:
        """All samples in IPPE phase-D order (docs/spec/dsice.md#phase-d, step 2), not yet filtered.

        Promising zone first (lower zone ascending for minimisation), then the opposite zone
        (largest over-shoot first), then the measured zone by curvature descending.
        """
        v = self.sample_values.tolist()
        k = self.curvature.tolist()
        lo = sorted((v[s], s) for s in range(self.S) if v[s] < self.ymin)
        hi = sorted(((v[s], s) for s in range(self.S) if v[s] > self.ymax), reverse=True)
        mz = sorted(((k[s], s) for s in range(self.S) if self.ymin <= v[s] <= self.ymax),
                    reverse=True)
        first, second = (lo, hi) if minimize else (hi, lo)
        return [s for _, s in first + second + mz]


def fit(S: int, obs: Sequence[tuple[int, float]], alpha: float = DEFAULT_ALPHA,
        m: int = DEFAULT_M) -> LineFit | None:
    """Fit a d-Spline to ``obs`` = [(sample index, value), ...] on a line of ``S`` samples.

    Returns None without data. With one distinct sample the fit is that constant (the spline
    is not unique below 2 positions; a constant is the natural reading).
    """
    if S < 1:
        raise ValueError(f"a line needs at least 1 sample, got S={S}")
    if not obs:
        return None
    for s, _ in obs:
        if not 0 <= s < S:
            raise ValueError(f"sample index {s} outside 0..{S - 1}")
    M = n_markers(S, m)
    y = np.array([float(v) for _, v in obs])
    if len({s for s, _ in obs}) < 2:
        f = np.full(M, float(y.mean()))
    else:
        a = float(alpha) if alpha != 0 else _ALPHA_FLOOR
        f = _solve(M, np.array([q_of(s, m) for s, _ in obs]), y, a)
    return LineFit(f=f, S=S, ymin=float(y.min()), ymax=float(y.max()), m=m)
