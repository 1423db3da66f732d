"""The work directory and run directories, written so that nobody can redirect the writes.

Another user who can write into the work directory could plant symbolic links where the master
is about to write (``master.log`` pointing at the owner's ``~/.bashrc``, say), and a trial, which
may write anything into its own run directory, could replace the next attempt's directory with
a link to elsewhere. So:

- a work directory that exists already must belong to the user and not be writable by group or
  others; the master refuses it otherwise (``WorkDirUnsafe``) rather than repairing it, because
  once others could write into it they may have planted links already; the files the master
  writes at its top (``state.db``, ``master.log``, ``master.pid``, ``master.out``) must not be
  symbolic links;
- run directories are created and entered one component at a time with ``O_NOFOLLOW``, and
  files in them are written through that directory's descriptor, so a link anywhere below the
  work directory makes the write fail instead of following it.
"""
from __future__ import annotations

import errno
import io
import logging
import os
import stat
from pathlib import Path

from . import exitcodes
from .errors import OrchestratorError

TOP_FILES = ("state.db", "master.log", "master.pid", "master.out", ".write-test")
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class WorkDirUnsafe(OrchestratorError):
    """The work directory could be tampered with by others; the message says how and what to do."""

    code = exitcodes.USAGE


class RunDirRedirected(ValueError):
    """A run directory (or a directory above it) is a symbolic link: the attempt is refused, as
    a program failure, since only a trial could have put the link there."""


def check_work_dir(path: Path) -> None:
    """Refuse an existing work directory others can write to, or links where the master writes."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        raise WorkDirUnsafe(f"work directory {path} is not writable: not a directory")
    if info.st_uid != os.geteuid():
        raise WorkDirUnsafe(f"work directory {path} belongs to uid {info.st_uid}, not to you "
                            f"(uid {os.geteuid()}); use a directory of your own")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise WorkDirUnsafe(f"work directory {path} is writable by group or others (mode "
                            f"{stat.S_IMODE(info.st_mode):04o}): others could have planted links "
                            f"in it; check its contents, then `chmod go-w {path}`")
    for name in TOP_FILES:
        if (path / name).is_symlink():
            raise WorkDirUnsafe(f"{path / name} is a symbolic link; the master does not write "
                                "through links (remove it)")


def open_private_dir(path: Path, root: Path) -> int:
    """A descriptor of ``path`` (below ``root``), creating the missing components owner-only
    (whatever the umask); RunDirRedirected at a symbolic link. The caller closes it."""
    fd = os.open(root, DIR_FLAGS)
    try:
        current = root
        for part in path.relative_to(root).parts:
            current = current / part
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
                created = True
            except FileExistsError:
                created = False
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise RunDirRedirected(f"{current} is a symbolic link or not a directory; "
                                           "the master does not write through it") from None
                raise
            if created:
                os.fchmod(child, 0o700)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_private_at(dir_fd: int, name: str, text: str, *, fsync: bool = False) -> None:
    """Write ``name`` in the directory ``dir_fd`` owner-only and atomically (temporary file, then
    rename): readers see the old file or the new one, never a part. The temporary file is made
    afresh, and a link planted at either name is replaced, never followed. ``fsync``: the content
    is on disk before the rename (survives a node failure)."""
    tmp = f".{name}.tmp"
    try:
        os.unlink(tmp, dir_fd=dir_fd)   # left by a crash (or planted): never write through it
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def make_private_dir_at(dir_fd: int, name: str) -> None:
    """Create the directory ``name`` in ``dir_fd`` owner-only if missing; refuse a link there."""
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    except FileExistsError:
        pass
    os.close(os.open(name, DIR_FLAGS, dir_fd=dir_fd))    # ELOOP or ENOTDIR if not a directory


def set_aside_at(dir_fd: int, name: str, new_name: str) -> None:
    """Rename ``name`` in ``dir_fd`` (a link is renamed, not followed), if it is there."""
    try:
        os.rename(name, new_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def open_append_private(path: Path) -> int:
    """Open a log file for appending, owner-only, refusing a symbolic link at ``path``."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def probe_writable(path: Path) -> None:
    """Create and remove a file in ``path`` (OSError if it cannot be written), through no link."""
    probe = path / ".write-test"
    probe.unlink(missing_ok=True)
    os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    probe.unlink()


class PrivateLogHandler(logging.FileHandler):
    """A FileHandler whose file is owner-only and never reached through a symbolic link."""

    def _open(self) -> io.TextIOWrapper:
        fd = open_append_private(Path(self.baseFilename))
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)
