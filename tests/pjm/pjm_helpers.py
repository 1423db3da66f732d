"""Polling helpers shared by the PJM tests."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from scheduler_adapters.base import JobState, JobStatus
from scheduler_adapters.emulators.pjm import PJMEmulator
from scheduler_adapters.pjm import PJMScheduler


def wait_until(sched: PJMScheduler, ids: Sequence[str],
               done: Callable[[JobStatus], bool] = lambda s: s.state.terminal,
               timeout: float = 20.0) -> dict[str, JobStatus]:
    """Poll ``status`` until ``done`` holds for every job."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = sched.status(ids)
        if all(done(statuses[i]) for i in ids):
            return statuses
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs did not get there in {timeout} s: {statuses}")
        time.sleep(0.1)


def running(status: JobStatus) -> bool:
    return status.state is JobState.RUNNING


def wait_state(pjm: PJMEmulator, jid: str, states: tuple[str, ...],
               timeout: float = 15.0) -> dict[str, Any]:
    """Wait until the emulator has the job in one of these PJM states; return its record."""
    deadline = time.monotonic() + timeout
    while (job := pjm.jobs()[jid])["st"] not in states:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job
