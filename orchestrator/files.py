"""The master's small file helpers: owner-only directories, atomic writes, the /proc reader."""
from __future__ import annotations

import os
from pathlib import Path


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
    """Replace ``path`` with ``text`` in one step, owner-only: readers see the old file or the
    new one, never a part. The temporary file is created afresh and never through a symlink,
    and the rename replaces a symlink at ``path`` rather than writing where it points.
    ``fsync``: the content is on disk before the rename (survives a node failure)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink()                  # left by a crash (or planted): never write through it
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def process_start_time(pid: int) -> float | None:
    """Start time of a process in clock ticks since boot (Linux), to detect pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return float(fields[19])
    except (OSError, IndexError, ValueError):
        return None
