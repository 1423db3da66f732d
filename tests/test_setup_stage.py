"""The two-stage workflow: a setup job runs once, before every trial, and feeds them its outputs."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from tests.conftest import ROOT

SETUP = """
[setup]
command = "{{python}} -m jobs.examples.synthetic_setup --center x=3 --center y=2 --sleep {sleep} --fail-attempts {fail} --record {record}"
time_limit = 30
retries = {retries}
"""
TRIAL = "{python} -m jobs.examples.synthetic --checkpoint {setup_checkpoint}"


def setup_config(write_config, tmp_path, *, sleep=0.0, fail=0, retries=1):
    record = tmp_path / "setup-runs.txt"
    return write_config(command=TRIAL, extra=SETUP.format(sleep=sleep, fail=fail, record=record,
                                                          retries=retries)), record


def test_setup_runs_once_and_feeds_every_trial(write_config, cli, tmp_path):
    path, record = setup_config(write_config, tmp_path, fail=1)
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    assert record.read_text().count("setup attempt") == 2      # one failure, retried once
    status = json.loads(cli("status", str(path), "--json").stdout)
    assert status["best"]["params"] == {"x": 3, "y": 2}       # the centre came from the checkpoint
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    outputs = json.loads(con.execute("select setup_outputs from experiments").fetchone()[0])
    assert outputs["checkpoint"].endswith("checkpoint.json")
    first_trial = con.execute("select min(created_at) from attempts where kind='trial'").fetchone()[0]
    setup_end = con.execute("select max(ended_at) from attempts where kind='setup'").fetchone()[0]
    assert setup_end <= first_trial                            # no trial before the setup succeeded
    params = json.loads((tmp_path / "work/trials/p0-0/attempt-1/params.json").read_text())
    assert params == {"x": 0, "y": 0}


def test_restarted_master_never_reruns_a_successful_setup(write_config, tmp_path):
    path, record = setup_config(write_config, tmp_path)
    crashed = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                             env={**os.environ, "ORCH_CRASH_AT": "after-intent:3"},
                             capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -9                            # killed after the setup, mid-trials
    resumed = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert record.read_text().count("setup attempt") == 1


def test_setup_budget_spent_fails_the_experiment(write_config, cli, tmp_path):
    path, record = setup_config(write_config, tmp_path, fail=5, retries=1)
    proc = cli("start", str(path))
    assert proc.returncode == 1
    assert "setup job failed 2 times" in proc.stderr
    status = json.loads(cli("status", str(path), "--json").stdout)
    assert status["state"] == "failed" and "setup job failed" in status["message"]
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    assert con.execute("select count(*) from attempts where kind='trial'").fetchone()[0] == 0
    again = cli("start", str(path))
    assert again.returncode == 1 and "is failed" in again.stderr
