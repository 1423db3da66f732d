"""What was measured: the history, the ranking and the best point, stages, the export, and the
master's summary. Read as plain rows (``tallies.OUTCOME_COLUMNS``), never as ORM objects with
their attempts: at 10,000 points and 30,000 attempts that is what keeps these reads short (a
read holds SQLite's shared lock until it ends, and the master waits for it to commit)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from .. import tallies
from ..models import Attempt, Evaluation, Experiment, Point, Stage, parse_point_key, point_key
from .basics import iso, minimizes, now, params_of

Outcome = Row[Any]      # one row of tallies.OUTCOME_COLUMNS: a point and its evaluation

# The columns of an attempt that the export lists (``_attempt_record``).
ATTEMPT_COLUMNS = (Attempt.number, Attempt.job_id, Attempt.name, Attempt.state,
                   Attempt.failure_kind, Attempt.reason, Attempt.exit_code, Attempt.node,
                   Attempt.submitted_at, Attempt.started_at, Attempt.ended_at, Attempt.run_dir)


def outcomes(s: Session, exp: Experiment) -> list[Outcome]:
    """Outcomes in the order the search asked for the points (deterministic, unlike the order
    in which jobs happened to finish)."""
    return list(s.execute(select(*tallies.OUTCOME_COLUMNS)
                          .join(Evaluation, Evaluation.point_id == Point.id)
                          .where(Point.experiment_id == exp.id).order_by(Point.id)))


def attempts_by_point(s: Session, exp: Experiment, *columns: Any) -> dict[int, list[Row[Any]]]:
    """The given columns of every trial attempt, grouped by point, each point's in order."""
    out: dict[int, list[Row[Any]]] = {}
    for row in s.execute(select(Attempt.point_id, *columns).where(
            Attempt.experiment_id == exp.id, Attempt.point_id.is_not(None))
            .order_by(Attempt.point_id, Attempt.number, Attempt.id)):
        out.setdefault(row.point_id, []).append(row)
    return out


def ranking(exp: Experiment, rows: Sequence[Outcome]) -> list[dict[str, Any]]:
    """Successful evaluations, best first; ``evaluation`` is the row number in ``history``."""
    return rank(exp, [(n, row) for n, row in enumerate(rows, 1) if row.value is not None])


def rank(exp: Experiment, numbered: Sequence[tuple[int, Outcome]]) -> list[dict[str, Any]]:
    """Evaluations with their row numbers, best first.

    One tie rule everywhere: among equal values, the point the search itself holds as best
    (``Strategy.best``: the first told, which in synchronous rounds is round order and within a
    round the order it asked in) comes first, as stored in the progress snapshot; the others
    follow in round order (points no round asked for last)."""
    held = (exp.progress or {}).get("best")
    held_key = None if held is None else point_key(held)
    sign = 1.0 if minimizes(exp) else -1.0

    def order(t: tuple[int, Outcome]) -> tuple[Any, ...]:
        n, row = t
        assert row.value is not None
        return (sign * row.value, row.key != held_key, row.round is None, row.round or 0, n)
    ordered = sorted(numbered, key=order)
    return [{"params": row.params, "index": list(parse_point_key(row.key)), "value": row.value,
             "found_at": iso(row.recorded_at), "evaluation": n} for n, row in ordered]


def summary(s: Session, exp: Experiment, at: datetime) -> dict[str, Any]:
    """The result so far, as the master's ``finished ...`` line and its final event give it:
    counted in the database (``tallies``), whatever the number of points."""
    measured, failed = tallies.evaluation_counts(s, exp.id)
    ranked = rank(exp, tallies.best_candidates(s, exp.id, minimizes(exp)))
    attempts = s.execute(select(func.count()).select_from(Attempt).where(
        Attempt.experiment_id == exp.id)).scalar_one()
    started = exp.started_at or exp.created_at
    ended = exp.finished_at or at
    return {
        "experiment": exp.name,
        "best": {"params": ranked[0]["params"], "value": ranked[0]["value"]} if ranked else None,
        "evaluations": measured,
        "failed_points": failed,
        "attempts": attempts,
        "wall_seconds": round((ended - started).total_seconds(), 1),
    }


