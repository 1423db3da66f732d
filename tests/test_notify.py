"""[notify]: validated when the config is read, run without a shell with the experiment's name,
state and best value as arguments, killed after its timeout; tested with real commands that
write files."""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from orchestrator.config import ConfigError, load_config
from orchestrator.notify import NotifySection, notify, program_problem

RECORDER = """#!/bin/sh
# Writes each argument on a line of its own (what a mail or chat command would receive).
for arg in "$@"; do printf '%s\\n' "$arg"; done > "$NOTIFY_OUT.tmp"
mv "$NOTIFY_OUT.tmp" "$NOTIFY_OUT"
echo "sent"
"""


@pytest.fixture
def recorder(tmp_path, monkeypatch) -> Path:
    script = tmp_path / "tell-team.sh"
    script.write_text(RECORDER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("NOTIFY_OUT", str(tmp_path / "received"))
    return script


def test_notifier_receives_name_state_and_best_as_words(recorder, tmp_path):
    section = NotifySection(command="./tell-team.sh --channel 'tuning room'")
    outcome = notify(section, tmp_path, "demo", "finished", 4.24356e-06)
    assert outcome.ok and outcome.message == "notify command ./tell-team.sh ran: sent"
    received = (tmp_path / "received").read_text().splitlines()
    assert received == ["--channel", "tuning room", "demo", "finished", "4.24356e-06"]


def test_shell_syntax_in_the_arguments_stays_text(recorder, tmp_path):
    section = NotifySection(command=["./tell-team.sh", "$(touch pwned)", ";", "rm -rf x"])
    assert notify(section, tmp_path, "a;b", "failed", None).ok
    received = (tmp_path / "received").read_text().splitlines()
    assert received == ["$(touch pwned)", ";", "rm -rf x", "a;b", "failed", "-"]
    assert not (tmp_path / "pwned").exists()


def test_failing_missing_and_hanging_notifiers_are_reported(tmp_path):
    outcome = notify(NotifySection(command="sh -c 'echo bad mailer >&2; exit 3'"), tmp_path,
                     "demo", "finished", 1.0)
    assert not outcome.ok and outcome.message.endswith("exited with 3: bad mailer")
    outcome = notify(NotifySection(command="./nothing-here"), tmp_path, "demo", "failed", None)
    assert not outcome.ok and "could not start" in outcome.message
    started = time.monotonic()
    pid_file = tmp_path / "child.pid"
    outcome = notify(NotifySection(command=["sh", "-c", f"sleep 30 & echo $! > {pid_file}; wait"],
                                   timeout=0.5), tmp_path, "demo", "finished", 1.0)
    assert not outcome.ok and "killed after 0.5 s" in outcome.message
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:          # the notifier's own children die with it
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the notifier's child survived its timeout")


def test_program_must_exist(recorder, tmp_path):
    assert program_problem(NotifySection(command="./tell-team.sh"), tmp_path) is None
    assert program_problem(NotifySection(command="sh -c true"), tmp_path) is None
    problem = program_problem(NotifySection(command="no-such-mailer x"), tmp_path)
    assert problem == "notify.command: no-such-mailer is not an executable program"


@pytest.mark.parametrize("table, message", [
    ('command = ""', "exp.toml: notify.command: the notify command is empty"),
    ("command = \"mail 'unclosed\"", "cannot be split into words"),
    ("command = []", "the notify command is empty"),
    ('command = "mail"\ntimeout = 0', "notify.timeout"),
    ('command = "mail"\nwhen = "always"', "unknown key 'notify.when' (valid keys: command, timeout)"),
])
def test_bad_notify_sections_are_one_line_errors(write_config, table, message):
    path = write_config(extra=f"[notify]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_valid_notify_section_loads(write_config):
    config = load_config(write_config(extra='[notify]\ncommand = "mail -s done me@example.org"\n'))
    assert config.model.notify is not None and config.model.notify.timeout == 30.0


# ---- the master runs it --------------------------------------------------------------------

NOTIFY = '[notify]\ncommand = "./tell-team.sh --channel tuning"\n'
FAILING_SETUP = """
[setup]
command = "{{python}} -m jobs.examples.synthetic_setup --fail-attempts 9"
retries = 0
infra_retries = 0
"""


def events_of(path: Path) -> list[dict]:
    from orchestrator import queries
    return queries.query(str(path), lambda s, exp: queries.events(s, exp, 100))


def test_master_notifies_when_the_experiment_finishes(write_config, recorder, tmp_path, cli):
    path = write_config(extra=NOTIFY)
    proc = cli("start", str(path), env={"NOTIFY_OUT": str(tmp_path / "received")})
    assert proc.returncode == 0, proc.stderr
    received = (tmp_path / "received").read_text().splitlines()
    assert received == ["--channel", "tuning", "t", "finished", "0.0"]
    kinds = [e["kind"] for e in events_of(path)]
    assert kinds[-2:] == ["finished", "notified"]
    assert events_of(path)[-1]["message"] == "notify command ./tell-team.sh ran: sent"


def test_master_notifies_when_the_experiment_fails(write_config, recorder, tmp_path, cli):
    path = write_config(extra=NOTIFY + FAILING_SETUP.format())
    proc = cli("start", str(path), env={"NOTIFY_OUT": str(tmp_path / "received")})
    assert proc.returncode == 1
    assert (tmp_path / "received").read_text().splitlines()[-3:] == ["t", "failed", "-"]
    assert [e["kind"] for e in events_of(path)][-2:] == ["experiment-failed", "notified"]


def test_a_failing_notifier_changes_no_outcome(write_config, tmp_path, cli):
    path = write_config(extra='[notify]\ncommand = "sh -c \'exit 4\'"\n')
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    last = events_of(path)[-1]
    assert last["kind"] == "notify-failed" and "exited with 4" in last["message"]
    status = cli("status", str(path), "--format", "value")
    assert status.stdout.strip() == "finished"


def test_start_refuses_a_notifier_that_cannot_run(write_config, tmp_path, cli):
    path = write_config(extra='[notify]\ncommand = "./no-such-notifier"\n')
    proc = cli("start", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("notify.command: ./no-such-notifier is not an "
                                        "executable program")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "work" / "trials").exists()
