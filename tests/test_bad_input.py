"""Bad input and a hostile environment: clear one-line messages, and nothing stored is lost."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT


def evaluations(db: Path) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "select p.key, e.value from points p join evaluations e on e.point_id = p.id "
        "order by p.id").fetchall()


def test_run_directory_deleted_under_a_running_job(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2] }', cap=3,
                        command="{python} -m jobs.examples.synthetic --sleep 1.5")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    victim = tmp_path / "work" / "trials" / "p1" / "attempt-1"
    deadline = time.time() + 20
    while not (victim / "params.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)                                      # the job is running now
    shutil.rmtree(victim)
    assert proc.wait(60) == 0, proc.stderr.read()
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    states = con.execute("select a.state, a.reason from attempts a join points p on "
                         "a.point_id = p.id where p.key = '1' order by a.number").fetchall()
    assert states[0][0] != "succeeded" and states[-1][0] == "succeeded"
    assert len(evaluations(tmp_path / "work" / "state.db")) == 3


def test_database_of_another_experiment(write_config, cli, tmp_path):
    first = write_config("a.toml", name="alpha", parameters='x = { values = [0, 1] }')
    assert cli("start", str(first)).returncode == 0
    before = evaluations(tmp_path / "work" / "state.db")
    second = write_config("b.toml", name="beta", parameters='x = { values = [0, 1] }')
    proc = cli("start", str(second))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "belongs to experiment 'alpha', not 'beta'" in proc.stderr
    assert evaluations(tmp_path / "work" / "state.db") == before


def test_corrupt_database_file(write_config, cli, tmp_path):
    path = write_config()
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "state.db").write_bytes(b"this is not a database" * 100)
    proc = cli("start", str(path))
    assert proc.returncode == 1
    assert "cannot open the state database" in proc.stderr and "state.db" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs",
                                            str(mount)], capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def test_full_disk_stops_cleanly_and_loses_nothing(write_config, tmp_path, tiny_disk):
    path = write_config(parameters='x = { values = [0, 1, 2, 3, 4, 5] }', cap=1)
    path.write_text(path.read_text().replace('work_dir = "work"', f'work_dir = "{tiny_disk}/work"'))
    env = {**os.environ, "ORCH_CRASH_AT": "after-intent:4"}
    crashed = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -9
    db = tiny_disk / "work" / "state.db"
    stored = evaluations(db)
    assert len(stored) == 3
    filler = fill(tiny_disk)
    full = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert full.returncode != 0
    message = full.stderr.strip().splitlines()
    assert len(message) == 1, message
    assert "No space left on device" in message[0] or "disk is full" in message[0], message
    filler.unlink()
    assert evaluations(db) == stored                      # nothing stored was lost
    resumed = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert len(evaluations(db)) == 6


def test_database_of_another_version(write_config, cli, tmp_path):
    path = write_config(parameters='x = { values = [0, 1] }')
    assert cli("start", str(path)).returncode == 0
    db = tmp_path / "work" / "state.db"
    con = sqlite3.connect(db)
    con.execute("alter table experiments drop column instance")
    con.commit()
    proc = cli("start", str(path))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "another version of orchestrator (table experiments lacks column instance)" in proc.stderr
    status = cli("status", str(path))
    assert status.returncode == 1 and "another version of orchestrator" in status.stderr
    cancel = cli("cancel", str(path))        # a writer: its own locked transaction is given up
    assert cancel.returncode == 1 and "lacks column instance" in cancel.stderr
    assert len(cancel.stderr.splitlines()) == 1


def test_library_callers_get_exceptions_with_exit_codes(write_config, tmp_path):
    """The read model and the simulation raise domain errors (never exit the process); the CLI
    maps their codes."""
    from orchestrator import exitcodes, queries
    from orchestrator.errors import NoExperiment, SimulationError
    from orchestrator.simulate import run_simulation
    path = write_config()
    with pytest.raises(NoExperiment) as caught:
        queries.query(str(path), queries.status)
    assert caught.value.code == exitcodes.NO_EXPERIMENT and "start CONFIG" in str(caught.value)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("")
    with pytest.raises(SimulationError) as caught:
        run_simulation(path, work_dir=tmp_path / "busy")
    assert caught.value.code == exitcodes.USAGE and "not empty" in str(caught.value)
