"""Read-only views of an experiment for the admin commands. Never writes, never blocks the
master: reads go through a read-only connection, retry while SQLite is busy, and each view is
one short read whose result is plain data (formatting and plotting happen after it closes)."""
from __future__ import annotations

import math
import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from itertools import product
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from . import tallies
from .config import load_config
from .errors import NoExperiment
from .lease import heartbeat_age, process_alive
from .models import (
    Attempt,
    Evaluation,
    Event,
    Experiment,
    Lease,
    Point,
    Stage,
    point_key,
)
from .states import AttemptState, ExperimentState, PointState
from .store import find_experiment, read_session, retry_locked, sqlite_path

T = TypeVar("T")
ENDED = ExperimentState.ENDED

# Counting the valid points of a constrained grid means checking each one; past this size the
# remaining-work estimate is left out rather than making `status` slow.
MAX_COUNTED_GRID = 200_000


def database_url_of(target: str) -> str:
    """A config file, a SQLite database file, or a SQLAlchemy URL."""
    if "://" in target:
        return target
    path = Path(target)
    if path.suffix == ".toml" or path.is_dir() or not path.exists():
        return load_config(path).database_url
    return f"sqlite:///{path.resolve()}"


def query(target: str, fn: Callable[[Session, Experiment], T]) -> T:
    url = database_url_of(target)
    db = sqlite_path(url)
    if db is not None and not db.exists():
        raise NoExperiment(db.parent)

    def run() -> T:
        with read_session(url) as s:
            exp = find_experiment(s, url)
            if exp is None:
                raise NoExperiment(url)
            return fn(s, exp)
    return retry_locked(run)


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(timezone.utc)


def minimizes(exp: Experiment) -> bool:
    return bool(exp.definition["objective"]["direction"] == "minimize")


def params_of(exp: Experiment, index: Sequence[int] | None) -> dict[str, Any] | None:
    """Parameter values of an index tuple, from the search definition stored with the experiment."""
    if index is None:
        return None
    values = exp.definition["parameters"]
    return {name: values[name][i] for name, i in zip(exp.definition["parameter_order"], index)}


def cap_of(exp: Experiment) -> int:
    return int(exp.settings.get("scheduler", {}).get("cap", 1))


def evaluations(s: Session, exp: Experiment) -> list[tuple[Point, Evaluation]]:
    """Outcomes in the order the search asked for the points (deterministic, unlike the order
    in which jobs happened to finish)."""
    # Attempts are loaded with the points in one more query, not one query per point: a read
    # holds SQLite's shared lock until it ends, and the master waits for it to commit.
    return [(point, ev) for point, ev in s.execute(
        select(Point, Evaluation).join(Evaluation).where(Point.experiment_id == exp.id)
        .options(selectinload(Point.attempts)).order_by(Point.id))]


def best_of(exp: Experiment, rows: list[tuple[Point, Evaluation]]) -> dict[str, Any] | None:
    """The experiment's best point: the one ``status``, ``best`` and the master all name."""
    ranked = ranking(exp, rows)
    return ranked[0] if ranked else None


def ranking(exp: Experiment, rows: list[tuple[Point, Evaluation]]) -> list[dict[str, Any]]:
    """Successful evaluations, best first; ``evaluation`` is the row number in ``history``."""
    return rank(exp, [(n, p, ev) for n, (p, ev) in enumerate(rows, 1) if ev.value is not None])


def rank(exp: Experiment, numbered: list[tuple[int, Point, Evaluation]]) -> list[dict[str, Any]]:
    """Evaluations with their row numbers, best first.

    One tie rule everywhere: among equal values, the point the search itself holds as best
    (``Strategy.best``: the first told, which in synchronous rounds is round order and within a
    round the order it asked in) comes first, as stored in the progress snapshot; the others
    follow in round order (points no round asked for last)."""
    held = (exp.progress or {}).get("best")
    held_key = None if held is None else point_key(held)
    sign = 1.0 if minimizes(exp) else -1.0

    def order(t: tuple[int, Point, Evaluation]) -> tuple[Any, ...]:
        n, point, ev = t
        assert ev.value is not None
        return (sign * ev.value, point.key != held_key, point.round is None, point.round or 0, n)
    ordered = sorted(numbered, key=order)
    return [{"params": p.params, "index": list(p.index), "value": ev.value,
             "found_at": iso(ev.recorded_at), "evaluation": n} for n, p, ev in ordered]


