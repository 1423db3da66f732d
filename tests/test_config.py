"""Config validation: every bad config exits 2 with one line naming the field, creating nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import ConfigError, load_config


def test_ranges_expand_to_tidy_lists(write_config):
    path = write_config(parameters='a = { linear = { start = 0, stop = 1, num = 5 } }\n'
                                   'b = { log = { start = 1e-5, stop = 1e-3, num = 3 } }\n'
                                   'c = { values = ["relu", "gelu"] }')
    config = load_config(path)
    assert config.values == {"a": [0.0, 0.25, 0.5, 0.75, 1.0], "b": [1e-5, 1e-4, 1e-3],
                             "c": ["relu", "gelu"]}
    assert config.shape == (5, 3, 2)
    assert config.work_dir == path.parent / "work"      # relative to the config file


def test_fingerprint_ignores_settings_but_not_the_space(write_config):
    a = load_config(write_config("a.toml"))
    b = load_config(write_config("b.toml", cap=9, poll=3.0, retries=7))
    c = load_config(write_config("c.toml", parameters='x = { values = [0, 1, 2] }\ny = { values = [0, 1, 2] }'))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize("overrides, expected", [
    ({"extra": "[bogus]\nx = 1"}, "unknown key 'bogus' (valid keys: experiment, objective, parameters, scheduler, search, setup, simulate, trial)"),
    ({"search_extra": "colour = 1"}, "unknown key 'search.colour' (valid keys: constraint, mode, options, speculation, speculation_budget, strategy)"),
    ({"parameters": 'x = { valeus = [1] }'}, "unknown key 'parameters.x.valeus' (valid keys: linear, log, values)"),
    ({"cap": '"many"'}, "scheduler.cap: Input should be a valid integer"),
    ({"parameters": 'x = { values = [] }'}, "parameters.x: the value list is empty"),
    ({"parameters": 'x = { values = [1] }\nx = { values = [2] }'}, "duplicate parameter name 'x'"),
    ({"parameters": '"x y" = { values = [1] }'}, "parameter name 'x y' must match"),
    ({"parameters": 'run_dir = { values = [1] }'}, "parameter name 'run_dir' is reserved"),
    ({"direction": "sideways"}, "objective.direction: Input should be 'minimize' or 'maximize'"),
    ({"command": "run {nope}"}, "trial.command: unknown placeholder {nope}"),
    ({"cap": 0}, "scheduler.cap: Input should be greater than or equal to 1"),
    ({"parameters": 'x = { values = ["a;rm -rf /"] }'}, "may only use letters, digits"),
])
def test_bad_config_names_the_field(write_config, cli, tmp_path, overrides, expected):
    path = write_config(**overrides)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)
    proc = cli("start", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert not (tmp_path / "work").exists()          # nothing created


def test_missing_and_unparsable_files(tmp_path, cli):
    proc = cli("start", str(tmp_path / "nope.toml"))
    assert proc.returncode == 2 and "config file not found" in proc.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[experiment\nname=")
    proc = cli("start", str(bad))
    assert proc.returncode == 2 and "invalid TOML" in proc.stderr and len(proc.stderr.splitlines()) == 1
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    proc = cli("start", str(binary))
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr


def test_missing_required_section(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text('[experiment]\nname = "a"\n[objective]\nkey = "k"\n[parameters]\nx = {values=[1]}\n')
    with pytest.raises(ConfigError, match="missing required key 'trial'"):
        load_config(path)
