"""Fixtures for the PJM adapter and emulator tests: one emulator directory per test, whose
jobs are all killed (and checked gone) when the test ends."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scheduler_adapters.base import JobSpec
from scheduler_adapters.emulators import BIN_DIR
from scheduler_adapters.emulators.pjm import PJMEmulator
from scheduler_adapters.pjm import PJMScheduler


@pytest.fixture
def pjm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PJMEmulator]:
    root = tmp_path / "pjm-state"
    monkeypatch.setenv("PJM_EMULATOR_DIR", str(root))
    monkeypatch.setenv("PJM_EMULATOR_PYTHON", sys.executable)
    emulator = PJMEmulator(root)
    emulator.configure(elapse_grace_s=1.0, user="user1")
    yield emulator
    emulator.shutdown()
    assert emulator.live_processes() == []


@pytest.fixture
def sched(pjm: PJMEmulator) -> PJMScheduler:
    return PJMScheduler(rscgrp="cx-share", gpus=1, commands_dir=str(BIN_DIR))  # as from TOML


@pytest.fixture
def make_spec(tmp_path: Path) -> Callable[..., JobSpec]:
    def make(name: str, *command: str, time_limit_s: int | None = 600) -> JobSpec:
        workdir = tmp_path / name
        workdir.mkdir()
        return JobSpec(name=name, command=command, workdir=workdir, time_limit_s=time_limit_s,
                       env={"ORCH_TEST": "it's here"})
    return make


@pytest.fixture
def emulator_cmd(pjm: PJMEmulator,
                 tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run an emulator command (pjsub, pjstat, pjdel) from tmp_path, as a user would."""
    def run(command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN_DIR / command), *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=30)
    return run
