"""``[scheduler] cap_scope = "user"``: the cap holds the user's other jobs in the same queue.

A job submitted from outside the experiment (by hand, with the scheduler's own command) holds
one slot of the queue; with a cap of 3 the experiment then never runs more than 2 trials at
once. On the PJM emulator (every run) and on real Slurm (CI); DRMAA cannot count the user's jobs
and the config says so."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.config import ConfigError, load_config
from orchestrator.simulate import run_simulation
from scheduler_adapters.emulators import BIN_DIR
from scheduler_adapters.emulators.pjm import PJMEmulator
from scheduler_adapters.pjm import PJMScheduler
from scheduler_adapters.slurm import SlurmScheduler
from tests.conftest import ROOT
from tests.test_simulate import OBJECTIVE, SMALL

CAP = 3
POINTS = "x = { values = [0, 1, 2, 3, 4, 5] }"


def user_scoped(write_config, tmp_path: Path, kind: str, options: str) -> Path:
    path = write_config(parameters=POINTS, cap=CAP, poll=0.1,
                        command="{python} -m jobs.examples.synthetic --sleep 1 "
                                f"--record {tmp_path / 'runs.txt'}",
                        scheduler_extra=f'cap_scope = "user"\noptions = {options}')
    path.write_text(path.read_text().replace('kind = "local"', f'kind = "{kind}"'))
    return path


def most_at_once(record: Path) -> int:
    """The most trials that ran at the same instant, from the trials' own start/end times."""
    spans = [tuple(map(float, line.split(" ", 2)[:2])) for line in record.read_text().splitlines()]
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def run_to_the_end(path: Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path), "--quiet"],
                          cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_user_scope_on_pjm_leaves_the_slot_of_an_outside_job(write_config, tmp_path):
    emulator = PJMEmulator(tmp_path / "pjm-state")
    emulator.configure(user="user1")
    env = {"PJM_EMULATOR_DIR": str(emulator.root), "PJM_EMULATOR_PYTHON": sys.executable}
    try:
        outside = tmp_path / "outside.sh"
        outside.write_text("#!/bin/bash\nsleep 120\n")
        submitted = subprocess.run([str(BIN_DIR / "pjsub"), "-L", "rscgrp=cx-share,gpu=1",
                                    str(outside)], cwd=tmp_path, capture_output=True, text=True,
                                   env={**os.environ, **env}, timeout=30)
        assert submitted.returncode == 0, submitted.stderr
        adapter = PJMScheduler(rscgrp="cx-share", commands_dir=BIN_DIR, env={**os.environ, **env})
        assert adapter.user_active_jobs() == 1
        assert PJMScheduler(rscgrp="cx-small", commands_dir=BIN_DIR,
                            env={**os.environ, **env}).user_active_jobs() == 0   # other group
        path = user_scoped(write_config, tmp_path, "pjm",
                           f'{{ rscgrp = "cx-share", gpus = 1, commands_dir = "{BIN_DIR}" }}')
        run_to_the_end(path, env)
        assert most_at_once(tmp_path / "runs.txt") == CAP - 1
        assert adapter.user_active_jobs() == 1          # the outside job was left alone
    finally:
        emulator.shutdown()


def test_user_scope_on_the_local_scheduler_counts_its_own_queue(write_config, tmp_path):
    path = user_scoped(write_config, tmp_path, "local", "{}")
    run_to_the_end(path)
    assert most_at_once(tmp_path / "runs.txt") == CAP
    status = subprocess.run([sys.executable, "-m", "orchestrator", "status", str(path), "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)["evaluations"] == 6


def test_a_scheduler_that_cannot_count_the_users_jobs_is_refused(write_config, cli):
    path = write_config(scheduler_extra='cap_scope = "user"')
    path.write_text(path.read_text().replace('kind = "local"', 'kind = "drmaa"'))
    with pytest.raises(ConfigError, match=r"scheduler\.cap_scope: kind 'drmaa' cannot count"):
        load_config(path)
    proc = cli("start", str(path))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "scheduler.cap_scope" in lines[0], \
        proc.stderr
    checked = cli("check", str(path))
    assert checked.returncode == 2 and "scheduler.cap_scope: kind 'drmaa'" in checked.stdout
    assert load_config(write_config("ok.toml")).model.scheduler.cap_scope == "experiment"


@pytest.mark.slurm
def test_user_scope_on_real_slurm_leaves_the_slot_of_an_outside_job(write_config, tmp_path):
    if not os.environ.get("SLURM_CONF"):
        if os.environ.get("REQUIRE_SLURM") == "1":
            pytest.fail("REQUIRE_SLURM=1 but Slurm is not running (scripts/slurm-start.sh)")
        pytest.skip("no Slurm: eval \"$(bash scripts/slurm-start.sh)\" to run this")
    partition = os.environ.get("LOCAL_SLURM_PARTITION", "debug")
    adapter = SlurmScheduler(partition=partition, command_timeout_s=30.0)
    before = adapter.user_active_jobs()
    outside = subprocess.run(["sbatch", "--parsable", "-p", partition, "-J", "outside-cap-scope",
                              "-o", "/dev/null", "--wrap", "sleep 300"],
                             capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    try:
        assert adapter.user_active_jobs() == before + 1
        path = user_scoped(write_config, tmp_path, "slurm", f'{{ partition = "{partition}" }}')
        run_to_the_end(path)
        most = most_at_once(tmp_path / "runs.txt")
        assert 1 <= most <= CAP - 1
        # (Other jobs of this user, of another test run on the same cluster, hold slots too.)
        assert most == CAP - 1 or before > 0
    finally:
        subprocess.run(["scancel", outside], capture_output=True, timeout=30)


def test_a_simulated_campaign_is_the_same_in_either_scope(tmp_path):
    """The virtual cluster runs the experiment's jobs only: "user" counts the same jobs."""
    (tmp_path / "objective.py").write_text(OBJECTIVE)
    reports = {}
    for scope in ("experiment", "user"):
        path = tmp_path / f"{scope}.toml"
        path.write_text(textwrap.dedent(SMALL).replace(
            "[scheduler]\n", f'[scheduler]\ncap_scope = "{scope}"\n'))
        report = run_simulation(path).report
        reports[scope] = {k: v for k, v in report.items() if k != "experiment"}
    assert reports["user"] == reports["experiment"]
