"""An experiment as an Optuna study (``orchestrator export --format optuna --storage URL``), so
that optuna-dashboard and ``optuna.visualization`` work on it.

Every evaluated point becomes one finished trial, in the order the outcomes were recorded:
COMPLETE with its value, or FAIL for a point whose failure budget was spent. Each parameter is
a ``CategoricalDistribution`` of its candidate list (the search is over a grid, and the order
of the values is the grid's). User attributes carry what Optuna has no field for: the DSICE
stage and level that measured the point, the scheduler's job id, the history number and the
grid index. Points still in flight are not exported: a study is a snapshot of what is known.
optuna is optional (``.[optuna]``) and imported only here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from . import queries
from .errors import OrchestratorError, UsageError
from .search_view import search_data


class OptunaUnavailable(OrchestratorError):
    """The Optuna export needs the optuna package."""


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise OptunaUnavailable("export --format optuna needs optuna: pip install "
                                "'dsice-orchestrator[optuna]' (or: pip install optuna)") from None
    return optuna


def _local_naive(stamp: str | None) -> datetime | None:
    """Optuna keeps trial times as naive local datetimes (``datetime.now()``)."""
    if stamp is None:
        return None
    return datetime.fromisoformat(stamp).astimezone().replace(tzinfo=None)


def _user_attrs(e: dict[str, Any]) -> dict[str, Any]:
    attrs = {"stage": e["stage"], "level": e["level"], "job_id": e["job_id"],
             "history_number": e["n"], "index": e["index"], "origin": e["origin"]}
    if e["failure"]:
        attrs["failure"] = e["failure"]
    return attrs


def trials(search: dict[str, Any]) -> list[Any]:
    """The experiment's evaluations as Optuna ``FrozenTrial`` objects."""
    _optuna()
    from optuna.distributions import BaseDistribution, CategoricalDistribution
    from optuna.trial import FrozenTrial, TrialState
    distributions: dict[str, BaseDistribution] = {name: CategoricalDistribution(search["candidates"][name])
                     for name in search["parameters"]}
    out = []
    for number, e in enumerate(search["evaluations"]):
        completed = _local_naive(e["recorded_at"])
        out.append(FrozenTrial(
            number=number, trial_id=number,
            state=TrialState.COMPLETE if e["value"] is not None else TrialState.FAIL,
            value=e["value"], datetime_start=_local_naive(e["started_at"]) or completed,
            datetime_complete=completed,
            params={name: e["params"][name] for name in search["parameters"]},
            distributions=distributions, user_attrs=_user_attrs(e), system_attrs={},
            intermediate_values={}))
    return out


def write_study(search: dict[str, Any], storage: str, study_name: str | None = None) -> Any:
    """Create the study in ``storage`` (an Optuna storage URL) and add every trial; a study of
    that name must not exist yet (nothing is merged into an existing one)."""
    optuna = _optuna()
    name = study_name or search["experiment"]
    direction = "minimize" if search["minimize"] else "maximize"
    built = trials(search)           # checks every value before anything is written
    quiet = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)    # our one line says what was done
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction)
    except optuna.exceptions.DuplicatedStudyError:
        raise UsageError(f"study {name!r} already exists in {storage}: choose another "
                         "--study-name or delete it (optuna delete-study)") from None
    except (ValueError, ImportError, SQLAlchemyError) as exc:
        raise UsageError(f"--storage {storage}: {str(exc).splitlines()[0]}") from None
    finally:
        optuna.logging.set_verbosity(quiet)
    study.set_user_attr("orchestrator_experiment", search["experiment"])
    study.set_user_attr("objective", search["objective"])
    study.set_user_attr("strategy", search["strategy"])
    study.set_user_attr("state_when_exported", search["state"])
    study.add_trials(built)
    return study


def export(target: str, storage: str, study_name: str | None = None) -> tuple[str, int]:
    """Read the experiment (one short read) and write it as a study: (study name, trials)."""
    _optuna()                        # fail before reading when optuna is missing
    search = queries.query(target, search_data)
    study = write_study(search, storage, study_name)
    return study.study_name, len(search["evaluations"])
