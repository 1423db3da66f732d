"""Going on after a mistake without deleting anything: reopen, start fresh, warm start.

- ``reopen``: failed points (and those fail fast cancelled) get a new budget, and an experiment
  that finished or failed fast runs again. The search is rebuilt by replay on the next
  ``start``, so every decision after a reopened point is remade with its new result.
- ``archive``: ``start --fresh`` moves the old state (database, run directories, logs) into
  ``WORK_DIR/archive/<time>/`` and the experiment starts over.
- ``known_results``: ``start --warm-start OTHER`` reads an earlier experiment's measured points
  that are points of this grid; they are stored as known results of the new experiment and
  handed to the search (DSICE ``inform``), so nothing measured is paid for twice.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import ledger, queries
from .config import Config
from .errors import MasterRunning, NoExperiment, UsageError
from .extend import same_value
from .models import Attempt, Evaluation, Event, Experiment, Point, utcnow
from .render import point as point_text
from .states import AttemptState, ExperimentState, PointState
from .store import sqlite_path

Index = tuple[int, ...]
ARCHIVE = "archive"


# ---- reopen --------------------------------------------------------------------------------------
def failed_fast(s: Session, exp: Experiment) -> bool:
    """Whether the experiment failed because its first trials failed alike (revivable)."""
    last = s.execute(select(Event).where(Event.experiment_id == exp.id,
                                         Event.kind == "experiment-failed")
                     .order_by(Event.id.desc()).limit(1)).scalars().first()
    return bool(last is not None and isinstance(last.data, dict) and last.data.get("fail_fast"))


def reopen(s: Session, exp: Experiment, keys: list[str] | None, *, who: str
           ) -> tuple[list[dict[str, Any]], bool]:
    """Give the points with these keys (None: every failed one) a new budget; return their
    params and whether the experiment runs again. The caller holds the transaction."""
    if exp.state == ExperimentState.CANCELLED or (
            exp.state == ExperimentState.FAILED and not failed_fast(s, exp)):
        raise UsageError(f"experiment {exp.name} is {exp.state}; a retry cannot revive it "
                         "(`start --fresh` archives it and starts over)")
    points = _points_to_reopen(s, exp, keys)
    for point in points:
        if point.evaluation is not None:
            ledger.reset_point(s, point)
        else:                               # cancelled by fail fast, or waiting with failures
            point.program_failures = point.infra_failures = 0
            point.state = PointState.PENDING
            point.budget_resets += 1
    ledger.rewind_journal(s, exp.id, [tuple(p.index) for p in points])
    resumed = exp.state != ExperimentState.RUNNING
    if resumed:
        ledger.set_experiment_state(s, exp.id, ExperimentState.RUNNING, at=utcnow())
        exp.message = None
    last_attempt = s.execute(select(func.max(Attempt.id)).where(
        Attempt.experiment_id == exp.id)).scalar() or 0
    shown = ", ".join(point_text(p.params) for p in points[:5])
    more = f" and {len(points) - 5} more" if len(points) > 5 else ""
    ledger.add_event(s, exp.id, "retry", f"{len(points)} points given a new budget from {who}: "
                     f"{shown}{more}",
                     {"points": [p.key for p in points], "after_attempt": last_attempt},
                     at=utcnow())
    return [p.params for p in points], resumed


def _points_to_reopen(s: Session, exp: Experiment, keys: list[str] | None) -> list[Point]:
    rows = s.execute(select(Point).where(Point.experiment_id == exp.id)
                     .order_by(Point.id)).scalars().all()
    if keys is None:
        chosen = [p for p in rows if _reopenable(p)]
        if not chosen:
            raise UsageError("no failed point to retry")
        return chosen
    by_key = {p.key: p for p in rows}
    chosen = []
    for key in keys:
        point = by_key.get(key)
        if point is None:
            raise UsageError(f"point {key!r} was never asked for by the search; nothing to retry")
        if not _reopenable(point):
            raise UsageError(f"point {point_text(point.params)} is {point.state}, not failed; "
                             "only a failed point can be retried")
        chosen.append(point)
    return chosen


def _reopenable(point: Point) -> bool:
    """Failed (budget spent), or left without a value by a fail-fast stop."""
    if point.state == PointState.FAILED:
        return point.evaluation is not None and point.evaluation.value is None
    stopped = point.state == PointState.CANCELLED and point.round is not None
    waiting = point.state == PointState.PENDING and point.program_failures > 0
    return point.evaluation is None and (stopped or waiting)


# ---- start --fresh -------------------------------------------------------------------------------
def archive(config: Config) -> Path | None:
    """Move everything in the work directory into ``archive/<time>/``; None if it was empty.
    Refused while a master runs or jobs are in flight, and for a database that is not a file."""
    work = config.work_dir
    if not work.exists() or not [p for p in work.iterdir() if p.name != ARCHIVE]:
        return None
    db = sqlite_path(config.database_url)
    if db is None:
        raise UsageError(f"--fresh archives a SQLite state; {config.database_url} is a server "
                         "database: give the new experiment another name instead")
    if db.exists():
        _refuse_if_busy(config)
    target = work / ARCHIVE / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target.mkdir(parents=True, mode=0o700)
    for entry in sorted(work.iterdir()):
        if entry.name != ARCHIVE:
            shutil.move(str(entry), str(target / entry.name))
    return target


def _refuse_if_busy(config: Config) -> None:
    def look(s: Session, exp: Experiment) -> tuple[dict[str, Any] | None, int]:
        active = s.execute(select(func.count()).select_from(Attempt).where(
            Attempt.experiment_id == exp.id,
            Attempt.state.in_(AttemptState.ACTIVE))).scalar_one()
        return queries.master_info(s, exp), active
    try:
        master, active = queries.query(str(config.path), look)
    except NoExperiment:           # a database file without an experiment: archived as it is
        return
    if master is not None and master["alive"]:
        raise MasterRunning(f"master pid {master['pid']} on {master['host']} is running: stop "
                            "it first (`orchestrator stop CONFIG --wait`)")
    if active:
        raise UsageError(f"{active} jobs of the old experiment are in flight: `orchestrator "
                         "cancel CONFIG` them first (or let them finish)")


# ---- --warm-start --------------------------------------------------------------------------------
def known_results(other: str, config: Config) -> dict[Index, float | None]:
    """The measured points of the experiment at ``other`` (a config or database) that are
    points of ``config``'s grid, as indices of this grid."""
    def read(s: Session, exp: Experiment) -> tuple[dict[str, Any], list[tuple[dict, Any]]]:
        rows = s.execute(select(Point.params, Evaluation.value).join(
            Evaluation, Evaluation.point_id == Point.id).where(
            Point.experiment_id == exp.id).order_by(Evaluation.id)).all()
        return exp.definition["objective"], [(params, value) for params, value in rows]
    objective, rows = queries.query(other, read)
    mine = {"key": config.objective_key, "direction": config.model.objective.direction}
    if objective != mine:
        raise UsageError(f"--warm-start {other}: it measured {objective['key']!r} "
                         f"({objective['direction']}), this experiment {mine['key']!r} "
                         f"({mine['direction']}): its values cannot be reused")
    known: dict[Index, float | None] = {}
    for params, value in rows:
        index = index_of(params, config)
        if index is not None:
            known[index] = value
    return known


def index_of(params: dict[str, Any], config: Config) -> Index | None:
    """This grid's index of a point given by values, or None if it is not a point of it."""
    index = []
    for name in config.parameter_names:
        if name not in params:
            return None
        hit = next((i for i, v in enumerate(config.values[name]) if same_value(v, params[name])), None)
        if hit is None:
            return None
        index.append(hit)
    return tuple(index)
