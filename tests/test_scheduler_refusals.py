"""The master's side of the adapter error contract, on the PJM emulator's fault knobs: a failed
lookup is never "not there", refusals and outages are no trial failures and `status` shows the
scheduler's words, a misconfigured scheduler stops `start` at once, a failed cancel is reported."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from scheduler_adapters.emulators import BIN_DIR
from scheduler_adapters.emulators.pjm import PJMEmulator
from scheduler_adapters.pjm import PJDEL_TRIES
from tests.conftest import ROOT, run_cli


@pytest.fixture
def pjm(tmp_path: Path):
    emulator = PJMEmulator(tmp_path / "pjm-state")
    emulator.configure(user="user1")
    yield emulator
    emulator.shutdown()


@pytest.fixture
def env(pjm: PJMEmulator) -> dict[str, str]:
    return {"PJM_EMULATOR_DIR": str(pjm.root), "PJM_EMULATOR_PYTHON": sys.executable}


def pjm_config(write_config, tmp_path: Path, *, rscgrp: str = "cx-share", sleep: float = 0.1,
               points: int = 4) -> Path:
    values = ", ".join(str(i) for i in range(points))
    path = write_config(parameters=f"x = {{ values = [{values}] }}", cap=2, poll=0.1,
                        command=f"{{python}} -m jobs.examples.synthetic --sleep {sleep} "
                                f"--record {tmp_path / 'runs.txt'}",
                        scheduler_extra=f'options = {{ rscgrp = "{rscgrp}", gpus = 1, '
                                        f'commands_dir = "{BIN_DIR}" }}')
    path.write_text(path.read_text().replace('kind = "local"', 'kind = "pjm"'))
    return path


def runs(tmp_path: Path) -> Counter[str]:
    record = tmp_path / "runs.txt"
    lines = record.read_text().splitlines() if record.exists() else []
    return Counter(line.split(" ", 3)[3] for line in lines)


def db_rows(tmp_path: Path, sql: str) -> list[tuple]:
    return sqlite3.connect(tmp_path / "work" / "state.db").execute(sql).fetchall()


def events_of_kind(tmp_path: Path, kind: str) -> int:
    """How many events of ``kind`` the database holds; 0 before its schema exists."""
    if not (tmp_path / "work" / "state.db").exists():
        return 0
    try:
        return db_rows(tmp_path, f"select count(*) from events where kind = '{kind}'")[0][0]
    except sqlite3.OperationalError:          # the file is there, its tables not yet
        return 0


def start(path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **env})


def test_a_submit_that_got_in_while_lookups_fail_runs_once(write_config, tmp_path, pjm, env):
    # pjsub queues the job but reports an error, and the lookups by name that follow fail too:
    # the master must wait for a lookup that answers, never submit the same name again.
    # The experiment exists first (a master stopped during a pjsub outage, its intents recorded),
    # so that `start`'s probe, which refuses a new experiment on a scheduler that does not
    # answer, only warns.
    path = pjm_config(write_config, tmp_path)
    pjm.outage(600, commands=("pjsub",))
    first = start(path, env)
    try:
        deadline = time.monotonic() + 60
        while not events_of_kind(tmp_path, "submit-waiting"):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr
            time.sleep(0.1)
        first.terminate()
        assert first.wait(60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    pjm.outage(0, commands=("pjsub",))
    pjm.inject("pjsub_submit_then_fail", 2)
    pjm.inject("pjstat_fail", 5)          # the first fails `start`'s probe, which goes on
    proc = run_cli("start", str(path), env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not any(pjm.faults_left().values())               # every fault was hit
    counted = runs(tmp_path)
    assert len(counted) == 4 and set(counted.values()) == {1}, counted
    names = Counter(job["name"] for job in pjm.jobs().values())
    assert set(names.values()) == {1}, names                      # one job per name
    assert db_rows(tmp_path, "select count(*) from attempts where state != 'succeeded'") == [(0,)]


def test_refused_and_unreachable_submits_wait_without_charging_the_trial(
        write_config, tmp_path, pjm, env):
    pjm.inject("pjsub_refused", 3)
    path = pjm_config(write_config, tmp_path, sleep=0.3)
    master = start(path, env)
    try:
        seen = None
        deadline = time.time() + 60
        while seen is None and time.time() < deadline and master.poll() is None:
            status = run_cli("status", str(path), "--json", env=env)
            if status.returncode == 0:
                seen = json.loads(status.stdout)["scheduler_note"]
            time.sleep(0.1)
        assert seen and "exceeds" in seen, seen                 # the scheduler's own words
        pjm.outage(2.0, commands=("pjsub",))                    # then the job manager is away
        assert master.wait(120) == 0, master.stderr.read() if master.stderr else ""
    finally:
        if master.poll() is None:
            master.kill()
    final = json.loads(run_cli("status", str(path), "--json", env=env).stdout)
    assert final["state"] == "finished" and final["scheduler_note"] is None
    assert final["evaluations"] == 4 and final["failed_points"] == 0
    # No budget was spent: every attempt that exists succeeded, none failed or was retried.
    assert db_rows(tmp_path, "select state, count(*) from attempts group by state") == [
        ("succeeded", 4)]
    assert db_rows(tmp_path, "select sum(program_failures + infra_failures) from points") == [
        (0,)]
    kinds = [k for (k,) in db_rows(tmp_path, "select kind from events order by id")]
    assert "submit-waiting" in kinds and "submit-resumed" in kinds
    assert set(runs(tmp_path).values()) == {1}


def test_a_misconfigured_scheduler_stops_start_at_once(write_config, tmp_path, pjm, env):
    path = pjm_config(write_config, tmp_path, rscgrp="cx-shar")      # a resource group typo
    began = time.monotonic()
    proc = run_cli("start", str(path), env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cx-shar" in lines[0] and "scheduler" in lines[0], lines
    assert time.monotonic() - began < 30
    # Nothing was charged to a trial: `start` refused before any state existed.
    assert not (tmp_path / "work" / "state.db").exists()
    fixed = path.read_text().replace('"cx-shar"', '"cx-share"')
    path.write_text(fixed)
    again = run_cli("start", str(path), env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert set(runs(tmp_path).values()) == {1} and len(runs(tmp_path)) == 4


def test_a_cancel_the_scheduler_refuses_is_reported(write_config, tmp_path, pjm, env):
    path = pjm_config(write_config, tmp_path, sleep=60, points=2)
    master = start(path, env)
    try:
        deadline = time.time() + 60
        while len([j for j in pjm.jobs().values() if j["st"] == "RUN"]) < 2:
            assert time.time() < deadline and master.poll() is None
            time.sleep(0.1)
        pjm.inject("pjdel_fail", PJDEL_TRIES)             # every try of one cancel fails
        cancel = run_cli("cancel", str(path), env=env)
        assert cancel.returncode == 0, cancel.stderr
        assert master.wait(60) == 1
        err = master.stderr.read() if master.stderr else ""
        assert "could not be cancelled" in err and "run `orchestrator cancel" in err, err
    finally:
        if master.poll() is None:
            master.kill()
    # The jobs still run and are still recorded as in flight; cancel again, with no master.
    assert db_rows(tmp_path, "select count(*) from attempts where state = 'cancelled'") == [(0,)]
    again = run_cli("cancel", str(path), env=env)
    assert again.returncode == 0 and "cancelled 2 jobs" in again.stdout, again.stdout
    assert db_rows(tmp_path, "select count(*) from attempts where state = 'cancelled'") == [(2,)]


def wait_running(pjm: PJMEmulator, master: subprocess.Popen[str], jobs: int) -> None:
    deadline = time.time() + 60
    while len([j for j in pjm.jobs().values() if j["st"] == "RUN"]) < jobs:
        assert time.time() < deadline and master.poll() is None
        time.sleep(0.1)


def test_a_restart_while_the_scheduler_is_away_goes_on_and_reattaches(
        write_config, tmp_path, pjm, env):
    # The master's node fails with jobs in flight; the job manager is away when it is started
    # again: `start` warns and goes on (only misconfiguration stops it), the master re-attaches.
    path = pjm_config(write_config, tmp_path, sleep=3, points=2)
    master = start(path, env)
    try:
        wait_running(pjm, master, 2)
        master.kill()
        master.wait(30)
    finally:
        if master.poll() is None:
            master.kill()
    pjm.outage(8, commands=("pjstat",))
    checked = run_cli("check", str(path), env=env)                # says what start will do
    assert checked.returncode == 0, checked.stdout
    assert "warning: scheduler pjm does not answer now: " in checked.stdout
    proc = run_cli("start", str(path), env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "scheduler pjm does not answer now (" in proc.stderr and "pjstat -v" in proc.stderr
    assert "Cannot connect" in proc.stderr and "re-attaches to the jobs in flight" in proc.stderr
    assert set(runs(tmp_path).values()) == {1} and len(runs(tmp_path)) == 2
    assert len(pjm.jobs()) == 2                                   # re-attached, not resubmitted
    assert db_rows(tmp_path, "select state, count(*) from attempts group by state") == [
        ("succeeded", 2)]


def test_a_scheduler_broken_while_the_master_runs_stops_it_in_one_line(
        write_config, tmp_path, pjm, env):
    commands = tmp_path / "bin"               # the site's commands, gone while the master runs
    commands.mkdir()
    for name in ("pjsub", "pjstat", "pjdel"):
        (commands / name).write_text(f'#!/bin/sh\nexec "{BIN_DIR / name}" "$@"\n')
        (commands / name).chmod(0o755)
    path = pjm_config(write_config, tmp_path, sleep=3, points=2)
    path.write_text(path.read_text().replace(str(BIN_DIR), str(commands)))
    master = start(path, env)
    try:
        wait_running(pjm, master, 2)
        for name in ("pjsub", "pjstat", "pjdel"):
            (commands / name).unlink()
        commands.rmdir()
        assert master.wait(60) == 2
        err = master.stderr.read() if master.stderr else ""
    finally:
        if master.poll() is None:
            master.kill()
    assert "the scheduler cannot run jobs as configured: commands_dir" in err, err
    assert "nothing was recorded as a failure" in err and "Traceback" not in err
    assert db_rows(tmp_path, "select count(*) from attempts where state = 'failed'") == [(0,)]
    kinds = [k for (k,) in db_rows(tmp_path, "select kind from events order by id")]
    assert kinds[-1] == "scheduler-misconfigured"
