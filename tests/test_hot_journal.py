"""Reads after a writer was killed mid-write: the hot rollback journal it leaves is played back
by the first reader that can write there, and the reader sees the last committed state; one
that cannot write gets one line. (Before: "attempt to write a readonly database".)"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.dashboard import sources
from orchestrator.hot_journal import READONLY_ROLLBACK
from tests.conftest import BASE_CONFIG, DEFAULTS, run_cli
from tests.test_hostile_env import small_fs  # noqa: F401  (a fixture)

# A writer that changes every evaluation and pads the database inside one transaction, with a
# cache of a few pages so that SQLite must spill changed pages into the database file before
# the commit, then dies by SIGKILL: the file on disk is half-written, the journal is hot.
KILLED_WRITER = """
import os, signal, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA cache_size=2")
con.execute("BEGIN IMMEDIATE")
con.execute("UPDATE evaluations SET value = 1e9")
con.execute("CREATE TABLE padding (junk BLOB)")
for _ in range(200):
    con.execute("INSERT INTO padding VALUES (randomblob(4000))")
os.kill(os.getpid(), signal.SIGKILL)
"""


def kill_a_writer_mid_transaction(db: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(db)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    journal = db.with_name(db.name + "-journal")
    assert journal.stat().st_size > 0
    # What the old code met: a read-only connection refuses to read.
    with pytest.raises(sqlite3.OperationalError) as refused:
        sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute(
            "select count(*) from evaluations").fetchone()
    assert refused.value.sqlite_errorcode == READONLY_ROLLBACK


@pytest.fixture(scope="module")
def finished_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished experiment's state database (3 points); each test reads a copy of it."""
    root = tmp_path_factory.mktemp("finished")
    path = root / "exp.toml"
    path.write_text(textwrap.dedent(BASE_CONFIG.format(
        **{**DEFAULTS, "parameters": "x = { values = [0, 1, 2] }", "cap": 3})))
    assert run_cli("start", str(path), "--quiet").returncode == 0
    return root / "work" / "state.db"


def copy_into(db: Path, directory: Path) -> Path:
    directory.mkdir(mode=0o700)
    shutil.copy(db, directory / db.name)
    return directory / db.name


def read_json(cli, command: str, path: Path) -> object:
    proc = cli(command, str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    if isinstance(data, dict):
        data.pop("master", None)               # the heartbeat's age moves on
    return data


def test_reads_after_a_writer_killed_mid_transaction_see_the_committed_state(
        finished_db, cli, tmp_path):
    db = path = copy_into(finished_db, tmp_path / "work")
    before = {cmd: read_json(cli, cmd, path) for cmd in ("status", "history")}
    reader = sources.Reader()                 # the dashboard's, with a connection kept open
    source = sources.discover(str(path))[0]
    try:
        assert reader.read(source, sources.summary)["progress"]["done"] == 3
        kill_a_writer_mid_transaction(db)
        assert reader.read(source, sources.snapshot)["progress"]["done"] == 3
        assert not db.with_name("state.db-journal").exists()       # played back
        kill_a_writer_mid_transaction(db)
        for cmd in ("status", "history"):
            assert read_json(cli, cmd, path) == before[cmd]           # not the 1e9 values
    finally:
        reader.close()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert {v for (v,) in con.execute("select value from evaluations")} == {4.0, 1.0, 0.0}
    assert con.execute("select count(*) from sqlite_master where name = 'padding'"
                       ).fetchone()[0] == 0


def test_a_reader_that_cannot_write_says_so_in_one_line(finished_db, cli, small_fs):  # noqa: F811
    path = copy_into(finished_db, small_fs / "work")
    kill_a_writer_mid_transaction(path)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    proc = cli("status", str(path))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "rollback journal a killed master left" in lines[0]
    assert "state.db-journal" in lines[0]
    assert os.path.exists(small_fs / "work" / "state.db-journal")
