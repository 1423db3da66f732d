"""A new user's first mistakes: each one is named, with the cause, in one place they look."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from orchestrator.outcomes import TAIL_CHARS, output_tail
from tests.conftest import ROOT


def python_m_orchestrator(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m orchestrator` from a user's directory, the project on PYTHONPATH."""
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_search_py_in_the_working_directory_is_named_in_one_line(tmp_path):
    (tmp_path / "search.py").write_text("print('research code')\n")
    proc = python_m_orchestrator(tmp_path, "status", "exp.toml")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""
    assert f"search ({tmp_path / 'search.py'}) hides orchestrator's own package" in proc.stderr
    assert "research code" not in proc.stderr          # the user's file was never imported


def test_without_shadowing_python_m_orchestrator_runs_the_cli(tmp_path):
    proc = python_m_orchestrator(tmp_path, "status", "exp.toml")
    assert proc.returncode == 2 and "exp.toml: config file not found" in proc.stderr


def test_failure_reasons_carry_stderr_and_hints(write_config, cli, tmp_path):
    """Each point's first attempt fails in a common way; the reasons say how to fix it."""
    path = write_config(parameters='mode = { values = ["exit", "nothing", "missing-key"] }',
                        cap=3, retries=1, command="{python} -m jobs.examples.synthetic "
                        "--fail-attempts 1 --fail-mode {mode}")
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    events = json.loads(cli("events", str(path), "--json", "--limit", "100").stdout)
    reasons = [e["message"] for e in events if e["kind"] == "attempt-failed"]
    assert len(reasons) == 3, reasons

    def reason_with(text: str) -> str:
        return next(r for r in reasons if text in r)
    by_mode = {text: reason_with(text) for text in ("exit code 3", "is missing", "has no key")}
    assert "stderr: synthetic: failing on purpose" in by_mode["exit code 3"]
    assert "write one JSON object to $ORCH_RESULT_FILE" in by_mode["is missing"]
    assert "keys present: 'other'; [objective] key is 'loss'" in by_mode["has no key"]


def test_the_stderr_tail_is_bounded(tmp_path):
    log = tmp_path / "stderr.txt"
    log.write_text("".join(f"line {i} " + "x" * 300 + "\n" for i in range(10_000))
                   + "Traceback (most recent call last):\n\nValueError: bad lr\n")
    tail = output_tail(log)
    assert len(tail) <= TAIL_CHARS and tail.endswith("Traceback (most recent call last): | "
                                                     "ValueError: bad lr")
    assert "\n" not in tail
    log.write_bytes(b"\xff\xfe broken utf-8\n")
    assert output_tail(log) == "\ufffd\ufffd broken utf-8"
    assert output_tail(tmp_path / "absent.txt") == ""


def test_readme_tour_uses_the_installed_script_and_known_commands():
    """`make demo` installs .venv; the README's tour must work from there as written."""
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("## Quick tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].split() for line in tour.strip().splitlines()]
    assert lines and all(words[0] == ".venv/bin/orchestrator" for words in lines)
    parser = cli_parser()
    for words in lines:
        parser.parse_args(words[1:])                     # a known command with valid arguments
        assert (ROOT / words[2]).is_file(), words


def cli_parser():
    from orchestrator import cli
    return cli.build_parser()


def test_every_install_hint_names_the_distribution():
    setup = (ROOT / "setup.cfg").read_text()
    name = re.search(r"^name = (\S+)$", setup, re.MULTILINE).group(1)
    assert name == "dsice-orchestrator"
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT,
                             check=True).stdout.split()
    old_hint = re.compile(r"""(?<![-\w])orchestrator\[""")      # an extra of the old name
    offenders = [f for f in tracked if f.endswith((".py", ".md", ".toml", ".cfg", "Makefile"))
                 and Path(ROOT / f).is_file() and f != "tests/test_first_hour.py"
                 and old_hint.search((ROOT / f).read_text(errors="replace"))]
    assert offenders == []
    assert "matplotlib" in setup.split("install_requires", 1)[1].split("[", 1)[0]


def test_install_finds_no_data_folder_as_a_package():
    """setuptools warns about data folders (templates, emulator scripts) that are importable but
    absent from `packages`; namespace discovery lists them, so the install is quiet."""
    from setuptools import find_namespace_packages
    found = set(find_namespace_packages(str(ROOT), include=["orchestrator*", "scheduler_adapters*",
                                                            "search*", "jobs*"],
                                        exclude=["*.__pycache__"]))
    for data_dir in ("scheduler_adapters/templates", "scheduler_adapters/emulators/bin"):
        assert data_dir.replace("/", ".") in found
    assert not any("__pycache__" in p for p in found)
    assert "find_namespace:" in (ROOT / "setup.cfg").read_text()


def test_demo_trials_pretend_to_work_one_to_two_seconds():
    text = (ROOT / "configs" / "demo.toml").read_text()
    assert 'strategy = "dsice"' in text and "--sleep 1 --sleep-spread 1" in text
    assert Path(ROOT / "Makefile").read_text().count("orchestrator.demo_summary") == 1
