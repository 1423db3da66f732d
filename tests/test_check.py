"""`orchestrator check` and the checks `start` makes before it creates anything."""
from __future__ import annotations

import json
import sys

from orchestrator.states import ExperimentState
from scheduler_adapters.emulators import BIN_DIR
from scheduler_adapters.emulators.pjm import PJMEmulator

SYNTHETIC = "{python} -m jobs.examples.synthetic --center x=2 --center y=1"


def test_option_typos_are_all_named_with_the_valid_ones_and_nothing_is_created(
        write_config, cli, tmp_path):
    path = write_config(strategy="dsice", search_extra="options = { alpah = 0.2 }",
                        scheduler_extra="options = { slot = 2 }")
    proc = cli("check", str(path))
    assert proc.returncode == 2
    errors = [line for line in proc.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, proc.stdout
    assert "unknown option 'alpah' for strategy 'dsice' (did you mean 'alpha'?); valid " \
           "options: cap, mode, alpha" in errors[0]
    assert "unknown option 'slot' for kind 'local' (did you mean 'slots'?); valid options: " \
           "slots, gpus, python, kill_grace_s" in errors[1]
    assert not (tmp_path / "work").exists()

    start = cli("start", str(path))
    assert start.returncode == 2 and start.stderr.count("\n") == 1, start.stderr
    assert "did you mean 'alpha'?" in start.stderr and "(and 1 more;" in start.stderr
    assert "__init__" not in start.stderr and "keyword argument" not in start.stderr
    assert not (tmp_path / "work").exists()      # fixing the typo and starting again just works
    path.write_text(path.read_text().replace("alpah", "alpha").replace("slot =", "slots ="))
    assert cli("start", str(path)).returncode == 0


def test_every_config_error_is_reported_at_once(write_config, cli, tmp_path):
    path = write_config(extra="[bogus]\nx = 1\n")
    path.write_text(path.read_text().replace('key = "loss"', 'key = "loss"\nkey2 = 1')
                    .replace("cap = 4", "cap = 0"))
    proc = cli("check", str(path))
    assert proc.returncode == 2
    assert "unknown key 'bogus'" in proc.stdout and "unknown key 'objective.key2'" in proc.stdout
    assert "scheduler.cap: Input should be greater than or equal to 1" in proc.stdout
    assert "3 problems; nothing was created" in proc.stdout


def test_a_missing_scheduler_command_stops_start_with_one_line(write_config, cli, tmp_path):
    path = write_config(scheduler_extra='options = { rscgrp = "cx-share" }')
    path.write_text(path.read_text().replace('kind = "local"', 'kind = "pjm"'))
    proc = cli("start", str(path), timeout=30)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "scheduler pjm is not ready: pjsub is not on PATH" in proc.stderr
    assert "commands_dir" in proc.stderr
    assert not (tmp_path / "work").exists()
    check = cli("check", str(path))
    assert check.returncode == 2 and "error: scheduler pjm: pjsub is not on PATH" in check.stdout


def test_check_shows_the_pjm_job_script_of_the_first_point(write_config, cli, tmp_path):
    emulator = PJMEmulator(tmp_path / "pjm-state")
    emulator.configure(user="user1")
    path = write_config(strategy="dsice", command=SYNTHETIC,
                        scheduler_extra=f'options = {{ rscgrp = "cx-share", '
                                        f'commands_dir = "{BIN_DIR}" }}')
    path.write_text(path.read_text().replace('kind = "local"', 'kind = "pjm"'))
    env = {"PJM_EMULATOR_DIR": str(tmp_path / "pjm-state"), "PJM_EMULATOR_PYTHON": sys.executable}
    try:
        proc = cli("check", str(path), env=env)
        dry = cli("start", str(path), "--dry-run", env=env)
    finally:
        emulator.shutdown()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert dry.returncode == 0 and dry.stdout == proc.stdout
    assert "first point: x=2 y=1" in proc.stdout           # DSICE starts at the centre
    assert "#PJM -L rscgrp=cx-share" in proc.stdout
    assert f"exec {sys.executable} -m jobs.examples.synthetic --center x=2" in proc.stdout
    assert not (tmp_path / "work").exists()


def test_check_warns_about_dollar_brace_and_relative_scripts(write_config, cli, tmp_path):
    (tmp_path / "train.py").write_text("print('train')\n")
    path = write_config(command="{python} train.py --x ${x} --y {y}")
    proc = cli("check", str(path))
    assert proc.returncode == 0, proc.stdout
    assert "warning: trial.command has '${' : placeholders are {name}" in proc.stdout
    assert "'train.py' is relative, and commands run in the run directory" in proc.stdout
    assert "write {config_dir}/train.py" in proc.stdout
    data = json.loads(cli("check", str(path), "--json").stdout)
    assert data["ok"] and len(data["warnings"]) == 2 and data["command"][1] == "train.py"
    assert data["command"][3] == "$0"                       # what the program would have got


def test_run_one_measures_the_first_point_without_creating_the_experiment(
        write_config, cli, tmp_path):
    path = write_config(strategy="dsice", command=SYNTHETIC)
    proc = cli("check", str(path), "--run-one")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run-one: x=2 y=1: loss = 0 (result file ok:" in proc.stdout
    assert not (tmp_path / "work" / "state.db").exists()
    assert list((tmp_path / "work" / "check-runs").glob("*/run/result.json"))


def test_run_one_shows_why_the_result_is_unusable(write_config, cli, tmp_path):
    path = write_config(command="{python} -m jobs.examples.synthetic --fail-attempts 1 "
                                "--fail-mode missing-key")
    proc = cli("check", str(path), "--run-one")
    assert proc.returncode == 1
    assert "has no key 'loss'" in proc.stderr
    assert "keys present: 'other'; [objective] key is 'loss'" in proc.stderr
    broken = write_config("broken.toml", command="{python} -m jobs.examples.synthetic "
                                                 "--fail-attempts 1 --fail-mode exit")
    proc = cli("check", str(broken), "--run-one")
    assert proc.returncode == 1 and "exit code 3" in proc.stderr
    assert "synthetic: failing on purpose" in proc.stderr     # the program's stderr, shown
    assert not (tmp_path / "work" / "state.db").exists()


def test_check_names_what_start_would_refuse_in_an_existing_experiment(write_config, cli):
    path = write_config()
    assert cli("start", str(path)).returncode == 0
    path.write_text(path.read_text().replace("[0, 1, 2, 3]", "[0, 1, 2, 3, 4]"))
    proc = cli("check", str(path))
    assert proc.returncode == 0
    assert "warning: start extends the grid of the existing experiment (x: added 4)" in proc.stdout
    path.write_text(path.read_text().replace("[0, 1, 2, 3, 4]", "[1, 2, 3]"))
    proc = cli("check", str(path))
    assert proc.returncode == 2 and "x: removed 0" in proc.stdout


def test_a_scheduler_broken_between_runs_stops_the_restart_as_it_stops_a_new_start(
        write_config, cli, tmp_path):
    emulator = PJMEmulator(tmp_path / "pjm-state")
    emulator.configure(user="user1")
    path = write_config(command=SYNTHETIC + " --sleep 2",
                        scheduler_extra=f'options = {{ rscgrp = "cx-share", '
                                        f'commands_dir = "{BIN_DIR}" }}')
    path.write_text(path.read_text().replace('kind = "local"', 'kind = "pjm"'))
    env = {"PJM_EMULATOR_DIR": str(tmp_path / "pjm-state"), "PJM_EMULATOR_PYTHON": sys.executable}
    try:
        assert cli("start", str(path), "--detach", env=env).returncode == 0
        assert cli("stop", str(path), "--wait", "--timeout", "60", env=env).returncode == 0
        before = json.loads(cli("events", str(path), "--json", "--limit", "1000").stdout)
        path.write_text(path.read_text().replace(str(BIN_DIR), str(tmp_path / "nowhere")))
        restarts = [cli("start", str(path), *flags, env=env) for flags in ((), ("--detach",))]
    finally:
        emulator.shutdown()
    for proc in restarts:      # the one line a new experiment gets, before any master runs
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stdout == "" and "Traceback" not in proc.stderr
        assert "scheduler pjm is not ready: commands_dir" in proc.stderr
        assert "is not a directory" in proc.stderr and "nothing was started" in proc.stderr
    after = json.loads(cli("events", str(path), "--json", "--limit", "1000").stdout)
    assert after == before                                     # nothing recorded at all
    history = json.loads(cli("history", str(path), "--json").stdout)
    assert all(r["state"] != "failed" for r in history)        # no trial charged with it


def test_a_local_python_option_pointing_nowhere_stops_the_restart_in_one_line(
        write_config, cli, tmp_path):
    path = write_config(command=SYNTHETIC + " --sleep 2")
    assert cli("start", str(path), "--detach").returncode == 0
    assert cli("stop", str(path), "--wait", "--timeout", "60").returncode == 0
    path.write_text(path.read_text().replace("[scheduler]", "[scheduler]\noptions = { python = "
                                             f'"{tmp_path / "nopython"}" }}'))
    proc = cli("start", str(path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"scheduler local is not ready: python option: {tmp_path / 'nopython'} does not " \
           "exist" in proc.stderr
    status = json.loads(cli("status", str(path), "--json").stdout)
    assert status["state"] == ExperimentState.RUNNING and status["failed_points"] == 0
