"""Fail fast: a broken trial command stops the experiment after a few jobs, not hundreds."""
from __future__ import annotations

import json
import re
import sqlite3

import pytest

from orchestrator.fail_fast import cause_of

BROKEN = "{python} -m jobs.examples.synthetic --center x=${x} --center y=1"


def attempts_of(tmp_path) -> int:
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    return con.execute("select count(*) from attempts").fetchone()[0]


def test_a_broken_command_stops_after_the_threshold_with_the_stderr_tail(
        write_config, cli, tmp_path):
    path = write_config(command=BROKEN, strategy="dsice", cap=2)
    proc = cli("start", str(path))
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"experiment failed: the first [34] points tried all failed the same way",
                     proc.stderr)
    assert "warning: trial.command has '${'" in proc.stderr      # start warned, too
    assert attempts_of(tmp_path) <= 3 * 2 + 2          # not 12 points x 3 attempts
    status = json.loads(cli("status", str(path), "--json").stdout)
    assert status["state"] == "failed"
    assert "program exited with exit code 1; stderr:" in status["message"]
    assert "could not convert string to float: '$" in status["message"]   # the ${x} typo
    assert "retry CONFIG --all-failed" in status["message"]
    events = json.loads(cli("events", str(path), "--json").stdout)
    assert events[-1]["kind"] == "experiment-failed" and events[-1]["data"] == {"fail_fast": True}
    again = cli("start", str(path))                       # stays failed, says how to go on
    assert again.returncode == 1 and "--fresh" in again.stderr


def test_an_experiment_with_no_successful_evaluation_exits_non_zero(write_config, cli, tmp_path):
    path = write_config(command=BROKEN, retries=0, parameters="x = { values = [0, 1] }")
    path.write_text(path.read_text().replace('name = "t"', 'name = "t"\nfail_fast = 0'))
    proc = cli("start", str(path))
    assert proc.returncode == 1 and "no successful evaluation" in proc.stderr
    assert cli("start", str(path)).returncode == 1        # and it says so again on restart


def test_failures_after_a_success_never_stop_the_search(write_config, cli, tmp_path):
    path = write_config(retries=0, command="{python} -m jobs.examples.synthetic --center x=2 "
                                           "--center y=1 --fail-when x=3", cap=1)
    assert cli("start", str(path)).returncode == 0
    status = json.loads(cli("status", str(path), "--json").stdout)
    assert status["state"] == "finished" and status["failed_points"] == 3


def test_the_cause_ignores_paths_and_the_stderr_tail():
    a = "result file /w/trials/p0-1/attempt-1/result.json is missing; the program must write"
    b = "result file /w/trials/p3-2/attempt-2/result.json is missing; stderr: x=3"
    assert cause_of(a) == cause_of(b) == "result file <path> is missing"
    assert cause_of("program exited with exit code 2; stderr: bad '$1'") \
        == cause_of("program exited with exit code 2; stderr: bad '$2'")
    assert cause_of("program exited with exit code 2") != cause_of("time limit exceeded")


@pytest.mark.parametrize("command, hint", [
    ("{python} -m jobs.examples.synthetic --fail-attempts 9 --fail-mode nothing",
     "the program must write one JSON object to $ORCH_RESULT_FILE"),
    ("{python} -m jobs.examples.synthetic --fail-attempts 9 --fail-mode missing-key",
     "keys present: 'other'; [objective] key is 'loss'"),
    ("{python} train.py --x {x}", "can't open file"),
])
def test_each_first_mistake_stops_after_the_threshold(write_config, cli, tmp_path, command, hint):
    """The issue's cases: no result file, another objective key, a relative script path."""
    (tmp_path / "train.py").write_text("print('never found: commands run in the run dir')\n")
    path = write_config(command=command, strategy="dsice", cap=3)
    proc = cli("start", str(path))
    assert proc.returncode == 1, proc.stderr
    assert attempts_of(tmp_path) <= 3 + 3                     # the threshold, and the cap
    message = json.loads(cli("status", str(path), "--json").stdout)["message"]
    assert "failed the same way and none succeeded (fail_fast = 3)" in message
    assert hint in message
