"""Opening a read of an experiment, and the small helpers every view shares."""
from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from ..config import load_config
from ..errors import NoExperiment
from ..lease import heartbeat_age, process_alive
from ..models import Experiment, Lease
from ..states import ExperimentState
from ..store import find_experiment, read_session, retry_locked, sqlite_path

T = TypeVar("T")
ENDED = ExperimentState.ENDED


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
