"""The master's small file helpers: owner-only directories, atomic writes, process start times.

The /proc reader is the adapters' (``scheduler_adapters._files.proc_stat``): one parser of
``/proc/<pid>/stat`` in the repository. The atomic write is the master's own (``workdir``): it
writes where a trial or another user may have planted links, so it never follows one.
"""
from __future__ import annotations

import os
from pathlib import Path

from scheduler_adapters._files import proc_stat

from .workdir import write_private_at


def private_mkdir(path: Path, root: Path) -> None:
    """Create ``path`` and its missing parents below ``root`` owner-only, whatever the umask."""
    missing = []
    current = path
    while current != root and not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)


def write_atomic(path: Path, text: str, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``text`` in one step, owner-only (``workdir.write_private_at`` in
    the directory of ``path``): never through a symlink at ``path`` or at its temporary file."""
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        write_private_at(directory, path.name, text, fsync=fsync)
    finally:
        os.close(directory)


def process_start_time(pid: int) -> float | None:
    """Start time of a process in clock ticks since boot (Linux), to detect pid reuse."""
    stat = proc_stat(pid)
    return None if stat is None else float(stat.start)
