"""A public stand-in for the paper's objective: the Perceptual Score over (lr, w2, w3, w4).

The paper's measurements are not public; this is the "paper-4d-smooth" landscape of
``benchmarks/problems.py`` (values 2.0-2.4, unequal curvatures, two coupled pairs) laid on
candidate values chosen so that its optimum, grid index (2, 8, 3, 7), is the paper's best point:
lr 1e-4, w2 50, w3 0.01, w4 0.01 (w1 stays fixed at 0.01). ``configs/paper-campaign.toml`` uses
the same candidate lists.

Used by ``simulate`` as ``paper_objective.py:perceptual_score``; run as a script it is also a
trial program for the real schedulers: it reads params.json and writes ``{"score": ...}``.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

VALUES: dict[str, list[float]] = {
    "lr": [2.5e-5, 5e-5, 1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 5e-3],
    "w2": [0, 0.1, 0.5, 1, 2, 5, 10, 20, 50, 100, 200],
    "w3": [0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
    "w4": [0, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5],
}
CENTRE = (2.0, 8.0, 3.0, 7.0)     # grid index of the optimum, as in problems.paper_like


def grid_index(params: Mapping[str, Any]) -> tuple[int, ...]:
    """The index tuple of a point given by its candidate values (exact grid values only)."""
    index = []
    for name, values in VALUES.items():
        value = float(params[name])
        matches = [i for i, v in enumerate(values) if math.isclose(v, value, rel_tol=1e-9)]
        if not matches:
            raise ValueError(f"{name} = {value} is not one of the candidate values {values}")
        index.append(matches[0])
    return tuple(index)


def perceptual_score(params: Mapping[str, Any]) -> float:
    """The paper-shaped score (lower is better); equals problems.paper_like() at the same index."""
    u = [i - c for i, c in zip(grid_index(params), CENTRE)]
    q = (0.9 * u[0] ** 2 + 0.35 * u[1] ** 2 + 0.5 * u[2] ** 2 + 0.25 * u[3] ** 2
         + 0.4 * u[0] * u[2] - 0.2 * u[1] * u[3])
    return 2.0 + 0.12 * (math.sqrt(1.0 + q) - 1.0) / 3.0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from jobs.result import load_params, write_result
    write_result({"score": perceptual_score(load_params())})
