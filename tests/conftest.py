"""Shared fixtures: experiment configs written into a temporary directory, and the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

try:    # load the Agg backend's C extensions at collection, before the suite loads torch & co.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.backends.backend_agg  # noqa: F401
except ImportError:
    pass

ROOT = Path(__file__).resolve().parents[1]

BASE_CONFIG = """
[experiment]
name = "{name}"
work_dir = "work"

[objective]
key = "loss"
direction = "{direction}"

[parameters]
{parameters}

[trial]
command = "{command}"
time_limit = {time_limit}
retries = {retries}
infra_retries = {infra_retries}

[search]
strategy = "{strategy}"
{search_extra}

[scheduler]
kind = "local"
cap = {cap}
poll_interval = {poll}
{scheduler_extra}
{extra}
"""

DEFAULTS: dict[str, Any] = {
    "name": "t", "direction": "minimize",
    "parameters": 'x = { values = [0, 1, 2, 3] }\ny = { values = [0, 1, 2] }',
    "command": "{python} -m jobs.examples.synthetic --center x=2 --center y=1",
    "time_limit": 30, "retries": 2, "infra_retries": 3, "strategy": "grid", "search_extra": "",
    "cap": 4, "poll": 0.1, "scheduler_extra": "", "extra": "",
}


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config from the template above; keyword arguments override its fields."""
    def write(filename: str = "exp.toml", **overrides: Any) -> Path:
        fields = {**DEFAULTS, **overrides}
        path = tmp_path / filename
        path.write_text(textwrap.dedent(BASE_CONFIG.format(**fields)))
        return path
    return write


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m orchestrator`` as a real subprocess."""
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd or ROOT,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli

