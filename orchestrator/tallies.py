"""The figures ``status`` shows, computed in the database: counts, sums and the best row, never
every attempt or evaluation loaded as objects. At 10,000 points and 30,000 attempts that is
the difference between a few tens of milliseconds and seconds (benchmarks/scale.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, case, func, select
from sqlalchemy.orm import Session

from .models import Attempt, Evaluation, Point

# A point with its outcome as one plain row (``row.key``, ``row.value``, ...): what the read
# views list, without building ORM objects for thousands of points.
OUTCOME_COLUMNS = (Point.id, Point.key, Point.params, Point.state, Point.origin, Point.round,
                   Point.program_failures, Point.infra_failures, Point.budget_resets,
                   Evaluation.value, Evaluation.metrics, Evaluation.failure,
                   Evaluation.attempt_id, Evaluation.recorded_at)


def attempts_by_state(s: Session, experiment_id: int) -> dict[str, int]:
    return {state: n for state, n in s.execute(
        select(Attempt.state, func.count()).where(Attempt.experiment_id == experiment_id)
        .group_by(Attempt.state))}


def points_by_state(s: Session, experiment_id: int) -> dict[str, int]:
    return {state: n for state, n in s.execute(
        select(Point.state, func.count()).where(Point.experiment_id == experiment_id)
        .group_by(Point.state))}


def busy_seconds(s: Session, experiment_id: int, until: datetime) -> float:
    """Job-seconds spent running (queue time excluded); running jobs count up to ``until``.
    Summed by the database: a sum over every attempt that ran, not a row per attempt."""
    ended = func.coalesce(Attempt.ended_at, bindparam("until", until, type_=Attempt.ended_at.type))
    if s.get_bind().dialect.name == "sqlite":
        seconds = (func.julianday(ended) - func.julianday(Attempt.started_at)) * 86400.0
    else:
        seconds = func.extract("epoch", ended - Attempt.started_at)
    total = s.execute(select(func.sum(case((seconds > 0, seconds), else_=0.0))).where(
        Attempt.experiment_id == experiment_id, Attempt.started_at.is_not(None))).scalar()
    return float(total or 0.0)


def evaluation_counts(s: Session, experiment_id: int) -> tuple[int, int]:
    """(points measured, points failed)."""
    measured, total = s.execute(
        select(func.count(Evaluation.value), func.count()).select_from(Evaluation)
        .join(Point, Evaluation.point_id == Point.id)
        .where(Point.experiment_id == experiment_id)).one()
    return measured, total - measured


def best_candidates(s: Session, experiment_id: int, minimize: bool) -> list[tuple[int, Row[Any]]]:
    """The evaluations with the best value (``OUTCOME_COLUMNS`` rows), each with its row number
    in ``history`` (the order of the points), for the caller's tie rule."""
    extreme = (func.min if minimize else func.max)(Evaluation.value)
    in_experiment = Point.experiment_id == experiment_id
    best_value = s.execute(select(extreme).join(Point, Evaluation.point_id == Point.id)
                           .where(in_experiment)).scalar()
    if best_value is None:
        return []
    numbered = (select(*OUTCOME_COLUMNS, func.row_number().over(order_by=Point.id).label("n"))
                .join(Evaluation, Evaluation.point_id == Point.id).where(in_experiment)
                .subquery())
    return [(row.n, row) for row in s.execute(
        select(numbered).where(numbered.c.value == best_value).order_by(numbered.c.n))]


def value_at(s: Session, experiment_id: int, key: str | None) -> float | None:
    """The measured value of the point with ``key`` (None if not measured)."""
    if key is None:
        return None
    return s.execute(select(Evaluation.value).join(Point, Evaluation.point_id == Point.id).where(
        Point.experiment_id == experiment_id, Point.key == key)).scalar()
