"""Crash safety: one master at a time, SIGKILL at any instant loses nothing, SIGTERM is clean."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chaos import SMALL_PARAMS, finished, run_chaos, start_master
from tests.conftest import ROOT


@pytest.mark.slow
def test_chaos_kill9_fifty_times_loses_nothing(write_config, tmp_path):
    """The default (eager) DSICE in synchronous rounds over 6x6x5, cap 3: after 50 kills the
    history equals an uninterrupted run's. (Refill mode, where decisions follow completion
    order, replays its journal: tests/test_eager_chaos.py, tests/test_refill.py.) The dashboard
    and the read commands read throughout and never fail; the kills are paced by the search's
    progress (tests/chaos.py), so all 50 fit before it ends, however fast the machine."""
    campaign = run_chaos(write_config, tmp_path, kills_wanted=50, search_extra='mode = "sync"')
    assert campaign.kills == 50 and campaign.reads.count > 100


@pytest.mark.slow
@pytest.mark.slurm
def test_chaos_on_real_slurm(write_config, tmp_path):
    if not os.environ.get("SLURM_CONF"):
        if os.environ.get("REQUIRE_SLURM") == "1":
            pytest.fail("REQUIRE_SLURM=1 but Slurm is not running (scripts/slurm-start.sh)")
        pytest.skip("no Slurm: eval \"$(bash scripts/slurm-start.sh)\" to run this")
    run_chaos(write_config, tmp_path, kills_wanted=10, kind="slurm",
              options='options = { partition = "debug" }', search_extra='mode = "sync"',
              parameters=SMALL_PARAMS)


def test_two_starts_at_the_same_instant(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2, 3, 4, 5] }', cap=2,
                        command="{python} -m jobs.examples.synthetic --sleep 0.3")
    procs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path)],
                              cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    codes = sorted(p.wait(60) for p in procs)
    assert codes == [0, 3], [p.stderr.read() for p in procs]
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    assert con.execute("select count(*) from attempts").fetchone()[0] == 6


def test_sigterm_stops_cleanly_and_jobs_keep_running(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2, 3] }', cap=4,
                        command="{python} -m jobs.examples.synthetic --sleep 2")
    proc = start_master(path)
    db = tmp_path / "work" / "state.db"
    deadline = time.time() + 20
    while time.time() < deadline:
        if _count(db, "select count(*) from attempts where job_id is not null") == 4:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    con = sqlite3.connect(db)
    assert con.execute("select released from lease").fetchone()[0] == 1
    assert con.execute("select state from experiments").fetchone()[0] == "running"
    assert con.execute("select count(*) from evaluations").fetchone()[0] == 0   # jobs untouched
    assert start_master(path).wait(60) == 0
    assert con.execute("select count(*) from attempts").fetchone()[0] == 4    # re-attached
    assert con.execute("select count(*) from evaluations where value is not null").fetchone()[0] == 4


def test_dead_master_lease_is_taken_over_at_once(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1] }',
                        command="{python} -m jobs.examples.synthetic --sleep 0.5")
    proc = start_master(path)
    db = tmp_path / "work" / "state.db"
    deadline = time.time() + 20
    while not (db.exists() and _has_lease(db)) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = start_master(path)      # the lease's pid is dead: no waiting for a timeout
    assert again.wait(60) == 0
    assert finished(db)


def _count(db: Path, sql: str) -> int:
    """A count from a database that may not exist yet (the master is starting)."""
    try:
        return sqlite3.connect(db).execute(sql).fetchone()[0] if db.exists() else 0
    except sqlite3.Error:
        return 0


def _has_lease(db: Path) -> bool:
    return _count(db, "select count(*) from lease") == 1


def _process_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def test_expired_heartbeat_is_taken_over_and_old_owner_exits(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2, 3] }', cap=1,
                        command="{python} -m jobs.examples.synthetic --sleep 0.5",
                        extra="")
    # 6 s: well beyond a start-up of the second master on a loaded machine (2-3 s at load 13).
    text = path.read_text().replace('work_dir = "work"', 'work_dir = "work"\nlease_timeout = 6')
    path.write_text(text)
    # The master freezes itself between two transactions, as on a hung node. (Frozen inside
    # one, it would hold SQLite's lock: only the node's death, which frees it, unblocks others.)
    old = start_master(path, {"ORCH_CRASH_AT": "cycle:3", "ORCH_CRASH_SIGNAL": "SIGSTOP"})
    db = tmp_path / "work" / "state.db"
    deadline = time.time() + 30
    while _process_state(old.pid) != "T":
        assert time.time() < deadline, "the master did not freeze"
        time.sleep(0.05)
    try:
        con = sqlite3.connect(db)
        # A live pid on this host: only the heartbeat's age lets a new master in.
        assert start_master(path).wait(30) == 3
        time.sleep(6.5)
        new = start_master(path)
        deadline = time.time() + 30
        while _count(db, f"select count(*) from lease where pid = {new.pid}") == 0:
            assert time.time() < deadline, "the new master did not take the lease"
            time.sleep(0.05)
        evaluations_before = con.execute("select count(*) from evaluations").fetchone()[0]
    finally:
        old.send_signal(signal.SIGCONT)
    assert old.wait(30) == 5                  # noticed the takeover, exited without writing
    assert new.wait(60) == 0
    assert finished(db)
    assert evaluations_before <= 4


def test_detach_and_stop(write_config, cli, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2, 3, 4, 5, 6, 7] }', cap=1,
                        command="{python} -m jobs.examples.synthetic --sleep 0.5")
    proc = cli("start", str(path), "--detach")
    assert proc.returncode == 0 and "pid" in proc.stdout
    pid_file = tmp_path / "work" / "master.pid"
    deadline = time.time() + 20
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.05)                      # written once the daemon holds the lease
    pid = int(pid_file.read_text())
    os.kill(pid, 0)
    db = tmp_path / "work" / "state.db"
    deadline = time.time() + 20
    while _count(db, "select count(*) from attempts") == 0 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 20
    while pid_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert not pid_file.exists()
    assert cli("start", str(path)).returncode == 0
    assert finished(tmp_path / "work" / "state.db")
