"""Read-only views of an experiment for the admin commands. Never writes, never blocks the
master: reads go through a read-only connection and retry while SQLite is busy."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import exitcodes
from .cli import CliError
from .config import load_config
from .lease import heartbeat_age, process_alive
from .models import ACTIVE_ATTEMPT_STATES, Attempt, Evaluation, Event, Experiment, Lease, Point, Stage
from .store import read_session, retry_locked, sqlite_path

T = TypeVar("T")


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
        raise CliError(f"no experiment in {db.parent}: run `orchestrator start CONFIG` first",
                       exitcodes.NO_EXPERIMENT)

    def run() -> T:
        with read_session(url) as s:
            try:
                exp = s.execute(select(Experiment)).scalars().first()
            except Exception as exc:
                if "no such table" in str(exc):
                    exp = None
                else:
                    raise
            if exp is None:
                raise CliError(f"no experiment in {url}: run `orchestrator start CONFIG` first",
                               exitcodes.NO_EXPERIMENT)
            return fn(s, exp)
    return retry_locked(run)


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _better(minimize: bool) -> Callable[[float, float], bool]:
    return (lambda a, b: a < b) if minimize else (lambda a, b: a > b)


def evaluations(s: Session, exp: Experiment) -> list[tuple[Point, Evaluation]]:
    """Outcomes in the order the search asked for the points (deterministic, unlike the order
    in which jobs happened to finish)."""
    return list(s.execute(select(Point, Evaluation).join(Evaluation).where(
        Point.experiment_id == exp.id).order_by(Point.id)).tuples())


def best_of(rows: list[tuple[Point, Evaluation]], minimize: bool) -> dict[str, Any] | None:
    better = _better(minimize)
    best: tuple[Point, Evaluation] | None = None
    for point, ev in rows:
        if ev.value is not None and (best is None or better(ev.value, best[1].value)):  # type: ignore[arg-type]
            best = (point, ev)
    if best is None:
        return None
    return {"params": best[0].params, "value": best[1].value, "found_at": iso(best[1].recorded_at),
            "evaluation": [p.id for p, _ in rows].index(best[0].id) + 1}


def master_info(s: Session, exp: Experiment) -> dict[str, Any] | None:
    lease = s.get(Lease, exp.id)
    if lease is None:
        return None
    import socket
    alive = not lease.released and (lease.host != socket.gethostname()
                                     or process_alive(lease.pid, lease.pid_started))
    return {"host": lease.host, "pid": lease.pid, "alive": alive,
            "heartbeat_age_s": round(heartbeat_age(lease), 1), "started_at": iso(lease.started_at)}


def status(s: Session, exp: Experiment) -> dict[str, Any]:
    minimize = exp.definition["objective"]["direction"] == "minimize"
    rows = evaluations(s, exp)
    counts = dict(s.execute(select(Attempt.state, func.count()).where(
        Attempt.experiment_id == exp.id).group_by(Attempt.state)).tuples().all())
    point_counts = dict(s.execute(select(Point.state, func.count()).where(
        Point.experiment_id == exp.id).group_by(Point.state)).tuples().all())
    last_stage = s.execute(select(Stage).where(Stage.experiment_id == exp.id)
                           .order_by(Stage.number.desc()).limit(1)).scalars().first()
    return {
        "experiment": exp.name,
        "state": exp.state,
        "message": exp.message,
        "master": master_info(s, exp),
        "best": best_of(rows, minimize),
        "evaluations": sum(ev.value is not None for _, ev in rows),
        "failed_points": sum(ev.value is None for _, ev in rows),
        "running": counts.get("running", 0),
        "pending": sum(counts.get(k, 0) for k in ("submitting", "submitted", "pending"))
                   + point_counts.get("pending", 0),
        "attempts": sum(counts.values()),
        "attempts_by_state": counts,
        "stages_done": last_stage.number if last_stage else 0,
        "level": last_stage.level if last_stage else None,
        "base": last_stage.best if last_stage else None,
        "created_at": iso(exp.created_at),
        "started_at": iso(exp.started_at),
        "finished_at": iso(exp.finished_at),
    }


def queue(s: Session, exp: Experiment) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    rows = s.execute(select(Attempt).where(Attempt.experiment_id == exp.id,
                                           Attempt.state.in_(ACTIVE_ATTEMPT_STATES))
                     .order_by(Attempt.id)).scalars().all()
    return [{
        "job_id": a.job_id, "name": a.name, "kind": a.kind,
        "params": a.point.params if a.point else None, "attempt": a.number, "state": a.state,
        "submitted_at": iso(a.submitted_at), "started_at": iso(a.started_at),
        "elapsed_s": None if a.started_at is None else round((now - a.started_at).total_seconds()),
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
            "recorded_at": iso(ev.recorded_at),
        })
    return out


def stages(s: Session, exp: Experiment) -> list[dict[str, Any]]:
    rows = s.execute(select(Stage).where(Stage.experiment_id == exp.id)
                     .order_by(Stage.number)).scalars().all()
    return [{"number": st.number, "level": st.level, "base": st.base, "points": len(st.points),
             "best": st.best, "best_value": st.best_value, "moved": st.moved,
             "recorded_at": iso(st.recorded_at)} for st in rows]


def events(s: Session, exp: Experiment, limit: int = 50) -> list[dict[str, Any]]:
    rows = s.execute(select(Event).where(Event.experiment_id == exp.id)
                     .order_by(Event.id.desc()).limit(limit)).scalars().all()
    return [{"at": iso(e.at), "kind": e.kind, "message": e.message, "data": e.data}
            for e in reversed(rows)]
