"""Small file and process helpers shared by the adapters and the PJM emulator."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

FILE_MODE = 0o600


def write_atomic(path: Path, text: str, *, mode: int = FILE_MODE, fsync: bool = True) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never half.

    ``fsync`` makes the new content survive a crash of the machine, not only of the process;
    state that is rewritten many times a second (the emulator's) can do without it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value: Mapping[str, Any], *, fsync: bool = True) -> None:
    write_atomic(path, json.dumps(value, sort_keys=True), fsync=fsync)


def read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        value: dict[str, Any] = json.load(fh)
    return value


class ProcStat(NamedTuple):
    """The fields of ``/proc/<pid>/stat`` the adapters use."""

    state: str          # R, S, D, Z (zombie), X (dead), T (stopped), ...
    ppid: int
    start: int          # start time in clock ticks since boot: tells a reused pid apart

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")


def proc_stat(pid: int | str) -> ProcStat | None:
    """The process's state, parent and start time; None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    # the command name (field 2) may contain blanks and parentheses: split after the last ")"
    fields = text[text.rindex(")") + 2:].split()
    return ProcStat(fields[0], int(fields[1]), int(fields[19]))


def boot_id() -> str:
    """This boot of the machine: pids and start times mean nothing across a reboot."""
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
