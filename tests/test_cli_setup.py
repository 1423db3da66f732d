"""The commands that set a user up: `init` writes a starter config the loader accepts and a
master can run, `completion` scripts complete in a real bash, `--version`."""
from __future__ import annotations

import shutil
import subprocess
import tomllib

import pytest

from orchestrator.cli import build_parser
from orchestrator.completion import script
from orchestrator.config import load_config
from orchestrator.version import __version__
from scheduler_adapters import SCHEDULERS

# Two parameters as placeholders (the synthetic program reads them from params.json as well).
COMMAND = ("{python} -m jobs.examples.synthetic --center block=4 --center lr=2 "
           "--seed {block} --sleep 0.{lr}")


@pytest.mark.parametrize("kind", sorted(SCHEDULERS))
def test_init_writes_a_config_the_loader_accepts(kind, tmp_path, cli):
    path = tmp_path / "tune.toml"
    proc = cli("init", str(path), "--command", COMMAND, "--scheduler", kind)
    assert proc.returncode == 0, proc.stderr
    assert f"orchestrator start {path}" in proc.stdout
    config = load_config(path)
    assert config.name == "tune" and config.model.scheduler.kind == kind
    assert config.parameter_names == ("block", "lr")        # the command's placeholders
    assert config.model.trial.command == COMMAND
    text = path.read_text()
    for name, option in SCHEDULERS[kind].options.items():    # every option, with its doc
        assert f"{name} = " in text and option.doc in text
    assert all(len(line) <= 100 for line in text.splitlines() if not line.startswith("command"))


def test_the_starter_config_runs(tmp_path, cli):
    path = tmp_path / "first.toml"
    assert cli("init", str(path), "--command", COMMAND).returncode == 0
    # The starter polls every 5 s, as suits a cluster; this test cannot wait that long.
    path.write_text(path.read_text().replace("poll_interval = 5.0", "poll_interval = 0.1"))
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "finished first: best 0 at block=4 lr=2" in proc.stderr


def test_init_refuses_to_overwrite_and_bad_placeholders(tmp_path, cli):
    path = tmp_path / "tune.toml"
    path.write_text("# mine\n")
    proc = cli("init", str(path), "--command", COMMAND)
    assert proc.returncode == 2 and "exists" in proc.stderr and "--force" in proc.stderr
    assert path.read_text() == "# mine\n"
    assert cli("init", str(path), "--command", COMMAND, "--force").returncode == 0
    assert tomllib.loads(path.read_text())["experiment"]["name"] == "tune"
    proc = cli("init", str(tmp_path / "b.toml"), "--command", "run {bad-name}")
    assert proc.returncode == 2 and "placeholder {bad-name}" in proc.stderr
    proc = cli("init", str(tmp_path / "c.toml"), "--command", "run {x")
    assert proc.returncode == 2 and "bad placeholder syntax" in proc.stderr
    assert not (tmp_path / "b.toml").exists() and not (tmp_path / "c.toml").exists()


def test_init_without_placeholders_names_an_example_parameter(tmp_path, cli):
    path = tmp_path / "plain.toml"
    assert cli("init", str(path), "--command", "{python} train.py").returncode == 0
    assert load_config(path).parameter_names == ("x",)
    assert "params.json" in path.read_text()


def test_version(cli):
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"orchestrator {__version__}"


def complete(words: list[str], tmp_path) -> list[str]:
    """What bash offers after ``words`` (the last one is being typed), run in ``tmp_path``."""
    path = tmp_path / "completion.bash"
    path.write_text(script(build_parser(), "bash"))
    array = " ".join(f"'{w}'" for w in words)
    program = (f"source {path}; COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; "
               "_orchestrator; printf '%s\\n' \"${COMPREPLY[@]}\"")
    proc = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True,
                          cwd=tmp_path, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def test_bash_completes_commands_flags_choices_and_files(tmp_path):
    (tmp_path / "exp.toml").write_text("")
    assert complete(["orchestrator", "st"], tmp_path) == ["start", "status", "stages", "stop"]
    assert "--format" in complete(["orchestrator", "history", "--f"], tmp_path)
    assert complete(["orchestrator", "status", "--format", ""], tmp_path) == [
        "table", "json", "csv", "value"]
    assert complete(["orchestrator", "init", "x.toml", "--scheduler", "s"], tmp_path) == ["slurm"]
    assert complete(["orchestrator", "status", "ex"], tmp_path) == ["exp.toml"]
    assert complete(["orchestrator", "events", "--limit", ""], tmp_path) == []


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_loads(tmp_path):
    path = tmp_path / "_orchestrator"
    path.write_text(script(build_parser(), "zsh"))
    proc = subprocess.run(["zsh", "-f", "-c", f"autoload -U compinit; compinit -u; "
                           f"eval \"$(cat {path})\"; whence -w _orchestrator"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "function" in proc.stdout, proc.stderr
