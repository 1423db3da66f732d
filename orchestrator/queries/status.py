"""What an experiment is doing now: ``status`` (counted in the database by ``tallies`` and
read from the master's progress snapshot, so it answers in tens of milliseconds however many
attempts there are), the queue of jobs in flight, recent events."""
from __future__ import annotations

import math
from itertools import product
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from .. import tallies
from ..models import Attempt, Event, Experiment, Stage, point_key
from ..states import AttemptState, PointState
from .basics import ENDED, cap_of, iso, master_info, minimizes, now, params_of
from .results import rank

# Counting the valid points of a constrained grid means checking each one; past this size the
# remaining-work estimate is left out rather than making `status` slow.
MAX_COUNTED_GRID = 200_000


def progress(s: Session, exp: Experiment) -> dict[str, Any] | None:
    """The master's progress snapshot (``search_driver.Snapshot`` as JSON), None before the
    search began; with the scheduler's words while submissions wait."""
    if exp.progress is None:
        return None
    return {**exp.progress, "scheduler_note": exp.scheduler_note}


def _grid_size(exp: Experiment) -> int | None:
    """Points the whole search space offers (valid ones under a constraint), if countable."""
    definition = exp.definition
    order = definition["parameter_order"]
    sizes = [len(definition["parameters"][n]) for n in order]
    total = math.prod(sizes)
    if not definition.get("constraint"):
        return total
    if total > MAX_COUNTED_GRID:
        return None
    from ..constraint import compile_constraint
    check = compile_constraint(definition["constraint"], tuple(order))
    return sum(check(dict(zip(order, combo)))
               for combo in product(*(definition["parameters"][n] for n in order)))


def _estimate(exp: Experiment, done_points: int, elapsed_s: float,
              finished: bool) -> dict[str, Any]:
    """Remaining work, where the space alone makes it knowable (see docs/admin.md). A staged
    search decides its stages as it goes: no estimate is made for it here."""
    if finished:
        return {"remaining_points": 0, "remaining_stages_min": 0, "remaining_s": 0.0,
                "basis": exp.state}
    strategy = exp.definition.get("strategy")
    unknown = {"remaining_points": None, "remaining_stages_min": None, "remaining_s": None,
               "basis": "no estimate"}
    if strategy not in ("grid", "random"):
        return unknown
    total = _grid_size(exp)
    budget = exp.definition.get("search_options", {}).get("max_evaluations")
    if strategy == "random" and budget is not None:
        total = int(budget) if total is None else min(total, int(budget))
    if total is None:
        return unknown
    left = max(0, int(total) - done_points)
    rate = done_points / elapsed_s if elapsed_s > 0 else 0.0
    return {"remaining_points": left, "remaining_stages_min": None,
            "remaining_s": round(left / rate, 1) if rate > 0 else None,
            "basis": "points left, at the throughput so far"}


def status(s: Session, exp: Experiment) -> dict[str, Any]:
    """Counted in the database (``tallies``): no full load of attempts or evaluations."""
    measured, failed = tallies.evaluation_counts(s, exp.id)
    counts = tallies.attempts_by_state(s, exp.id)
    point_counts = tallies.points_by_state(s, exp.id)
    stages_done = s.execute(select(func.max(Stage.number)).where(
        Stage.experiment_id == exp.id)).scalar() or 0
    finished = exp.state in ENDED
    until = exp.finished_at or now()
    elapsed = max(0.0, (until - exp.started_at).total_seconds()) if exp.started_at else 0.0
    busy = tallies.busy_seconds(s, exp.id, until)
    cap = cap_of(exp)
    progress = exp.progress or {}          # what the master decided (search_driver.Snapshot)
    base = progress.get("base")
    base_key = None if base is None else point_key(base)
    done_points = measured + failed
    best = rank(exp, tallies.best_candidates(s, exp.id, minimizes(exp)))
    return {
        "experiment": exp.name,
        "state": exp.state,
        "message": exp.message,
        "master": master_info(s, exp),
        "strategy": exp.definition.get("strategy"),
        "direction": exp.definition["objective"]["direction"],
        "best": best[0] if best else None,
        "evaluations": measured,
        "failed_points": failed,
        "running": counts.get(AttemptState.RUNNING, 0),
        "pending": sum(counts.get(k, 0) for k in AttemptState.ACTIVE - {AttemptState.RUNNING})
                   + point_counts.get(PointState.PENDING, 0),
        "attempts": sum(counts.values()),
        "attempts_by_state": counts,
        "points_by_state": point_counts,
        "stages_done": stages_done,
        "stage": progress.get("stage"),
        "level": progress.get("level"),
        "rounds": progress.get("rounds", 0),
        "progress": exp.progress,
        "scheduler_note": exp.scheduler_note,
        "base": base,
        "base_params": params_of(exp, base),
        "base_value": tallies.value_at(s, exp.id, base_key),
        "cap": cap,
        "elapsed_s": round(elapsed, 1),
        "busy_job_s": round(busy, 1),
        "utilisation": round(busy / (cap * elapsed), 3) if elapsed > 0 else None,
        "estimate": _estimate(exp, done_points, elapsed, finished),
        "created_at": iso(exp.created_at),
        "started_at": iso(exp.started_at),
        "finished_at": iso(exp.finished_at),
    }


def queue(s: Session, exp: Experiment) -> list[dict[str, Any]]:
    current = now()
    rows = s.execute(select(Attempt).where(Attempt.experiment_id == exp.id,
                                           Attempt.state.in_(AttemptState.ACTIVE))
                     .options(selectinload(Attempt.point)).order_by(Attempt.id)).scalars().all()
    return [{
        "job_id": a.job_id, "name": a.name, "kind": a.kind,
        "params": a.point.params if a.point else None, "attempt": a.number, "state": a.state,
        "submitted_at": iso(a.submitted_at), "started_at": iso(a.started_at),
        "elapsed_s": None if a.started_at is None
        else round((current - a.started_at).total_seconds()),
        "node": a.node,
    } for a in rows]


def events(s: Session, exp: Experiment, limit: int = 50) -> list[dict[str, Any]]:
    rows = s.execute(select(Event).where(Event.experiment_id == exp.id)
                     .order_by(Event.id.desc()).limit(limit)).scalars().all()
    return [{"at": iso(e.at), "kind": e.kind, "message": e.message, "data": e.data}
            for e in reversed(rows)]
