"""Opening the state database: engine settings for one writer and concurrent readers.

SQLite settings, chosen for a database that may live on a shared (network) filesystem, because
cron restarts the master on another node (see docs/state.md):
- ``journal_mode=DELETE`` (rollback journal) by default: WAL needs shared memory between the
  processes, which NFS/Lustre do not provide. ``journal = "wal"`` may be chosen for local disks.
- ``synchronous=FULL``: a transaction the master committed survives a power or node failure.
- ``busy_timeout`` 30 s: the master's transactions are short; a reader waits instead of failing.
- A read-only reader that meets a killed master's hot rollback journal has it played back
  (``hot_journal``) instead of failing with "attempt to write a readonly database".
Any other SQLAlchemy URL (PostgreSQL) works as is.
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, event, func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from .errors import SchemaMismatch
from .hot_journal import begin_read
from .models import SCHEMA_VERSION, Base, Experiment

BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def make_engine(url: str, *, readonly: bool = False, journal: str = "delete") -> Engine:
    path = sqlite_path(url)
    if path is None:
        return create_engine(url, pool_pre_ping=True, future=True)
    if readonly:
        if not path.exists():
            raise FileNotFoundError(f"no database at {path}")
        target = f"file:{path}?mode=ro"
        engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(
            target, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False))
    else:
        _create_private(path)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        if not readonly:
            cur.execute(f"PRAGMA journal_mode={'WAL' if journal == 'wal' else 'DELETE'}")
            cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        # A writer takes the write lock up front: two writers that both read first and then
        # write would otherwise deadlock, and SQLite answers that with an immediate "locked".
        # A reader takes its shared lock up front, playing back a killed master's hot journal.
        if readonly:
            begin_read(conn, path, BUSY_TIMEOUT_MS / 1000)
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _create_private(path: Path) -> None:
    """Create the database file owner-only before SQLite does (it would honour the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)


def create_schema(engine: Engine) -> None:
    """Create missing tables, and missing indexes of existing tables (``create_all`` leaves a
    table that exists as it is: a database made by an earlier version gains its new indexes)."""
    Base.metadata.create_all(engine)
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)


def schema_problem(engine: Engine) -> str | None:
    """Why the database's tables do not match this version's models (None: they do).
    The stored schema version is read first, so a database of another version says which."""
    inspector = inspect(engine)
    if inspector.has_table(Experiment.__tablename__) and "schema_version" in {
            c["name"] for c in inspector.get_columns(Experiment.__tablename__)}:
        with engine.connect() as conn:
            stored = conn.execute(select(func.max(Experiment.__table__.c.schema_version))).scalar()
        if stored is not None and stored != SCHEMA_VERSION:
            return f"schema version {stored}; this version reads {SCHEMA_VERSION}"
    for table in Base.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            return f"table {table.name} is missing"
        present = {c["name"] for c in inspector.get_columns(table.name)}
        missing = [c.name for c in table.columns if c.name not in present]
        if missing:
            return f"table {table.name} lacks column {missing[0]}"
    return None


def find_experiment(session: Session, url: str) -> Experiment | None:
    """The experiment the database at ``url`` holds, or None when nothing was started in it yet
    (no tables, or no row). SchemaMismatch when another version of orchestrator wrote it."""
    # Inspect through the session's own connection: a writer holds BEGIN IMMEDIATE, and a
    # second connection would wait on that lock.
    if not inspect(session.connection()).has_table(Experiment.__tablename__):
        return None
    try:
        return session.execute(select(Experiment)).scalars().first()
    except (OperationalError, ProgrammingError) as exc:
        session.rollback()            # PostgreSQL refuses more statements in a failed transaction
        problem = schema_problem(session.get_bind().engine)
        if problem is None:
            raise
        raise SchemaMismatch(f"the state database {url} was written by another version of "
                             f"orchestrator ({problem})") from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, future=True)


def is_locked_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text or "busy" in text


def retry_locked(fn: Callable[[], T], *, attempts: int = 20, delay: float = 0.1) -> T:
    """Run a read again when SQLite says it is locked, so a reader never shows that to a user."""
    for i in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if not is_locked_error(exc) or i == attempts - 1:
                raise
            time.sleep(min(delay * (1.5 ** i), 2.0))
    raise AssertionError("unreachable")


@contextmanager
def read_session(url: str) -> Iterator[Session]:
    """A read-only session for admin commands; never takes a write lock."""
    engine = make_engine(url, readonly=True)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()
