"""A hot rollback journal met by a read-only reader.

A master killed inside a transaction that had begun writing the database file leaves
``state.db-journal`` behind, holding the pages as they were. Until someone plays it back, the
file on disk is half-written and SQLite refuses every read-only connection
(``SQLITE_READONLY_ROLLBACK``: "attempt to write a readonly database"), because rolling back
means writing. The next master does it when it opens the database; until then the read
commands and the dashboard would fail. So a reader that meets a hot journal opens the database
read-write once, which makes SQLite roll the journal back under its own locks (exactly what the
next master's open would do; the rollback restores the last committed state, it never loses a
committed one), and reads on. A reader that cannot write there gets one line saying so.

Why not WAL instead: WAL's index lives in shared memory, which processes on different NFS or
Lustre clients do not share, and cron may restart the master on another node (docs/state.md).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from .errors import OrchestratorError

# sqlite3.SQLITE_READONLY_ROLLBACK (776) where Python exposes it: SQLITE_READONLY (8) with the
# extended code "needs a rollback it may not do".
READONLY_ROLLBACK = getattr(sqlite3, "SQLITE_READONLY_ROLLBACK", 776)
ROLLBACK_TRIES = 3


class HotJournal(OrchestratorError):
    """A killed writer left a rollback journal that this user cannot play back."""


def is_hot_journal(exc: BaseException) -> bool:
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    return getattr(orig, "sqlite_errorcode", None) == READONLY_ROLLBACK


def roll_back(path: Path, timeout_s: float) -> None:
    """Let SQLite play back the hot journal of ``path`` by reading it through a read-write
    connection (never creating the file); a HotJournal error when this user cannot."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=timeout_s)
        try:
            con.execute("PRAGMA schema_version").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise HotJournal(
            f"the state database {path} needs the rollback journal a killed master left "
            f"({path.name}-journal) played back, and this user cannot write there ({exc}): "
            f"any read command run once by a user who can write {path.parent}, or the "
            f"master's next start, does it") from None


def begin_read(conn: Connection, path: Path, timeout_s: float) -> None:
    """BEGIN a read transaction and take its shared lock at once, so that a hot journal is met
    here (and rolled back) rather than by whichever query comes first. Once the lock is held,
    no writer can touch the file until the transaction ends."""
    for _ in range(ROLLBACK_TRIES):
        conn.exec_driver_sql("BEGIN")
        try:
            conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").fetchone()
            return
        except OperationalError as exc:
            if getattr(conn.connection.driver_connection, "in_transaction", False):
                conn.exec_driver_sql("ROLLBACK")      # (SQLite itself ends it on this error)
            if not is_hot_journal(exc):
                raise
        roll_back(path, timeout_s)
    raise HotJournal(f"the state database {path} keeps showing a hot rollback journal: "
                     f"a writer is being killed again and again; try again later")
