"""Helpers for the local scheduler tests."""
from __future__ import annotations

import os
from pathlib import Path

from scheduler_adapters._files import proc_stat


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
