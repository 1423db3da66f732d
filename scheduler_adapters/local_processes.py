"""The processes of local jobs: who is alive, and killing what a dead supervisor left.

A supervisor (``local_runner``) is known by its pid, kernel start time and boot id, so a reused
pid is not mistaken for it; one that has not recorded itself yet is found by its command line.
A job's processes are killed by process group and, for those that left it, by the token every
job process carries in its environment. Linux only (reads ``/proc``).
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._files import boot_id, proc_stat

RUNNER_MODULE = "scheduler_adapters.local_runner"
JOB_TOKEN_ENV = "LOCAL_SCHEDULER_JOB_TOKEN"   # set for every job process (see kill_marked)

# A job not yet showing its supervisor's identity, and with no supervisor process found for it,
# is given this long from submission (the instants between fork and exec) before it counts as
# lost: the master died between recording the job and spawning its supervisor.
SPAWN_GRACE_S = 30.0


def process_identity(pid: int) -> dict[str, Any]:
    """What tells this process apart from a later one that reuses its pid."""
    stat = proc_stat(pid)
    if stat is None:
        raise ProcessLookupError(pid)
    return {"pid": pid, "start": stat.start, "boot": boot_id()}


def is_alive(identity: Mapping[str, Any]) -> bool:
    if identity["boot"] != boot_id():
        return False
    stat = proc_stat(identity["pid"])
    return stat is not None and stat.alive and stat.start == identity["start"]


def supervisor_running(job_dir: Path) -> bool:
    """Whether a supervisor for ``job_dir`` runs, found by its command line: it may not have
    recorded itself yet."""
    wanted = [RUNNER_MODULE.encode(), str(job_dir).encode()]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if argv[-2:] == wanted:
            return True
    return False


def supervisor_alive(job_dir: Path, record: Mapping[str, Any]) -> bool:
    """Whether the supervisor of a job not yet ended lives (or may still be starting)."""
    supervisor = record.get("supervisor")
    if supervisor is not None:
        return is_alive(supervisor)
    return (time.time() - record["submitted_at"] < SPAWN_GRACE_S
            or supervisor_running(job_dir))


def kill_marked(token: str | None) -> None:
    """SIGKILL every process that carries the job's token in its environment (``JOB_TOKEN_ENV``,
    inherited by all it starts): a process that left the job's session and group escapes
    ``kill_job_group``, and with the supervisor dead nobody reaps it as a subreaper would."""
    if not token:
        return
    marker = f"{JOB_TOKEN_ENV}={token}".encode()
    for _ in range(5):                  # a process may fork while the scan runs: scan again
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            except OSError:             # gone, or another user's process
                continue
            if marker in environ:
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if not found:
            return
        time.sleep(0.05)


def kill_job_group(child: Mapping[str, Any] | None) -> None:
    """SIGKILL what is left of a job's process group, unless its leader's pid was reused.

    While any member lives, the kernel does not hand the group's id to a new process, so a group
    whose leader is gone is still the job's own."""
    if not child or child["boot"] != boot_id():
        return
    stat = proc_stat(child["pid"])
    if stat is not None and stat.start != child["start"]:
        return
    try:
        os.killpg(child["pid"], signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