def progress(s: Session, exp: Experiment) -> dict[str, Any] | None:
    """The master's progress snapshot (``search_driver.Snapshot`` as JSON), None before the
    search began; with the scheduler's words while submissions wait."""
    if exp.progress is None:
        return None
    return {**exp.progress, "scheduler_note": exp.scheduler_note}


def summary(s: Session, exp: Experiment, at: datetime) -> dict[str, Any]:
    """The result so far, as the master's ``finished ...`` line and its final event give it."""
    rows = evaluations(s, exp)
    best = best_of(exp, rows)
    attempts = s.execute(select(func.count()).select_from(Attempt).where(
        Attempt.experiment_id == exp.id)).scalar_one()
    started = exp.started_at or exp.created_at
    ended = exp.finished_at or at
    return {
        "experiment": exp.name,
        "best": None if best is None else {"params": best["params"], "value": best["value"]},
        "evaluations": sum(ev.value is not None for _, ev in rows),
        "failed_points": sum(ev.value is None for _, ev in rows),
        "attempts": attempts,
        "wall_seconds": round((ended - started).total_seconds(), 1),
    }


def master_info(s: Session, exp: Experiment) -> dict[str, Any] | None:
    """Who holds the lease and whether that master is alive: on this host by its process, on
    another host by a heartbeat younger than the lease timeout (the rule a new master uses)."""
    lease = s.get(Lease, exp.id)
    if lease is None:
        return None
    age = heartbeat_age(lease)
    timeout = float(exp.settings.get("experiment", {}).get("lease_timeout", 300.0))
    if lease.released:
        alive = False
    elif lease.host == socket.gethostname():
        alive = process_alive(lease.pid, lease.pid_started)
    else:
        alive = age <= timeout
    return {"host": lease.host, "pid": lease.pid, "alive": alive,
            "heartbeat_age_s": round(age, 1), "started_at": iso(lease.started_at),
            "stop_requested": lease.stop_requested}


# ---- status ------------------------------------------------------------------------------------

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
    from .constraint import compile_constraint
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


def _stage_durations(exp: Experiment, rows: Sequence[Stage]) -> list[float | None]:
    """A stage lasts from the end of the one before (or the experiment's start) to its own end."""
    out: list[float | None] = []
    previous = exp.started_at
    for st in rows:
        out.append(None if previous is None
                   else round((st.recorded_at - previous).total_seconds(), 1))
        previous = st.recorded_at
    return out


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


# ---- lists -------------------------------------------------------------------------------------

def queue(s: Session, exp: Experiment) -> list[dict[str, Any]]:
    current = now()
    rows = s.execute(select(Attempt).where(Attempt.experiment_id == exp.id,
                                           Attempt.state.in_(AttemptState.ACTIVE))
                     .order_by(Attempt.id)).scalars().all()
    return [{
        "job_id": a.job_id, "name": a.name, "kind": a.kind,
        "params": a.point.params if a.point else None, "attempt": a.number, "state": a.state,
        "submitted_at": iso(a.submitted_at), "started_at": iso(a.started_at),
        "elapsed_s": None if a.started_at is None
        else round((current - a.started_at).total_seconds()),
        "node": a.node,
    } for a in rows]


def history(s: Session, exp: Experiment) -> list[dict[str, Any]]:
    out = []
    for n, (point, ev) in enumerate(evaluations(s, exp), 1):
        out.append({
            "n": n, "params": point.params, "index": list(point.index), "value": ev.value,
            "state": point.state, "origin": point.origin, "round": point.round,
            "attempts": len(point.attempts),
            "failures": [a.reason for a in point.attempts if a.failure_kind],
            "run_dir": point.attempts[-1].run_dir if point.attempts else None,
            "recorded_at": iso(ev.recorded_at),
        })
    return out


