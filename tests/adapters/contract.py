"""The backends the scheduler contract suite (test_contract.py) runs against.

Each backend makes schedulers on one cluster (a fresh instance sees what an earlier one
submitted, as after a master restart), job specs that succeed, fail or run long, a way to wait
(the simulated cluster runs on a virtual clock), and a way to make the scheduler's queries fail
for a while. Local, the PJM emulator and the simulated cluster run in every test run; Slurm and
Grid Engine when their services are there (skipped otherwise, failed under REQUIRE_*).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest

from scheduler_adapters.base import JobSpec, JobStatus, Scheduler
from scheduler_adapters.emulators import BIN_DIR
from scheduler_adapters.emulators.pjm import PJMEmulator

from .helpers import terminal, wait_until

Outcome = Literal["succeed", "fail", "long"]
SCRIPTS: dict[Outcome, str] = {"succeed": "exit 0", "fail": "exit 3", "long": "sleep 60"}


class Backend:
    """A batch system for the contract: override what differs."""

    name = "abstract"
    restartable = True       # a fresh instance finds the jobs of an earlier one

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"c{uuid.uuid4().hex[:6]}-"   # job names unique to this test
        self.made: list[Scheduler] = []

    def scheduler(self) -> Scheduler:
        sched = self._make()
        self.made.append(sched)
        return sched

    def _make(self) -> Scheduler:
        raise NotImplementedError

    def spec(self, name: str, outcome: Outcome) -> JobSpec:
        workdir = self.root / "runs" / name
        workdir.mkdir(mode=0o700, parents=True)
        return JobSpec(name=self.prefix + name, command=("/bin/sh", "-c", SCRIPTS[outcome]),
                       workdir=workdir, time_limit_s=300)

    def wait(self, sched: Scheduler, ids: Sequence[str],
             done: Callable[[JobStatus], bool] = terminal) -> dict[str, JobStatus]:
        return wait_until(sched, ids, done)

    @contextmanager
    def queries_failing(self, sched: Scheduler, ids: Sequence[str]) -> Iterator[Scheduler]:
        """A scheduler of this cluster whose queries fail while the block runs."""
        raise NotImplementedError
        yield sched

    def close(self) -> None:
        for sched in self.made:
            sched.close()


class LocalBackend(Backend):
    name = "local"

    def _make(self) -> Scheduler:
        from scheduler_adapters.local import LocalScheduler
        return LocalScheduler(self.root / "state", slots=2, kill_grace_s=0.5)

    @contextmanager
    def queries_failing(self, sched: Scheduler, ids: Sequence[str]) -> Iterator[Scheduler]:
        # the job records become unreadable: the adapter cannot know how the jobs are
        states = [self.root / "state" / "jobs" / job_id / "state.json" for job_id in ids]
        saved = [path.read_bytes() for path in states]
        for path in states:
            path.write_text("{not json")
        names = self.root / "state" / "names"
        hidden = names.with_name("names-hidden")
        names.rename(hidden)
        names.mkdir()
        for record in hidden.iterdir():
            (names / record.name).mkdir()        # a name record that cannot be read
        try:
            yield sched
        finally:
            for record in names.iterdir():
                record.rmdir()
            names.rmdir()
            hidden.rename(names)
            for path, text in zip(states, saved, strict=True):
                path.write_bytes(text)

    def close(self) -> None:
        sched = self._make()
        jobs = self.root / "state" / "jobs"
        ids = [p.name for p in jobs.iterdir()] if jobs.exists() else []
        sched.cancel(ids)
        wait_until(sched, ids)
        super().close()


class PJMBackend(Backend):
    name = "pjm"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.emulator = PJMEmulator(root / "pjm-state")
        self.emulator.configure(elapse_grace_s=1.0)
        self._env = {**os.environ, "PJM_EMULATOR_DIR": str(self.emulator.root),
                     "PJM_EMULATOR_PYTHON": sys.executable}

    def _make(self) -> Scheduler:
        from scheduler_adapters.pjm import PJMScheduler
        return PJMScheduler(rscgrp="cx-share", commands_dir=BIN_DIR, env=self._env)

    @contextmanager
    def queries_failing(self, sched: Scheduler, ids: Sequence[str]) -> Iterator[Scheduler]:
        self.emulator.outage(600, commands=("pjstat",))
        try:
            yield sched
        finally:
            self.emulator.outage(0)

    def close(self) -> None:
        super().close()
        self.emulator.shutdown()


class SimulatedBackend(Backend):
    """The virtual cluster: nothing runs, time moves only when the test waits."""

    name = "simulated"
    restartable = False      # its cluster lives in the instance

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        from scheduler_adapters.simulated import SimulatedScheduler, VirtualClock
        self.clock = VirtualClock()
        self.cluster = SimulatedScheduler(self.clock, _simulated_objective, result_key="loss",
                                          cap=2, duration_mean_s=60.0)

    def _make(self) -> Scheduler:
        return self.cluster

    def spec(self, name: str, outcome: Outcome) -> JobSpec:
        spec = super().spec(name, outcome)
        # the simulated "program" is the objective of the point's parameters
        (spec.workdir / "params.json").write_text(json.dumps({"outcome": outcome}))
        return spec

    def wait(self, sched: Scheduler, ids: Sequence[str],
             done: Callable[[JobStatus], bool] = terminal) -> dict[str, JobStatus]:
        for _ in range(1000):
            statuses = sched.status(ids)
            if all(done(statuses[i]) for i in ids):
                return statuses
            self.clock.sleep(5.0)
        raise AssertionError(f"simulated jobs never got there: {statuses}")


def _simulated_objective(params: Mapping[str, Any]) -> float:
    if params["outcome"] == "fail":
        raise ValueError("the program failed")
    return 1.0


class SlurmBackend(Backend):
    name = "slurm"

    def _make(self) -> Scheduler:
        from scheduler_adapters.slurm import SlurmScheduler
        return SlurmScheduler(command_timeout_s=30.0)

    @contextmanager
    def queries_failing(self, sched: Scheduler, ids: Sequence[str]) -> Iterator[Scheduler]:
        from scheduler_adapters.slurm import SlurmScheduler
        yield SlurmScheduler(command_timeout_s=30.0, env=_failing_path(self.root, (
            "squeue", "sacct")))

    def close(self) -> None:
        """Cancel what this test left on the shared cluster (its jobs carry its prefix)."""
        rows = [r.split() for r in _run(["squeue", "-h", "-o", "%i %j"]).splitlines()]
        leftover = [r[0] for r in rows if len(r) == 2 and r[1].startswith(self.prefix)]
        if leftover:
            self._make().cancel(leftover)
        super().close()


class GridEngineBackend(Backend):
    name = "sge"

    def _make(self) -> Scheduler:
        from scheduler_adapters.drmaa_adapter import DRMAAScheduler
        return DRMAAScheduler(state_dir=self.root / "drmaa-state", command_timeout_s=30)

    @contextmanager
    def queries_failing(self, sched: Scheduler, ids: Sequence[str]) -> Iterator[Scheduler]:
        # the adapter's query commands inherit the process's PATH
        saved = os.environ["PATH"]
        os.environ["PATH"] = _failing_path(self.root, ("qstat", "qacct"))["PATH"]
        try:
            yield sched
        finally:
            os.environ["PATH"] = saved


def _failing_path(root: Path, commands: Sequence[str]) -> dict[str, str]:
    """An environment whose PATH starts with versions of ``commands`` that cannot reach the
    scheduler's daemon."""
    bin_dir = root / "failing-bin"
    bin_dir.mkdir(exist_ok=True)
    for command in commands:
        script = bin_dir / command
        script.write_text(f"#!/bin/sh\necho '{command}: error: Unable to contact the "
                          "controller (Connection refused)' >&2\nexit 1\n")
        script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _run(argv: Sequence[str]) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30).stdout


def service_problem(name: str) -> str | None:
    """Why the real scheduler ``name`` cannot be used here; None for the emulated ones."""
    if name == "slurm":
        from ..slurm.slurm_helpers import cluster_problem
        return cluster_problem()
    if name == "sge":
        from ..drmaa.sge_helpers import grid_engine_problem
        return grid_engine_problem()
    return None


BACKENDS: dict[str, tuple[type[Backend], str | None]] = {
    # name: (backend, the REQUIRE_* flag that turns its skip into a failure)
    "local": (LocalBackend, None),
    "pjm": (PJMBackend, None),
    "simulated": (SimulatedBackend, None),
    "slurm": (SlurmBackend, "REQUIRE_SLURM"),
    "sge": (GridEngineBackend, "REQUIRE_DRMAA"),
}


def open_backend(name: str, root: Path) -> Backend:
    """The backend, or a skip (a failure under its REQUIRE_* flag) if its service is missing."""
    backend, flag = BACKENDS[name]
    problem = service_problem(name)
    if problem:
        if flag and os.environ.get(flag) == "1":
            pytest.fail(f"{flag}=1 but {name} is not usable: {problem}", pytrace=False)
        pytest.skip(problem)
    return backend(root)
