"""Which experiments a dashboard shows, and reading one of them: a read-only connection (SQLite
``mode=ro``, PostgreSQL read-only transactions), one short read per refresh whose result is
plain data, retried while SQLite is busy, so a running master is never held up."""
from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .. import queries
from ..config import ConfigError, load_config
from ..models import Experiment
from ..search_view import stage_path
from ..store import make_engine, retry_locked, sqlite_path
from . import figures

DATABASE_NAME = "state.db"
# A directory is searched this deep for state databases; run directories (one per trial
# attempt, possibly thousands) are never entered.
MAX_DEPTH = 4
SKIPPED_DIRS = {"trials", "setup", "__pycache__", "node_modules"}
RECENT_EVENTS = 25


@dataclass(frozen=True)
class Source:
    """One experiment's database, named for the page."""

    label: str
    url: str

    @property
    def slug(self) -> str:
        return hashlib.sha1(self.url.encode()).hexdigest()[:12]


def _config_source(path: Path) -> Source | None:
    try:
        config = load_config(path)
    except ConfigError:
        return None              # not an experiment config (or a broken one): not shown
    return Source(config.name, config.database_url)


def _walk_databases(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        depth = len(Path(directory).relative_to(root).parts)
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS and not d.startswith(".")
                            and depth < MAX_DEPTH)
        if DATABASE_NAME in files:
            yield Path(directory) / DATABASE_NAME


def discover(target: str) -> list[Source]:
    """A config file, a state database file, a URL, or a directory: every experiment config
    (``*.toml``) in it and every state database under it, each experiment once."""
    if "://" in target:
        return [Source(target.split("@")[-1], target)]
    path = Path(target)
    if not path.is_dir():
        if path.suffix == ".toml" or not path.exists():
            config = load_config(path)
            return [Source(config.name, config.database_url)]
        return [Source(path.resolve().parent.name, f"sqlite:///{path.resolve()}")]
    found: dict[str, Source] = {}
    for config_file in sorted(path.glob("*.toml")):
        source = _config_source(config_file)
        if source is not None:
            found.setdefault(source.url, source)
    for db in _walk_databases(path.resolve()):
        url = f"sqlite:///{db}"
        found.setdefault(url, Source(str(db.parent.relative_to(path.resolve())) or db.parent.name,
                                     url))
    return list(found.values())


class Reader:
    """Read-only engines kept per database (the dashboard polls; reconnecting each time would
    be waste) and the reads the page asks for."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def _engine(self, url: str) -> Engine:
        with self._lock:
            engine = self._engines.get(url)
            if engine is None:
                engine = make_engine(url, readonly=True)
                if engine.dialect.name == "postgresql":
                    engine = engine.execution_options(postgresql_readonly=True)
                self._engines[url] = engine
            return engine

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def read(self, source: Source, view: Any) -> dict[str, Any]:
        """``view(session, experiment)`` in one read-only transaction; a dict saying why when
        there is nothing to show yet (``{"missing": reason}``)."""
        db = sqlite_path(source.url)
        if db is not None and not db.exists():
            return {"missing": f"no experiment yet in {db.parent}"}

        def run() -> dict[str, Any]:
            with Session(self._engine(source.url)) as s:
                try:
                    exp = s.execute(select(Experiment)).scalars().first()
                except OperationalError as exc:
                    if "no such table" not in str(exc):
                        raise
                    exp = None
                if exp is None:
                    return {"missing": f"no experiment yet in {source.label}"}
                return dict(view(s, exp))
        return retry_locked(run)


def progress(status: dict[str, Any]) -> dict[str, Any]:
    """Done / total (total where the strategy makes it knowable), best so far, time left."""
    done = status["evaluations"] + status["failed_points"]
    left = status["estimate"]["remaining_points"]
    return {"done": done, "total": None if left is None else done + left,
            "best": status["best"], "remaining_s": status["estimate"]["remaining_s"],
            "remaining_stages_min": status["estimate"]["remaining_stages_min"],
            "basis": status["estimate"]["basis"]}


def summary(s: Session, exp: Experiment) -> dict[str, Any]:
    status = queries.status(s, exp)
    return {"status": status, "progress": progress(status)}


def snapshot(s: Session, exp: Experiment) -> dict[str, Any]:
    """What one experiment's page shows, as plain data, from one read. Only what the page
    draws is read, and the figures are built after the read (``page``): the read holds
    SQLite's shared lock, and the master waits for it to commit."""
    status = queries.status(s, exp)
    return {"status": status, "progress": progress(status), "queue": queries.queue(s, exp),
            "events": queries.events(s, exp, RECENT_EVENTS),
            "plot": queries.plot_data(s, exp), "path": stage_path(s, exp)}


def page(read: dict[str, Any]) -> dict[str, Any]:
    """The page's JSON from a snapshot: the plot data turned into Plotly figures."""
    if "plot" not in read:
        return read                   # nothing to show yet, or an error
    shown = {k: v for k, v in read.items() if k not in ("plot", "path")}
    return {**shown, "figures": figures.all_figures(read["plot"], read["path"])}
