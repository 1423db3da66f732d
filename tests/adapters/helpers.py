"""The one polling helper of the adapter tests: ``wait_until`` a scheduler's jobs get somewhere."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from scheduler_adapters.base import JobState, JobStatus, Scheduler

T = TypeVar("T")


def terminal(status: JobStatus) -> bool:
    return status.state.terminal


def running(status: JobStatus) -> bool:
    return status.state is JobState.RUNNING


def in_states(*states: JobState) -> Callable[[JobStatus], bool]:
    return lambda status: status.state in states


def wait_until(scheduler: Scheduler, ids: Sequence[str],
               done: Callable[[JobStatus], bool] = terminal, *, timeout: float = 60.0,
               interval: float = 0.2) -> dict[str, JobStatus]:
    """Poll ``status`` until ``done`` holds for every job; their statuses then. Fails when the
    time is up."""
    if not ids:
        return {}
    return poll(lambda: _all_done(scheduler, ids, done), timeout=timeout, interval=interval,
                what=f"jobs {list(ids)} to get there")


def _all_done(scheduler: Scheduler, ids: Sequence[str],
              done: Callable[[JobStatus], bool]) -> dict[str, JobStatus] | None:
    statuses = scheduler.status(ids)
    return statuses if all(done(statuses[i]) for i in ids) else None


def poll(check: Callable[[], T | None], *, timeout: float = 15.0, interval: float = 0.05,
         what: str = "condition") -> T:
    """Call ``check`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