def history(s: Session, exp: Experiment) -> list[dict[str, Any]]:
    attempts = attempts_by_point(s, exp, Attempt.failure_kind, Attempt.reason, Attempt.run_dir)
    out = []
    for n, row in enumerate(outcomes(s, exp), 1):
        tries = attempts.get(row.id, [])
        out.append({
            "n": n, "params": row.params, "index": list(parse_point_key(row.key)),
            "value": row.value, "state": row.state, "origin": row.origin, "round": row.round,
            "attempts": len(tries),
            "failures": [a.reason for a in tries if a.failure_kind],
            "run_dir": tries[-1].run_dir if tries else None,
            "recorded_at": iso(row.recorded_at),
        })
    return out


def _stage_durations(exp: Experiment, rows: Sequence[Stage]) -> list[float | None]:
    """A stage lasts from the end of the one before (or the experiment's start) to its own end."""
    out: list[float | None] = []
    previous = exp.started_at
    for st in rows:
        out.append(None if previous is None
                   else round((st.recorded_at - previous).total_seconds(), 1))
        previous = st.recorded_at
    return out


def stages(s: Session, exp: Experiment) -> list[dict[str, Any]]:
    rows = s.execute(select(Stage).where(Stage.experiment_id == exp.id)
                     .order_by(Stage.number)).scalars().all()
    values = dict(s.execute(select(Point.key, Evaluation.value)
                            .join(Evaluation, Evaluation.point_id == Point.id)
                            .where(Point.experiment_id == exp.id)).all())
    out = []
    for st, duration in zip(rows, _stage_durations(exp, rows)):
        out.append({
            "number": st.number, "level": st.level, "base": st.base,
            "base_params": params_of(exp, st.base),
            "base_value": None if st.base is None else values.get(point_key(st.base)),
            "points": len(st.points), "best": st.best, "best_params": params_of(exp, st.best),
            "best_value": st.best_value, "moved": st.moved, "duration_s": duration,
            "recorded_at": iso(st.recorded_at)})
    return out


def best(s: Session, exp: Experiment, top: int = 1) -> dict[str, Any]:
    """The best point with its measurement details, and the ``top`` best evaluations."""
    rows = outcomes(s, exp)
    ranked = ranking(exp, rows)
    detail = None
    if ranked:
        row = rows[ranked[0]["evaluation"] - 1]
        attempt = s.get(Attempt, row.attempt_id) if row.attempt_id is not None else None
        tries = s.execute(select(func.count()).select_from(Attempt).where(
            Attempt.point_id == row.id)).scalar_one()
        detail = {**ranked[0], "metrics": row.metrics, "attempts": tries,
                  "job_id": attempt.job_id if attempt else None,
                  "run_dir": attempt.run_dir if attempt else None}
    return {"experiment": exp.name, "direction": exp.definition["objective"]["direction"],
            "objective": exp.definition["objective"]["key"], "state": exp.state,
            "evaluations": len(ranked), "best": detail, "top": ranked[:max(1, top)]}


def _attempt_record(a: Row[Any]) -> dict[str, Any]:
    return {"number": a.number, "job_id": a.job_id, "name": a.name, "state": a.state,
            "failure_kind": a.failure_kind, "reason": a.reason, "exit_code": a.exit_code,
            "node": a.node, "submitted_at": iso(a.submitted_at), "started_at": iso(a.started_at),
            "ended_at": iso(a.ended_at),
            "run_s": None if a.started_at is None or a.ended_at is None
            else round((a.ended_at - a.started_at).total_seconds(), 3),
            "run_dir": a.run_dir}


def export(s: Session, exp: Experiment) -> dict[str, Any]:
    """Every evaluation (successful or failed point) with its parameters, value, metrics and
    attempts; rows numbered as in ``history``."""
    attempts = attempts_by_point(s, exp, *ATTEMPT_COLUMNS)
    out = []
    for n, row in enumerate(outcomes(s, exp), 1):
        out.append({
            "n": n, "index": list(parse_point_key(row.key)), "params": row.params,
            "value": row.value, "state": row.state, "failure": row.failure,
            "metrics": row.metrics, "origin": row.origin, "round": row.round,
            "program_failures": row.program_failures, "infra_failures": row.infra_failures,
            "budget_resets": row.budget_resets, "recorded_at": iso(row.recorded_at),
            "attempts": [_attempt_record(a) for a in attempts.get(row.id, [])]})
    return {"experiment": exp.name, "objective": exp.definition["objective"],
            "parameters": exp.definition["parameter_order"], "state": exp.state,
            "exported_at": iso(now()), "evaluations": out}
