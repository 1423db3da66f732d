"""Helpers for the local scheduler tests."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scheduler_adapters._files import proc_stat
from scheduler_adapters.base import JobState, JobStatus
from scheduler_adapters.local import LocalScheduler

WAIT_S = 15.0


def wait_for(check: Callable[[], Any], timeout: float = WAIT_S, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; that value is returned."""
    give_up = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def wait_state(sched: LocalScheduler, job_id: str, *states: JobState) -> JobStatus:
    def reached() -> JobStatus | None:
        status = sched.status([job_id])[job_id]
        return status if status.state in states else None
    return wait_for(reached, what=f"job {job_id} to reach {[s.value for s in states]}")


def wait_terminal(sched: LocalScheduler, job_id: str) -> JobStatus:
    return wait_state(sched, job_id, *(s for s in JobState if s.terminal))


def pid_alive(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat.alive


def processes_under(root: Path) -> list[int]:
    """Live processes (not zombies) whose command line or working directory is under ``root``:
    supervisors name their job directory, jobs run in their run directory."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me or not pid_alive(int(entry)):
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if str(root).encode() in cmdline or cwd.startswith(str(root)):
            found.append(int(entry))
    return found
