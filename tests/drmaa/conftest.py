"""Fixtures for the Grid Engine / DRMAA tests.

The drmaa-marked tests need a running Grid Engine and its environment in THIS process's
environment (GLIBC_TUNABLES only works when set before Python starts):

    sge_env=$(bash scripts/sge-start.sh) && eval "$sge_env"
    REQUIRE_DRMAA=1 .venv/bin/pytest tests/drmaa

Without it they skip, unless REQUIRE_DRMAA=1, where a missing Grid Engine fails them.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler_adapters.base import JobSpec
from scheduler_adapters.drmaa_adapter import DRMAAScheduler

from .sge_helpers import grid_engine_problem


@pytest.fixture(scope="session")
def grid_engine() -> None:
    problem = grid_engine_problem()
    if problem is None:
        return
    if os.environ.get("REQUIRE_DRMAA") == "1":
        pytest.fail(f"REQUIRE_DRMAA=1 but Grid Engine is not usable: {problem}")
    pytest.skip(problem)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def scheduler(grid_engine: None, state_dir: Path) -> Iterator[DRMAAScheduler]:
    adapter = DRMAAScheduler(state_dir=state_dir, command_timeout_s=30)
    yield adapter
    adapter.close()


@pytest.fixture
def make_spec(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[..., JobSpec]:
    """JobSpec factory: a fresh owner-only workdir and a name unique to this test run."""
    counter = iter(range(1000))
    stamp = f"{os.getpid()}-{time.monotonic_ns() % 10**9}"

    def make(shell: str, **kwargs: Any) -> JobSpec:
        index = next(counter)
        workdir = tmp_path / f"job{index}"
        workdir.mkdir(mode=0o700)
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", f"t{stamp}-{request.node.name[:24]}-{index}")
        return JobSpec(name=name, command=("/bin/sh", "-c", shell), workdir=workdir, **kwargs)

    return make
