"""Fixtures for the Slurm adapter tests.

The cluster tests use a running cluster: start one with
``slurm_env=$(bash scripts/slurm-start.sh) && eval "$slurm_env"``. Without a working cluster
they skip, unless REQUIRE_SLURM=1 (CI), where a missing cluster is a failure.
"""
from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scheduler_adapters.slurm import SlurmScheduler
from scheduler_adapters.slurm_formats import history_mode_from_config

from .slurm_helpers import cluster_problem


@dataclass(frozen=True)
class SlurmCluster:
    conf: Path
    node: str
    history: str              # where finished jobs are: "sacct" (slurmdbd), "jobcomp" or "none"
    qos_limits: bool          # slurmctld enforces QOS limits (needs slurmdbd)


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    problem = cluster_problem()
    if problem:
        if os.environ.get("REQUIRE_SLURM") == "1":
            pytest.fail(f"REQUIRE_SLURM=1 but no working Slurm: {problem}", pytrace=False)
        pytest.skip(problem)
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True,
                          check=True, timeout=30).stdout.split()[0]
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                            check=True, timeout=30).stdout
    enforce = re.search(r"^AccountingStorageEnforce\s*=\s*(\S*)", config, re.MULTILINE)
    return SlurmCluster(conf=Path(os.environ["SLURM_CONF"]), node=node,
                        history=history_mode_from_config(config),
                        qos_limits=bool(enforce and "qos" in enforce.group(1).split(",")))


@pytest.fixture
def job_prefix(slurm_cluster: SlurmCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A job-name prefix unique to this test; its jobs still queued or running afterwards are
    cancelled, so a failing test leaves nothing behind on the cluster."""
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    yield prefix
    rows = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True,
                          timeout=30).stdout.split("\n")
    leftover = [r.split()[0] for r in rows if r.strip() and r.split()[1].startswith(prefix)]
    if leftover:
        subprocess.run(["scancel", *leftover], capture_output=True, timeout=30)


@pytest.fixture
def make_scheduler(slurm_cluster: SlurmCluster) -> Callable[..., SlurmScheduler]:
    def make(**options: Any) -> SlurmScheduler:
        options.setdefault("command_timeout_s", 30.0)
        return SlurmScheduler(**options)
    return make


@pytest.fixture
def fake_bin(tmp_path: Path) -> Callable[[str, str], dict[str, str]]:
    """Put a shell script named ``name`` first on PATH; returns the env for the adapter."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)

    def install(name: str, body: str) -> dict[str, str]:
        script = bin_dir / name
        script.write_text("#!/bin/bash\n" + body)
        script.chmod(0o755)
        return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}

    return install
