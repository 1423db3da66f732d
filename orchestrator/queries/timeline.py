"""What the progress, timeline and utilisation plots need (the ``plot`` command and the
dashboard's every refresh), as plain values: read as plain rows of the few columns drawn, so a
refresh at 30,000 attempts stays a short read."""
from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Attempt, Evaluation, Experiment, Point, Stage
from .basics import cap_of, minimizes, now


def plot_data(s: Session, exp: Experiment) -> dict[str, Any]:
    """Values in the order they were recorded, stage ends, and every attempt's times (seconds
    since the start)."""
    t0 = exp.started_at or exp.created_at
    current = exp.finished_at or now()

    def rel(dt: datetime | None) -> float | None:
        return None if dt is None else (dt - t0).total_seconds()

    recorded = s.execute(select(Evaluation.value, Evaluation.recorded_at)
                         .join(Point, Evaluation.point_id == Point.id)
                         .where(Point.experiment_id == exp.id).order_by(Evaluation.id)).all()
    stage_ends = s.execute(select(Stage.number, Stage.recorded_at).where(
        Stage.experiment_id == exp.id).order_by(Stage.number)).all()
    times = sorted(at for _, at in recorded)
    boundaries = [(number, bisect_right(times, at)) for number, at in stage_ends]
    attempts = s.execute(select(Attempt.name, Attempt.state, Attempt.failure_kind,
                                Attempt.submitted_at, Attempt.started_at, Attempt.ended_at)
                         .where(Attempt.experiment_id == exp.id).order_by(Attempt.id))
    return {
        "experiment": exp.name, "objective": exp.definition["objective"]["key"],
        "minimize": minimizes(exp), "cap": cap_of(exp), "now_s": rel(current),
        "values": [v for v, _ in recorded],
        "stage_boundaries": boundaries,
        "attempts": [{"label": a.name, "state": a.state, "failure": a.failure_kind is not None,
                      "submitted": rel(a.submitted_at), "started": rel(a.started_at),
                      "ended": rel(a.ended_at)} for a in attempts],
    }
