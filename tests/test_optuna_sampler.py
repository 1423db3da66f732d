"""DSICESampler tested the way Optuna tests its samplers: suggested values stay in their
distributions, the same setup gives the same trials, failed and pruned trials are survived,
parameters outside the fixed space are sampled independently; and what it proposes is exactly
what the DSICE engine proposes when driven directly."""
from __future__ import annotations

import math

import pytest

optuna = pytest.importorskip("optuna")

from orchestrator.optuna_sampler import INDEX_ATTR, DSICESampler
from search import DSICE

SPACE = {"x": [-3, -2, -1, 0, 1, 2, 3, 4], "y": [0.001, 0.01, 0.1, 1.0], "mode": ["a", "b", "c"]}
BEST = {"x": 1, "y": 0.01, "mode": "b"}


def bowl(params: dict) -> float:
    return ((params["x"] - 1) ** 2 + (math.log10(params["y"]) + 2) ** 2
            + (0 if params["mode"] == "b" else 1.5))


def objective(trial: optuna.Trial) -> float:
    return bowl({name: trial.suggest_categorical(name, choices) for name, choices in SPACE.items()})


def study_with(sampler: DSICESampler, direction: str = "minimize") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(sampler=sampler, direction=direction)


def test_finds_the_grid_optimum_and_stops_by_itself():
    study = study_with(DSICESampler(SPACE, seed=0))
    study.optimize(objective, n_trials=500)
    grid_size = 8 * 4 * 3
    assert study.best_params == BEST and study.best_value == 0.0
    assert len(study.trials) < grid_size                       # DSICE ended the study early
    for t in study.trials:
        assert all(t.params[name] in SPACE[name] for name in SPACE)
        assert t.distributions["x"] == optuna.distributions.CategoricalDistribution(SPACE["x"])
        assert INDEX_ATTR in t.system_attrs
    assert len({tuple(t.params.values()) for t in study.trials}) == len(study.trials)


def test_same_setup_same_trials():
    runs = []
    for _ in range(2):
        study = study_with(DSICESampler(SPACE, seed=1))
        study.optimize(objective, n_trials=40)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def test_proposes_exactly_what_the_engine_proposes():
    study = study_with(DSICESampler(SPACE, seed=0))
    study.optimize(objective, n_trials=500)
    engine = DSICE(tuple(len(v) for v in SPACE.values()))
    expected = []
    while not engine.done:
        batch = engine.ask()
        for index in batch:          # told one by one, as the sampler does
            params = {n: SPACE[n][i] for n, i in zip(SPACE, index)}
            expected.append(params)
            engine.tell({index: bowl(params)})
    assert [t.params for t in study.trials] == expected


def test_failed_and_pruned_trials_count_as_failed_points():
    def flaky(trial: optuna.Trial) -> float:
        params = {name: trial.suggest_categorical(name, choices) for name, choices in SPACE.items()}
        if params["x"] == 0:
            raise ValueError("the program crashed")
        if params["mode"] == "c":
            raise optuna.TrialPruned()
        return bowl(params)
    sampler = DSICESampler(SPACE, seed=0)
    study = study_with(sampler)
    study.optimize(flaky, n_trials=300, catch=(ValueError,))
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.FAIL in states and optuna.trial.TrialState.PRUNED in states
    assert study.best_params == BEST
    assert sampler.engine is not None and sampler.engine.done
    failed = [i for i, v in sampler.engine.history if v is None]
    assert len(failed) == sum(t.state != optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_maximize():
    study = study_with(DSICESampler(SPACE, seed=0), direction="maximize")
    study.optimize(lambda t: -objective(t), n_trials=500)
    assert study.best_params == BEST and study.best_value == 0.0


def test_parameters_outside_the_space_are_sampled_independently():
    def with_extra(trial: optuna.Trial) -> float:
        assert 0.0 <= trial.suggest_float("noise", 0.0, 1.0) <= 1.0
        return objective(trial)
    study = study_with(DSICESampler(SPACE, seed=3))
    study.optimize(with_extra, n_trials=10)
    assert len({t.params["noise"] for t in study.trials}) == 10


def test_after_dsice_finished_trials_get_independent_samples():
    study = study_with(DSICESampler(SPACE, seed=0, stop_when_done=False))
    study.optimize(objective, n_trials=200)
    asked = [t for t in study.trials if INDEX_ATTR in t.system_attrs]
    assert len(asked) < 200 and len(study.trials) == 200
    assert all(t.params["x"] in SPACE["x"] for t in study.trials)


def test_bad_spaces():
    with pytest.raises(ValueError, match="at least one parameter"):
        DSICESampler({})
    with pytest.raises(ValueError, match="at least one parameter"):
        DSICESampler({"x": []})
