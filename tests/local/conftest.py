"""Fixtures for the local scheduler tests: real supervisors and jobs under ``tmp_path``, and a
teardown that cancels every job and fails the test if any process of it is left running."""
from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler_adapters.base import JobSpec
from scheduler_adapters.local import LocalScheduler

from ..adapters.helpers import poll, wait_until
from .local_helpers import processes_under


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state"
    yield path
    sched = LocalScheduler(path)
    jobs = [p.name for p in (path / "jobs").iterdir()] if (path / "jobs").exists() else []
    sched.cancel(jobs)
    wait_until(sched, jobs)
    sched.close()
    try:
        poll(lambda: not processes_under(tmp_path), timeout=5.0, what="no processes left")
    except AssertionError:
        leftovers = processes_under(tmp_path)
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        pytest.fail(f"processes left behind: {leftovers}")


@pytest.fixture
def make_scheduler(state_dir: Path) -> Iterator[Callable[..., LocalScheduler]]:
    made: list[LocalScheduler] = []

    def make(**options: Any) -> LocalScheduler:
        sched = LocalScheduler(state_dir, **{"kill_grace_s": 0.5, **options})
        made.append(sched)
        return sched
    yield make
    for sched in made:
        sched.close()


@pytest.fixture
def shell_job(tmp_path: Path) -> Callable[..., JobSpec]:
    """A job running a bash snippet in its own run directory ``tmp_path/runs/<name>``."""
    def make(name: str, script: str, **fields: Any) -> JobSpec:
        workdir = tmp_path / "runs" / name
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return JobSpec(name=name, command=("bash", "-c", script), workdir=workdir, **fields)
    return make
