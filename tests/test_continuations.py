"""Trials longer than a job may run: checkpoint, continue, and the last run's result counts."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scheduler_adapters.base import JobState
from scheduler_adapters.slurm import SlurmScheduler
from tests.conftest import ROOT

CHECKPOINTING = "{python} -m jobs.examples.checkpointing --center x=1"


def attempts(db: Path) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "select a.number, a.name, a.state, a.failure_kind, a.reason from attempts a "
        "order by a.id").fetchall()


def point_row(db: Path) -> tuple:
    return sqlite3.connect(db).execute(
        "select p.state, p.program_failures, p.infra_failures, e.value, e.metrics from points p "
        "left join evaluations e on e.point_id = p.id").fetchone()


def continued_config(write_config, command: str, *, time_limit: float | str = "1e6",
                     continuations: int = 5, retries: int = 0):
    path = write_config(parameters="x = { values = [3] }", time_limit=time_limit,
                        retries=retries, command=command)
    retries_line = f"retries = {retries}\n"
    path.write_text(path.read_text().replace(
        retries_line, f"{retries_line}continuations = {continuations}\n", 1))
    return path


def test_a_trial_ended_by_its_time_limit_continues_from_its_checkpoint(write_config, cli, tmp_path):
    path = continued_config(write_config, f"{CHECKPOINTING} --steps 10 --step-seconds 0.4",
                            time_limit=2)
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    db = tmp_path / "work" / "state.db"
    rows = attempts(db)
    assert len(rows) >= 3                                  # 4 s of work in 2 s jobs
    assert [r[2] for r in rows] == ["continued"] * (len(rows) - 1) + ["succeeded"]
    assert all(r[0] == 1 for r in rows)                    # one attempt, several runs
    assert rows[0][4] == "time limit reached with a checkpoint"
    assert rows[1][1] == rows[0][1] + "-c1"
    state, program, infra, value, metrics = point_row(db)
    assert (state, program, infra, value) == ("done", 0, 0, 4.0)   # neither budget charged
    metrics = json.loads(metrics)
    assert metrics["steps"] == 10 and metrics["runs"] == len(rows)
    assert metrics["continuation"] == len(rows) - 1
    run_dir = tmp_path / "work" / "trials" / "p0" / "attempt-1"
    assert (run_dir / "checkpoint" / "progress.json").exists()
    assert oct((run_dir / "checkpoint").stat().st_mode & 0o777) == "0o700"


def test_a_trial_that_hands_over_is_continued(write_config, cli, tmp_path):
    path = continued_config(write_config, f"{CHECKPOINTING} --steps 7 --step-seconds 0.01 "
                                          "--steps-per-run 3")
    assert cli("start", str(path)).returncode == 0
    db = tmp_path / "work" / "state.db"
    rows = attempts(db)
    assert [r[2] for r in rows] == ["continued", "continued", "succeeded"]
    assert rows[0][4] == "the trial reported it is not finished"
    run_dir = tmp_path / "work" / "trials" / "p0" / "attempt-1"
    assert sorted(p.name for p in run_dir.glob("result*.json")) == [
        "result.json", "result.unfinished-0.json", "result.unfinished-1.json"]
    assert json.loads(point_row(db)[4])["runs"] == 3


def test_continuations_are_bounded(write_config, cli, tmp_path):
    path = continued_config(write_config, f"{CHECKPOINTING} --steps 10 --step-seconds 0.01 "
                                          "--steps-per-run 2", continuations=1)
    assert cli("start", str(path)).returncode == 1     # its one point failed: no success
    db = tmp_path / "work" / "state.db"
    rows = attempts(db)
    assert [r[2] for r in rows] == ["continued", "failed"]
    assert rows[1][3] == "program"
    assert "not continued: 1 continuations used (continuations = 1)" in rows[1][4]
    assert point_row(db)[:2] == ("failed", 1)


def test_a_time_limit_without_checkpoint_is_still_a_failure(write_config, cli, tmp_path):
    path = continued_config(write_config, "{python} -m jobs.examples.synthetic --sleep 30",
                            time_limit=1)
    assert cli("start", str(path)).returncode == 1     # its one point failed: no success
    rows = attempts(tmp_path / "work" / "state.db")
    assert [(r[2], r[3]) for r in rows] == [("timeout", "program")]


@pytest.mark.slow
@pytest.mark.slurm
def test_real_slurm_walltime_is_continued_from_the_checkpoint(write_config, cli, tmp_path):
    """sbatch --time=1 (Slurm's minimum): 100 s of work needs a second job, continued from
    the first one's checkpoint after Slurm ended it with TIMEOUT. (Slurm checks limits about
    every 30 s, so this is also the one test of the adapter's TIMEOUT: a minute or more.)"""
    if not os.environ.get("SLURM_CONF"):
        if os.environ.get("REQUIRE_SLURM") == "1":
            pytest.fail("REQUIRE_SLURM=1 but Slurm is not running (scripts/slurm-start.sh)")
        pytest.skip("no Slurm: eval \"$(bash scripts/slurm-start.sh)\" to run this")
    path = continued_config(write_config, f"{CHECKPOINTING} --steps 100 --step-seconds 1",
                            time_limit=60, continuations=3)
    path.write_text(path.read_text().replace('kind = "local"', 'kind = "slurm"')
                    .replace("poll_interval = 0.1", 'poll_interval = 1\noptions = { partition = '
                             f'"{os.environ.get("LOCAL_SLURM_PARTITION", "debug")}" }}'))
    proc = cli("start", str(path), timeout=400)
    assert proc.returncode == 0, proc.stderr
    db = tmp_path / "work" / "state.db"
    rows = attempts(db)
    assert [r[2] for r in rows][0] == "continued" and rows[-1][2] == "succeeded"
    assert rows[0][4] == "time limit reached with a checkpoint"
    # The adapter read Slurm's own verdict on the first job (from its history by now).
    first_job = sqlite3.connect(db).execute("select job_id from attempts order by id").fetchone()[0]
    ended = SlurmScheduler(command_timeout_s=30.0).status([first_job])[first_job]
    assert ended.state is JobState.TIMEOUT and "TIMEOUT" in (ended.reason or "")
    state, program, infra, value, metrics = point_row(db)
    assert (state, program, infra, value) == ("done", 0, 0, 4.0)
    assert json.loads(metrics)["steps"] == 100 and json.loads(metrics)["runs"] == len(rows)


def test_a_preempted_trial_continues_from_its_checkpoint(write_config, tmp_path):
    """Its supervisor killed (the local scheduler's NODE_FAIL, as a preemption is elsewhere)
    once the trial has checkpointed: continued, no infrastructure failure charged."""
    path = continued_config(write_config, f"{CHECKPOINTING} --steps 15 --step-seconds 0.2")
    master = subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path),
                               "--quiet"], cwd=ROOT, text=True, stderr=subprocess.PIPE)
    checkpoint = tmp_path / "work" / "trials" / "p0" / "attempt-1" / "checkpoint" / "progress.json"
    states = tmp_path / "work" / "scheduler" / "jobs"
    deadline = time.time() + 30
    while not (checkpoint.exists() and json.loads(checkpoint.read_text())["step"] >= 2):
        assert time.time() < deadline, "the trial did not checkpoint"
        time.sleep(0.05)
    [state_file] = states.glob("*/state.json")
    os.kill(json.loads(state_file.read_text())["supervisor"]["pid"], signal.SIGKILL)
    assert master.wait(120) == 0, master.stderr.read()
    db = tmp_path / "work" / "state.db"
    rows = attempts(db)
    assert [r[2] for r in rows] == ["continued", "succeeded"]
    assert rows[0][4] == "preempted (or its node failed) with a checkpoint"
    state, program, infra, value, metrics = point_row(db)
    assert (state, program, infra) == ("done", 0, 0)
    assert json.loads(metrics)["steps"] == 15 and json.loads(metrics)["runs"] == 2
