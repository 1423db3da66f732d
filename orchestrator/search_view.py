"""What the search-space views need (slice, DSICE path, parallel coordinates; the dashboard;
the Optuna export and ``orchestrator.read``): every evaluation with its parameters and the
stages with their points, read in one short read-only query and returned as plain data."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Attempt, Evaluation, Experiment, Point, Stage
from .queries import iso, minimizes, params_of


def _stage_of_points(stages: list[Stage]) -> dict[str, tuple[int, int | None]]:
    """Point key -> (stage number, level) of the first stage that measured it."""
    out: dict[str, tuple[int, int | None]] = {}
    for st in stages:
        for index in st.points:
            out.setdefault(",".join(map(str, index)), (st.number, st.level))
    return out


def _stage_records(exp: Experiment, stage_rows: list[Stage]) -> list[dict[str, Any]]:
    return [{"number": st.number, "level": st.level, "base": st.base,
             "base_params": params_of(exp, st.base), "points": st.points, "best": st.best,
             "best_value": st.best_value, "moved": st.moved, "recorded_at": iso(st.recorded_at)}
            for st in stage_rows]


def _stage_rows(s: Session, exp: Experiment) -> list[Stage]:
    return list(s.execute(select(Stage).where(Stage.experiment_id == exp.id)
                          .order_by(Stage.number)).scalars())


def _space(exp: Experiment) -> dict[str, Any]:
    definition = exp.definition
    return {"experiment": exp.name, "state": exp.state, "strategy": definition.get("strategy"),
            "objective": definition["objective"]["key"], "minimize": minimizes(exp),
            "parameters": list(definition["parameter_order"]),
            "candidates": {n: list(definition["parameters"][n])
                           for n in definition["parameter_order"]}}


def stage_path(s: Session, exp: Experiment) -> dict[str, Any]:
    """The space and the finished stages only (what the DSICE path needs): a read that stays
    short however many evaluations there are."""
    return {**_space(exp), "stages": _stage_records(exp, _stage_rows(s, exp))}


def search_data(s: Session, exp: Experiment) -> dict[str, Any]:
    """Evaluations in the order their outcomes were recorded (``order`` 1, 2, ...), each with
    its history number ``n`` (the order the search asked for it), and the finished stages."""
    rows = s.execute(select(Point, Evaluation).join(Evaluation)
                     .where(Point.experiment_id == exp.id).order_by(Point.id)).all()
    history_number = {point.id: n for n, (point, _) in enumerate(rows, 1)}
    stage_rows = _stage_rows(s, exp)
    stage_of = _stage_of_points(stage_rows)
    attempt_ids = [ev.attempt_id for _, ev in rows if ev.attempt_id is not None]
    attempts = {a.id: a for a in s.execute(select(Attempt).where(
        Attempt.experiment_id == exp.id, Attempt.id.in_(attempt_ids))).scalars()} \
        if attempt_ids else {}
    evaluations = []
    for order, (point, ev) in enumerate(sorted(rows, key=lambda r: r[1].id), 1):
        stage, level = stage_of.get(point.key, (None, None))
        attempt = attempts.get(ev.attempt_id) if ev.attempt_id is not None else None
        evaluations.append({
            "order": order, "n": history_number[point.id], "index": list(point.index),
            "params": point.params, "value": ev.value, "state": point.state,
            "failure": ev.failure, "origin": point.origin, "round": point.round,
            "stage": stage, "level": level, "metrics": ev.metrics,
            "job_id": attempt.job_id if attempt else None,
            "started_at": iso(attempt.started_at) if attempt else None,
            "recorded_at": iso(ev.recorded_at)})
    return {**_space(exp), "evaluations": evaluations,
            "stages": _stage_records(exp, stage_rows)}
