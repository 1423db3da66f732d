"""Peers of DSICE behind the cluster's ask/tell: Optuna, Nevergrad, and a plain coordinate search.

Every peer works on the grid's index tuples. Optuna samplers see one ``IntDistribution(0, n-1)``
per axis (ordered integers; CMA-ES with margin, its authors' setting for integer spaces);
Nevergrad sees an integer-cast bounded ``Array`` (its documented encoding of ordered integers).
A peer may ask for the same point twice: every ask is a trial of its own to the peer, and all
trials of one point are told that point's result together (see cluster.py, "Duplicates").
A failed evaluation is, to TPE, a completed trial that violates a constraint learnt after the
fact (Optuna's ``constraints_func``, evaluated once a trial is told, ranks it below every
feasible trial; told as ``TrialState.FAIL`` TPE ignores it and proposes the same configurations
again); to CMA-ES, which takes no constraints, a failed trial (``TrialState.FAIL``); to
Nevergrad a loss of +inf.
"""
from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from search import Strategy
from search.base import Index, Result


class OptunaPeer:
    """An Optuna sampler through the study's ask/tell interface; never stops by itself."""

    done = False

    def __init__(self, shape: Sequence[int], sampler: Any, *,
                 learns_failures: bool = False) -> None:
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._fail = optuna.trial.TrialState.FAIL
        self.study = optuna.create_study(sampler=sampler)
        self.dists: dict[str, Any] = {f"x{i}": optuna.distributions.IntDistribution(0, int(n) - 1)
                      for i, n in enumerate(shape)}
        self._trials: defaultdict[Index, list[Any]] = defaultdict(list)
        self.learns_failures = learns_failures
        self._worst = 0.0              # the value told with a failed trial (it is infeasible)

    @classmethod
    def tpe(cls, shape: Sequence[int], seed: int) -> OptunaPeer:
        import optuna
        with warnings.catch_warnings():     # multivariate and constant_liar are "experimental"
            warnings.simplefilter("ignore")
            sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                                 constant_liar=True,
                                                 constraints_func=_failed_constraint)
        return cls(shape, sampler, learns_failures=True)

    @classmethod
    def cmaes(cls, shape: Sequence[int], seed: int) -> OptunaPeer:
        import optuna
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler = optuna.samplers.CmaEsSampler(seed=seed, with_margin=True)
        return cls(shape, sampler)

    def ask(self, free: int | None = None) -> list[Index]:
        out = []
        for _ in range(free or 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = self.study.ask(self.dists)
            point = tuple(int(trial.params[name]) for name in self.dists)
            self._trials[point].append(trial)
            out.append(point)
        return out

    def tell(self, results: Mapping[Index, Result]) -> None:
        for point, value in results.items():
            for trial in self._trials.pop(tuple(point), []):
                if value is not None:
                    self._worst = max(self._worst, float(value))
                    self.study.tell(trial, float(value))
                elif self.learns_failures:
                    trial.set_user_attr(FAILED, True)
                    self.study.tell(trial, self._worst)
                else:
                    self.study.tell(trial, state=self._fail)


FAILED = "failed"


def _failed_constraint(trial: Any) -> tuple[float]:
    """Optuna's constraint value: > 0 (violated) for a configuration that could not run."""
    return (1.0 if trial.user_attrs.get(FAILED) else 0.0,)


class NevergradPeer:
    """A Nevergrad optimiser (``num_workers = cap``) through ask/tell; never stops by itself."""

    done = False

    def __init__(self, shape: Sequence[int], name: str, *, cap: int, budget: int,
                 seed: int) -> None:
        import nevergrad as ng
        upper = np.asarray(shape, dtype=float) - 1
        param = ng.p.Array(init=upper / 2, lower=0.0, upper=upper).set_integer_casting()
        param.random_state = np.random.RandomState(seed)
        self.shape = tuple(int(n) for n in shape)
        self.optimizer = ng.optimizers.registry[name](parametrization=param, budget=budget,
                                                      num_workers=cap)
        self._candidates: defaultdict[Index, list[Any]] = defaultdict(list)

    def ask(self, free: int | None = None) -> list[Index]:
        out = []
        for _ in range(free or 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                candidate = self.optimizer.ask()
            point = tuple(int(min(max(round(float(v)), 0), n - 1))
                          for v, n in zip(candidate.value, self.shape))
            self._candidates[point].append(candidate)
            out.append(point)
        return out

    def tell(self, results: Mapping[Index, Result]) -> None:
        for point, value in results.items():
            for candidate in self._candidates.pop(tuple(point), []):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.optimizer.tell(candidate, math.inf if value is None else float(value))


class CoordinateSearch(Strategy):
    """Plain cyclic coordinate search in synchronous rounds.

    Each round measures the whole lines through the base along the next axes, as many axes as
    fit in ``cap`` points (at least one); the base moves to the best point found if it is
    strictly better. Done after a full sweep of the axes without a move.
    """

    def __init__(self, shape: Sequence[int], *, cap: int = 26) -> None:
        super().__init__(shape)
        self.cap = int(cap)
        self.base: Index = tuple(n // 2 for n in self.shape)
        self._axis = 0
        self._unmoved = 0              # axes searched since the base last moved
        self._axes: list[int] = []
        self._finished = False

    @property
    def done(self) -> bool:
        return self._finished and not self._outstanding

    def _propose(self) -> list[Index]:
        while not self._outstanding and not self._finished:
            points = self._round()
            if points:
                return points
            self._conclude()           # every line of the round was measured already
        return []

    def _round(self) -> list[Index]:
        d = len(self.shape)
        points = [] if self.base in self._results else [self.base]
        self._axes = []
        while len(self._axes) < d:
            axis = (self._axis + len(self._axes)) % d
            line = [p for i in range(self.shape[axis])
                    if (p := self.base[:axis] + (i,) + self.base[axis + 1:]) not in self._results
                    and p not in points]
            if self._axes and len(points) + len(line) > self.cap:
                break
            points += line
            self._axes.append(axis)
        return points

    def _observe(self, results: Mapping[Index, Result]) -> None:
        if not self._outstanding:
            self._conclude()

    def _conclude(self) -> None:
        measured = [(v, p) for p, v in self._results.items() if v is not None]
        best = min(measured, default=None)
        base_value = self._results.get(self.base)
        if best is not None and best[1] != self.base and (
                base_value is None or best[0] < base_value):
            self.base, self._unmoved = best[1], 0
        else:
            self._unmoved += len(self._axes)
        self._axis = (self._axis + len(self._axes)) % len(self.shape)
        if self._unmoved >= len(self.shape):
            self._finished = True
