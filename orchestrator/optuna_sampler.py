"""DSICE inside Optuna code: ``DSICESampler`` proposes the points of a DSICE search over a fixed
discrete space, for people who keep their own ``study.optimize`` loop.

    sampler = DSICESampler({"x": [-2, -1, 0, 1, 2], "lr": [1e-4, 1e-3, 1e-2]})
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=200)   # stops by itself when DSICE has finished

The objective asks for each parameter with ``trial.suggest_categorical(name, choices)`` and the
same choices. DSICE's rounds are handed out one trial at a time; each finished trial's value
(``None`` for a failed or pruned trial) is told to the engine, and once a round is complete the
engine proposes the next. While a round is still out (parallel trials) or after the search has
finished, trials get independent samples from a seeded ``RandomSampler`` and are not told to
DSICE. The engine lives in the sampler object: one process (threads are fine), not resumable
from the storage. optuna is optional (``.[optuna]``).
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from search import DSICE

INDEX_ATTR = "dsice_index"          # system attribute: the grid index DSICE asked for


class DSICESampler(BaseSampler):
    def __init__(self, search_space: Mapping[str, Sequence[Any]], *, seed: int | None = None,
                 stop_when_done: bool = True, **dsice_options: Any) -> None:
        if not search_space or any(len(v) == 0 for v in search_space.values()):
            raise ValueError("search_space must name at least one parameter, each with choices")
        self._space = {name: CategoricalDistribution(list(choices))
                       for name, choices in search_space.items()}
        self._options = dsice_options
        self._stop_when_done = stop_when_done
        self._fallback = RandomSampler(seed=seed)
        self._engine: DSICE | None = None
        self._queue: deque[tuple[int, ...]] = deque()
        self._asked: dict[int, tuple[int, ...]] = {}      # trial number -> grid index
        self._lock = threading.Lock()

    # -- the sampler interface ------------------------------------------------------------------
    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return dict(self._space)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        with self._lock:
            index = self._next(study)
            if index is None:
                return {}                   # waiting for a round, or done: independent samples
            self._asked[trial.number] = index
        study._storage.set_trial_system_attr(trial._trial_id, INDEX_ATTR, list(index))
        return {name: dist.choices[i] for (name, dist), i in zip(self._space.items(), index)}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        with self._lock:
            index = self._asked.pop(trial.number, None)
            if index is None or self._engine is None:
                return
            value = values[0] if state == TrialState.COMPLETE and values else None
            self._engine.tell({index: value})
            done = self._engine.done and not self._queue and not self._asked
        if done and self._stop_when_done:
            study.stop()

    def reseed_rng(self) -> None:
        self._fallback.reseed_rng()

    # -- DSICE ----------------------------------------------------------------------------------
    @property
    def engine(self) -> DSICE | None:
        """The DSICE engine (its ``stages``, ``best``), once the first trial was sampled."""
        return self._engine

    def _next(self, study: optuna.Study) -> tuple[int, ...] | None:
        if self._engine is None:
            if len(study.directions) != 1:
                raise ValueError("DSICESampler optimises one objective")
            self._engine = DSICE(tuple(len(d.choices) for d in self._space.values()),
                                 minimize=study.direction == optuna.study.StudyDirection.MINIMIZE,
                                 **self._options)
        if not self._queue:
            self._queue.extend(self._engine.ask())
        return self._queue.popleft() if self._queue else None