def stages(s: Session, exp: Experiment) -> list[dict[str, Any]]:
    rows = s.execute(select(Stage).where(Stage.experiment_id == exp.id)
                     .order_by(Stage.number)).scalars().all()
    values = {p.key: ev.value for p, ev in evaluations(s, exp)}
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
    rows = evaluations(s, exp)
    ranked = ranking(exp, rows)
    detail = None
    if ranked:
        point, ev = rows[ranked[0]["evaluation"] - 1]
        attempt = s.get(Attempt, ev.attempt_id) if ev.attempt_id is not None else None
        detail = {**ranked[0], "metrics": ev.metrics, "attempts": len(point.attempts),
                  "job_id": attempt.job_id if attempt else None,
                  "run_dir": attempt.run_dir if attempt else None}
    return {"experiment": exp.name, "direction": exp.definition["objective"]["direction"],
            "objective": exp.definition["objective"]["key"], "state": exp.state,
            "evaluations": len(ranked), "best": detail, "top": ranked[:max(1, top)]}


def events(s: Session, exp: Experiment, limit: int = 50) -> list[dict[str, Any]]:
    rows = s.execute(select(Event).where(Event.experiment_id == exp.id)
                     .order_by(Event.id.desc()).limit(limit)).scalars().all()
    return [{"at": iso(e.at), "kind": e.kind, "message": e.message, "data": e.data}
            for e in reversed(rows)]


# ---- export and plots --------------------------------------------------------------------------

def _attempt_record(a: Attempt) -> dict[str, Any]:
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
    out = []
    for n, (point, ev) in enumerate(evaluations(s, exp), 1):
        out.append({
            "n": n, "index": list(point.index), "params": point.params, "value": ev.value,
            "state": point.state, "failure": ev.failure, "metrics": ev.metrics,
            "origin": point.origin, "round": point.round,
            "program_failures": point.program_failures, "infra_failures": point.infra_failures,
            "budget_resets": point.budget_resets, "recorded_at": iso(ev.recorded_at),
            "attempts": [_attempt_record(a) for a in point.attempts]})
    return {"experiment": exp.name, "objective": exp.definition["objective"],
            "parameters": exp.definition["parameter_order"], "state": exp.state,
            "exported_at": iso(now()), "evaluations": out}


def plot_data(s: Session, exp: Experiment) -> dict[str, Any]:
    """What the three plots need, as plain values (times in seconds since the start)."""
    t0 = exp.started_at or exp.created_at
    current = exp.finished_at or now()

    def rel(dt: datetime | None) -> float | None:
        return None if dt is None else (dt - t0).total_seconds()

    recorded = s.execute(select(Evaluation.value, Evaluation.recorded_at).join(Point).where(
        Point.experiment_id == exp.id).order_by(Evaluation.id)).all()
    stage_ends = s.execute(select(Stage.number, Stage.recorded_at).where(
        Stage.experiment_id == exp.id).order_by(Stage.number)).all()
    times = [at for _, at in recorded]
    boundaries = [(number, sum(t <= at for t in times)) for number, at in stage_ends]
    attempts = s.execute(select(Attempt).where(Attempt.experiment_id == exp.id)
                         .order_by(Attempt.id)).scalars().all()
    return {
        "experiment": exp.name, "objective": exp.definition["objective"]["key"],
        "minimize": minimizes(exp), "cap": cap_of(exp), "now_s": rel(current),
        "values": [v for v, _ in recorded],
        "stage_boundaries": boundaries,
        "attempts": [{"label": a.name, "state": a.state, "failure": a.failure_kind is not None,
                      "submitted": rel(a.submitted_at), "started": rel(a.started_at),
                      "ended": rel(a.ended_at)} for a in attempts],
    }
