"""Meeting users' tools: ``export --format optuna`` opened with Optuna's own API (and its
visualisation), and ``orchestrator.read`` as records and as a pandas DataFrame, on a real
finished DSICE experiment with failed points."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import pytest

import orchestrator
from orchestrator import queries

from .conftest import ROOT
from .test_admin import run_main
from .test_plots_search import dsice  # noqa: F401  (the shared finished DSICE experiment)

optuna = pytest.importorskip("optuna")


def history_of(config) -> list[dict]:
    return queries.query(str(config), queries.history)


def test_export_optuna_opens_with_optunas_api(dsice, tmp_path):  # noqa: F811
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    code, out, err = run_main("export", str(dsice), "--format", "optuna", "--storage", storage)
    assert code == 0, err
    history = history_of(dsice)
    assert f"wrote {len(history)} trials to study 't'" in err and out == ""

    study = optuna.load_study(study_name="t", storage=storage)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert study.user_attrs["orchestrator_experiment"] == "t"
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == len(history)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(complete) == sum(h["value"] is not None for h in history)
    assert failed and all(t.params["x"] == 5 and t.value is None for t in failed)
    assert all("exit code 3" in t.user_attrs["failure"] for t in failed)
    for t in trials:
        assert t.distributions["x"] == optuna.distributions.CategoricalDistribution(
            [0, 1, 2, 3, 4, 5, 6])
        assert t.distributions["y"].choices == (0.001, 0.01, 0.1, 1.0)
        assert {"stage", "level", "job_id", "history_number", "index"} <= set(t.user_attrs)
        assert t.datetime_complete is not None and t.datetime_start <= t.datetime_complete
    by_number = {h["n"]: h for h in history}
    for t in trials:
        h = by_number[t.user_attrs["history_number"]]
        assert t.params == h["params"] and t.value == h["value"]
    assert study.best_value == 0.0 and study.best_params == {"x": 2, "y": 0.01}
    stages = queries.query(str(dsice), queries.stages)
    first_stage = [t for t in trials if t.user_attrs["stage"] == 1]
    assert len(first_stage) == stages[0]["points"] and all(
        t.user_attrs["level"] == 1 for t in first_stage)
    assert all(t.user_attrs["job_id"] for t in complete)
    # What optuna-dashboard and optuna.visualization build on: it draws from the study.
    figure = optuna.visualization.plot_slice(study)
    assert len(figure.data[0]["x"]) == len(complete)

    code, _, err = run_main("export", str(dsice), "--format", "optuna", "--storage", storage)
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    code, _, err = run_main("export", str(dsice), "--format", "optuna", "--storage", storage,
                            "--study-name", "copy")
    assert code == 0, err
    assert len(optuna.load_study(study_name="copy", storage=storage).trials) == len(history)


def test_export_optuna_usage_errors(dsice, tmp_path, cli):  # noqa: F811
    code, _, err = run_main("export", str(dsice), "--format", "optuna")
    assert code == 2 and "needs --storage" in err
    blocker = tmp_path / "no-optuna" / "optuna"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('optuna is not installed')\n")
    proc = cli("export", str(dsice), "--format", "optuna", "--storage",
               f"sqlite:///{tmp_path / 'o.db'}",
               env={"PYTHONPATH": f"{blocker.parent}{os.pathsep}{ROOT}"})
    assert proc.returncode == 1 and "needs optuna" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "o.db").exists()


def test_read_returns_records_in_recording_order(dsice):  # noqa: F811
    history = orchestrator.read(dsice)
    rows = history_of(dsice)
    assert len(history) == len(rows) and history.parameters == ("x", "y")
    assert history.experiment == "t" and history.state == "finished"
    assert history.direction == "minimize" and history.objective == "loss"
    assert [r["number"] for r in history] == list(range(len(rows)))
    assert sorted(r["n"] for r in history) == [h["n"] for h in rows]
    times = [r["recorded_at"] for r in history]
    assert times == sorted(times) and all(t.tzinfo == timezone.utc for t in times)
    assert isinstance(times[0], datetime)
    best = history.best()
    assert best is not None and best["params"] == {"x": 2, "y": 0.01} and best["value"] == 0.0
    failed = [r for r in history if r["value"] is None]
    assert failed and all(r["state"] == "failed" and r["failure"] for r in failed)
    assert all(r["metrics"]["loss"] == r["value"] for r in history if r["value"] is not None)
    # The state database file works as well as the config; the records are plain data.
    same = orchestrator.read(str(dsice.parent / "work" / "state.db"))
    assert same.records == history.records
    json.dumps(history.records, default=str)


def test_read_as_a_dataframe(dsice):  # noqa: F811
    pandas = pytest.importorskip("pandas")
    history = orchestrator.read(dsice)
    frame = history.to_dataframe()
    assert len(frame) == len(history)
    assert list(frame.columns[:6]) == ["number", "n", "value", "state", "params_x", "params_y"]
    assert "metrics_loss" in frame.columns
    assert frame["value"].isna().sum() == sum(r["value"] is None for r in history)
    assert frame.loc[frame["value"].idxmin(), "params_x"] == 2
    assert str(frame["recorded_at"].dtype).startswith("datetime64")
    assert frame.groupby("stage")["value"].min().min() == 0.0
    del pandas


def test_read_without_pandas_keeps_records(dsice, tmp_path, cli):  # noqa: F811
    blocker = tmp_path / "no-pandas" / "pandas"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('pandas is not installed')\n")
    code = ("import orchestrator, sys\n"
            f"h = orchestrator.read({str(dsice)!r})\n"
            "print(len(h.records))\n"
            "try:\n    h.to_dataframe()\nexcept Exception as exc:\n    print(exc)\n")
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=60,
                          env={**os.environ,
                               "PYTHONPATH": f"{blocker.parent}{os.pathsep}{ROOT}"})
    count, message = proc.stdout.splitlines()
    assert int(count) == len(history_of(dsice)) and "needs pandas" in message


def test_read_without_an_experiment(tmp_path, write_config):
    from orchestrator.errors import NoExperiment
    with pytest.raises(NoExperiment):
        orchestrator.read(write_config())
