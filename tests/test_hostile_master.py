"""The master under signals, cron restarts and slow search steps (real processes)."""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT


def start(path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path), *args],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def wait_until(check, timeout: float = 30, step: float = 0.002, what: str = "condition"):
    deadline = time.time() + timeout
    while not (value := check()):
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(step)
    return value


def lease_row(db: Path) -> tuple | None:
    try:
        return sqlite3.connect(db).execute("select pid, released from lease").fetchone()
    except sqlite3.Error:
        return None


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("moment", ["database created", "lease taken"])
def test_sigterm_in_the_first_second_stops_cleanly(write_config, tmp_path, moment):
    path = write_config(parameters="x = { values = [0, 1, 2, 3] }",
                        command="{python} -m jobs.examples.synthetic --sleep 0.5")
    db = tmp_path / "work" / "state.db"
    proc = start(path, "--quiet")
    if moment == "database created":
        wait_until(db.exists, what="the database")
    else:
        wait_until(lambda: lease_row(db), what="the lease")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stderr.read()
    row = lease_row(db)
    assert row is None or row[1] == 1                    # no lease left held by a dead master


def test_cron_start_while_a_master_runs_keeps_its_pid_file(write_config, cli, tmp_path):
    path = write_config(parameters="x = { values = [0, 1, 2, 3, 4, 5] }", cap=1,
                        command="{python} -m jobs.examples.synthetic --sleep 0.5")
    pid_file = tmp_path / "work" / "master.pid"
    assert cli("start", str(path), "--detach").returncode == 0
    master = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), step=0.05))
    again = cli("start", str(path), "--detach")          # cron, every few minutes
    second = int(re.search(r"pid (\d+)", again.stdout).group(1))
    wait_until(lambda: not pid_alive(second), step=0.05, what="the second daemon to exit")
    assert pid_alive(master) and int(pid_file.read_text()) == master
    quiet = cli("start", str(path), "--quiet", "--detach")
    assert quiet.returncode == 0 and quiet.stdout == quiet.stderr == ""
    os.kill(master, signal.SIGTERM)
    wait_until(lambda: not pid_alive(master), step=0.05, what="the master to stop")
    assert not pid_file.exists()


def test_a_slow_search_step_keeps_the_lease_and_honours_sigterm(write_config, tmp_path):
    """The search step takes 8 s, four lease timeouts: the master still heartbeats (a second
    start sees it alive) and stops on SIGTERM at once, leaving the step to the next master."""
    path = write_config(parameters="x = { values = [0, 1, 2, 3] }", strategy="dsice")
    path.write_text(path.read_text().replace('work_dir = "work"',
                                             'work_dir = "work"\nlease_timeout = 2'))
    db = tmp_path / "work" / "state.db"
    slow = {"ORCH_SLOW_AT": "search-step:8"}
    master = start(path, "--quiet", env=slow)
    wait_until(lambda: lease_row(db), what="the lease")
    time.sleep(3)                                        # past the lease timeout, mid-step
    rival = start(path, env=slow)
    assert rival.wait(30) == 3, rival.stderr.read()      # "a master is already running"
    sent = time.monotonic()
    master.send_signal(signal.SIGTERM)
    assert master.wait(30) == 0
    assert time.monotonic() - sent < 2                   # not after the rest of the 8 s step
    assert lease_row(db)[1] == 1
    assert start(path, "--quiet").wait(120) == 0          # the next master does the step again
