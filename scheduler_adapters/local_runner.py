"""The supervisor of one local job: ``python -m scheduler_adapters.local_runner JOBDIR``.

Started detached by ``LocalScheduler.submit``. It records itself in the job's state (pid, kernel
start time, boot id), waits its turn in the queue (first in, first out) and then for a free slot,
runs the job script with bash in a session and process group of its own, enforces the time limit,
and records the outcome. SIGTERM (or SIGINT) means cancel: the job's group gets SIGTERM, then
SIGKILL after the grace period.

The supervisor is a child subreaper (Linux): job processes orphaned by their parents become its
children, so when the job ends it can kill and reap all of them, not only its process group. The
job's first process also gets SIGKILL should the supervisor itself be killed, and every job
process carries a token in its environment, by which the scheduler kills what a dead supervisor
left behind (``local_processes.kill_marked``), even processes that left the job's session.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._files import FILE_MODE, proc_stat, read_json, write_json_atomic
from .base import JobState
from .local import CANCEL_FILE, SCRIPT_FILE, SPEC_FILE, STATE_FILE
from .local_processes import JOB_TOKEN_ENV, process_identity, supervisor_alive

SLOT_POLL_S = 0.05         # how often the head of the queue looks for a free slot
SWEEP_LIMIT_S = 5.0        # how long to keep killing and reaping a finished job's leftovers
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


class _Cancelled(Exception):
    """Raised by the SIGTERM handler while the job is queued, to leave a blocking lock wait."""


class Supervisor:
    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.slot_dir = job_dir.parent.parent / "slots"
        self.queue_dir = job_dir.parent.parent / "queue"
        self.spec: dict[str, Any] = read_json(job_dir / SPEC_FILE)
        self.queue: dict[str, Any] = self.spec["queue"]
        self.record: dict[str, Any] = read_json(job_dir / STATE_FILE)
        self.cancel_requested = False
        self._raise_on_cancel = False
        self._wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)   # any signal, SIGCHLD included, ends a wait in _sleep

    # signals -----------------------------------------------------------------------------------

    def install_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_cancel)
        signal.signal(signal.SIGINT, self._on_cancel)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def _on_cancel(self, signum: int, frame: object) -> None:
        self.cancel_requested = True
        if self._raise_on_cancel:
            self._raise_on_cancel = False   # once: a second signal must not hit the handler code
            raise _Cancelled

    def _sleep(self, seconds: float) -> None:
        """Sleep until the time is up or a signal arrives (the child ending, a cancel)."""
        select.select([self._wake_r], [], [], max(seconds, 0.0))
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    # main --------------------------------------------------------------------------------------

    def run(self) -> None:
        self.install_handlers()
        if JobState(self.record["state"]).terminal:
            return   # given up for lost while we were starting (see SPAWN_GRACE_S)
        queue_entry = self._enter_queue()
        self._write(supervisor=process_identity(os.getpid()))
        slot: int | None = None
        try:
            self._raise_on_cancel = True
            if (self.job_dir / CANCEL_FILE).exists():
                raise _Cancelled
            self._wait_for_turn()
            slot = self._acquire_slot()
            self._raise_on_cancel = False
        except _Cancelled:
            self._raise_on_cancel = False
        self._leave_queue(queue_entry)
        if slot is None or self.cancel_requested:
            self._finish(JobState.CANCELLED, None, "cancelled while pending")
            return
        self._run_job(slot)

    def _enter_queue(self) -> int:
        """Lock our queue entry, before we record ourselves: a later job waits on this lock."""
        fd = os.open(self.queue_dir / self.job_dir.name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     FILE_MODE)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def _leave_queue(self, fd: int) -> None:
        (self.queue_dir / self.job_dir.name).unlink(missing_ok=True)
        os.close(fd)

    def _wait_for_turn(self) -> None:
        """First in, first out: wait until each job queued before this one has left the queue,
        the nearest first, so that only the head of the queue ever looks for a slot."""
        mine = int(self.job_dir.name)
        earlier = [int(e) for e in os.listdir(self.queue_dir) if e.isdigit() and int(e) < mine]
        for other in sorted(earlier, reverse=True):
            self._wait_until_dequeued(str(other))

    def _wait_until_dequeued(self, other: str) -> None:
        other_dir = self.job_dir.parent / other
        while True:   # its supervisor locks its entry before recording itself
            try:
                record = read_json(other_dir / STATE_FILE)
            except FileNotFoundError:
                return
            if record["supervisor"] is not None or JobState(record["state"]).terminal:
                break
            if not supervisor_alive(other_dir, record):
                return   # it never started: nothing to wait for
            time.sleep(SLOT_POLL_S)
        try:
            fd = os.open(self.queue_dir / other, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            os.close(fd)

    def _acquire_slot(self) -> int:
        """Poll until this job holds one of the slot locks; the lock is released at exit."""
        while True:
            for slot in range(self.queue["slots"]):
                fd = os.open(self.slot_dir / str(slot),
                             os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return slot   # fd stays open: we hold the slot until we exit
                except BlockingIOError:
                    os.close(fd)
            time.sleep(SLOT_POLL_S)

    def _run_job(self, slot: int) -> None:
        started_at = time.time()
        node = socket.gethostname()
        token = uuid.uuid4().hex
        try:
            child = self._start_child(slot, token)
        except (OSError, subprocess.SubprocessError) as exc:
            self._write(started_at=started_at, node=node, slot=slot)
            self._finish(JobState.FAILED, None, f"job could not start: {exc}")
            return
        try:
            self._write(state=JobState.RUNNING.value, started_at=started_at, node=node,
                        slot=slot, child=process_identity(child.pid), token=token)
            ended_by = self._wait(child)
        finally:
            self._sweep(child.pid)
        returncode = child.wait()
        exit_code, how = _describe(returncode)
        if ended_by is JobState.TIMEOUT:
            self._finish(ended_by, exit_code,
                         f"time limit of {self.spec['time_limit_s']} s exceeded")
        elif ended_by is JobState.CANCELLED:
            self._finish(ended_by, exit_code, "cancelled")
        elif returncode == 0:
            self._finish(JobState.SUCCEEDED, 0, None)
        else:
            self._finish(JobState.FAILED, exit_code, how)

    def _start_child(self, slot: int, token: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, JOB_TOKEN_ENV: token}   # how a dead supervisor's leftovers are found
        devices = gpu_devices(self.queue["gpus"], self.spec["gpus"], slot)
        if devices is not None:
            env["CUDA_VISIBLE_DEVICES"] = devices
        with _output_files(Path(self.spec["stdout"]), Path(self.spec["stderr"])) as (out, err):
            return subprocess.Popen(
                ["bash", str(self.job_dir / SCRIPT_FILE)], stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, cwd=self.job_dir, env=env, close_fds=True,
                start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))

    def _wait(self, child: subprocess.Popen[bytes]) -> JobState | None:
        """Wait for the job's first process to exit, leaving it unreaped so that its group id
        stays reserved for the sweep. Returns TIMEOUT or CANCELLED if that is why it ended."""
        limit = self.spec["time_limit_s"]
        deadline = time.monotonic() + limit if limit is not None else None
        ended_by: JobState | None = None
        kill_at: float | None = None
        while not _has_exited(child.pid):
            now = time.monotonic()
            if ended_by is None:
                if self.cancel_requested:
                    ended_by = JobState.CANCELLED
                elif deadline is not None and now >= deadline:
                    ended_by = JobState.TIMEOUT
                if ended_by is not None:
                    _signal_group(child.pid, signal.SIGTERM)
                    kill_at = now + self.queue["kill_grace_s"]
            if kill_at is not None and now >= kill_at:
                _signal_group(child.pid, signal.SIGKILL)
                kill_at = None
            wake_at = kill_at if ended_by is not None else deadline
            self._sleep(1.0 if wake_at is None else min(wake_at - now, 1.0))
        return ended_by

    def _sweep(self, leader: int) -> None:
        """Kill and reap what the job leaves behind. Orphaned job processes become our children
        (we are their subreaper), even those that left the job's process group, so the job is
        over when our only child left is its first process, exited but not yet reaped."""
        give_up = time.monotonic() + SWEEP_LIMIT_S
        while time.monotonic() < give_up:
            _signal_group(leader, signal.SIGKILL)
            others = [pid for pid in _own_children() if pid != leader]
            if not others:
                return
            for pid in others:
                _kill_and_reap(pid)
            self._sleep(0.01)
        print(f"job processes survived {SWEEP_LIMIT_S} s of SIGKILL", file=sys.stderr)

    # state -------------------------------------------------------------------------------------

    def _write(self, **changes: Any) -> None:
        self.record.update(changes)
        write_json_atomic(self.job_dir / STATE_FILE, self.record)

    def _finish(self, state: JobState, exit_code: int | None, reason: str | None) -> None:
        self._write(state=state.value, exit_code=exit_code, reason=reason, ended_at=time.time())


def gpu_devices(gpus: list[str], wanted: int, slot: int) -> str | None:
    """CUDA_VISIBLE_DEVICES for a job in ``slot``: slot i gets devices i*wanted, i*wanted+1, ...
    modulo the list. Jobs without GPUs see none, when GPUs are managed at all."""
    if not gpus:
        return None
    return ",".join(gpus[(slot * wanted + k) % len(gpus)] for k in range(wanted))


def _describe(returncode: int) -> tuple[int, str]:
    """Exit code as a shell reports it (128 + N for signal N), and the reason in words."""
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return 128 - returncode, f"killed by signal {name}"
    return returncode, f"exit code {returncode}"


@contextmanager
def _output_files(stdout: Path, stderr: Path) -> Iterator[tuple[int, int]]:
    """The job's stdout and stderr, truncated as a batch system does; one file if both agree."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    out = os.open(stdout, flags, FILE_MODE)
    try:
        err = out if stderr == stdout else os.open(stderr, flags, FILE_MODE)
        try:
            yield out, err
        finally:
            if err != out:
                os.close(err)
    finally:
        os.close(out)


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec function: the job's first process is SIGKILLed when the supervisor dies."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:   # the supervisor died before the line above
            os._exit(1)
    return arm


def _has_exited(pid: int) -> bool:
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _own_children() -> list[int]:
    """Pids of this process's children. Scans /proc: the kernel's per-task children lists are
    not built into every kernel."""
    me = os.getpid()
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and (stat := proc_stat(entry)) is not None and stat.ppid == me]


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, os.WNOHANG)
    except (ProcessLookupError, ChildProcessError):
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m scheduler_adapters.local_runner JOBDIR", file=sys.stderr)
        return 2
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)
    Supervisor(Path(argv[1])).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
