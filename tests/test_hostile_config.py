"""Hostile configs: refused before anything is created, with one line naming the field."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from orchestrator.config import ConfigError, load_config
from orchestrator.config_model import MAX_VALUES
from orchestrator.constraint import compile_constraint
from orchestrator.trials import setup_values
from tests.conftest import ROOT

SETUP = '\n[setup]\ncommand = "{python} -m jobs.examples.synthetic_setup"\n'


def experiment(line: str) -> dict[str, str]:
    """Overrides that add ``line`` to [experiment] (through the work_dir line of the template)."""
    return {"_experiment": line}


CASES = [
    ({"parameters": "x = { linear = { start = nan, stop = 1, num = 3 } }"},
     "parameters.x.linear.start: Input should be a finite number"),
    ({"parameters": "x = { log = { start = 1, stop = inf, num = 3 } }"},
     "parameters.x.log.stop: Input should be a finite number"),
    ({"command": "   "}, "trial.command: is blank"),
    ({"command": "{python} -c 'print(1)"}, "trial.command: cannot be split into words (No closing quotation)"),
    ({"command": "run {setup_x.__class__}", "extra": SETUP},
     "trial.command: placeholder {setup_x.__class__} is not a plain name"),
    ({"command": "run {x[0]}"}, "trial.command: placeholder {x[0]} is not a plain name"),
    ({"command": "run {}"}, "trial.command: placeholder {} is not a plain name"),
    ({"parameters": "x = { values = [1, 1.0] }"}, "parameters.x: the value list has duplicates"),
    ({"parameters": 'x = { values = [1, "1"] }'}, "parameters.x: the value list has duplicates"),
    ({"parameters": "x = { linear = { start = 1, stop = 1.000000000001, num = 5 } }"},
     "parameters.x: the linear range gives the value 1.0 more than once"),
    ({"parameters": "x = { log = { start = 1, stop = 1.0000000000001, num = 3 } }"},
     "parameters.x: the log range gives the value 1.0 more than once"),
    ({"parameters": "block = { values = [1] }\nBLOCK = { values = [2] }", "command": "run"},
     "parameters: 'block' and 'BLOCK' differ only in case (both would be ORCH_PARAM_BLOCK)"),
    ({"parameters": '"x\\n" = { values = [1] }', "command": "run"}, "parameter name 'x\\n' must match"),
    ({"parameters": "x = { linear = { start = 0, stop = 1, num = 10000000 } }"},
     f"parameters.x.linear.num: Input should be less than or equal to {MAX_VALUES}"),
    ({"parameters": f"x = {{ values = [{', '.join(map(str, range(MAX_VALUES + 1)))}] }}"},
     f"parameters.x: more than {MAX_VALUES} values"),
    ({"search_extra": 'constraint = "x +"'}, "search.constraint: not a valid expression"),
    ({"search_extra": 'constraint = "__import__(\'os\')"'}, "search.constraint: only abs, min"),
    (experiment('database = "not a url"'), "experiment.database: 'not a url' is not a database URL"),
    (experiment('database = "nosuchdb://u@h/db"'), "experiment.database: unknown database kind 'nosuchdb'"),
    (experiment('database = "postgresql+pg8000://u@h/db"'),
     "experiment.database: the driver for 'postgresql+pg8000' is not installed (pg8000)"),
    ({"time_limit": "inf"}, "trial.time_limit: Input should be a finite number"),
    ({"time_limit": "nan"}, "trial.time_limit: Input should be a finite number"),
    ({"poll": "inf"}, "scheduler.poll_interval: Input should be a finite number"),
    ({"poll": "1e300"}, "scheduler.poll_interval: Input should be less than or equal to 86400"),
    (experiment("lease_timeout = inf"), "experiment.lease_timeout: Input should be a finite number"),
    ({"_work_dir": "runs/{"}, "experiment.work_dir: bad placeholder syntax (Single '{' encountered"),
    ({"_work_dir": "runs/{name.__class__}"},
     "experiment.work_dir: only the placeholder {name} may be used, not {name.__class__}"),
    ({"_work_dir": "runs/{user}"}, "experiment.work_dir: only the placeholder {name} may be used"),
    ({"strategy": "dsice", "search_extra": 'options = { alpha = "high" }'},
     "search.options.alpha: must be a number, got 'high'"),
    ({"strategy": "random", "search_extra": "options = { max_evaluations = 2.5 }"},
     "search.options.max_evaluations: must be a whole number, got 2.5"),
    ({"strategy": "dsice", "search_extra": "options = { restart_early = 1 }"},
     "search.options.restart_early: must be true or false, got 1"),
]


@pytest.fixture
def hostile_config(write_config):
    def write(overrides: dict[str, str]):
        fields = {k: v for k, v in overrides.items() if not k.startswith("_")}
        path = write_config(**fields)
        text = path.read_text()
        if "_work_dir" in overrides:
            text = text.replace('work_dir = "work"', f'work_dir = "{overrides["_work_dir"]}"')
        if "_experiment" in overrides:
            text = text.replace('work_dir = "work"', f'work_dir = "work"\n{overrides["_experiment"]}')
        path.write_text(text)
        return path
    return write


@pytest.mark.parametrize("overrides, expected", CASES, ids=[c[1][:40] for c in CASES])
def test_hostile_config_is_refused_naming_the_field(hostile_config, overrides, expected):
    path = hostile_config(overrides)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert expected in message and message.startswith(f"{path}: ")
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("overrides, expected", [CASES[0], CASES[3], CASES[17], CASES[25]])
def test_cli_refuses_with_one_line_and_exit_2(hostile_config, cli, tmp_path, overrides, expected):
    path = hostile_config(overrides)
    proc = cli("start", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not (tmp_path / "work").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("expression", ["a ** 9999999999 > 0", "9 ** 9 ** 9 > 1",
                                        "'x' * 10 ** 9 == ''", "[0] * 999999999 == []",
                                        "(a * a) ** 99999999 > 0"])
def test_constraint_arithmetic_is_bounded(expression):
    """Run in a child with a timeout: unbounded, these hang or exhaust memory."""
    code = ("from orchestrator.constraint import compile_constraint as c; "
            f"print(c({expression!r}, ('a',))({{'a': 3}}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=20)
    assert proc.stdout.strip() == "False", proc.stderr


def test_constraint_arithmetic_still_works():
    check = compile_constraint("a ** 3 == 27 and a * 2 < 7 and 'ab' * 2 == 'abab'", ("a",))
    assert check({"a": 3}) and not check({"a": 2})


def test_master_with_an_explosive_constraint_finishes(write_config, cli, tmp_path):
    """The constraint of the issue, on a real master: the points it makes invalid are skipped."""
    path = write_config(parameters="x = { values = [0, 1, 2, 3] }",
                        search_extra='constraint = "x ** 9999999999 > 0 or x < 2"')
    proc = cli("start", str(path), timeout=60)
    assert proc.returncode == 0, proc.stderr
    keys = sqlite3.connect(tmp_path / "work" / "state.db").execute(
        "select key from points order by key").fetchall()
    assert keys == [("0",), ("1",)]          # 2 ** huge and 3 ** huge: invalid, not a hang


def test_setup_output_names_must_be_whole_identifiers():
    """``$`` matches before a trailing newline: "a\\n" used to pass as an identifier and become
    an environment variable name with a newline in every trial's job script."""
    assert setup_values({"a\n": 1, "b": 2, "c d": 3}) == {"b": "2"}
