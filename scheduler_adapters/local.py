"""The local scheduler: jobs run as real processes on this machine, queued like a batch system.

Every job gets a supervisor process (``local_runner``), started detached from the master in its own
session, which waits for a free slot, runs the job script, enforces the time limit and records the
outcome. All state lives in files under ``state_dir``, so a master that is killed and restarted
finds its jobs as it would on Slurm: still queued, running, or ended while nobody watched.

Layout of ``state_dir`` (directories 0o700, files 0o600)::

    counter                 the last job id handed out (guarded by flock)
    names/<job name>        the id of the latest job submitted under that name
    queue/<id>              a queued job; its supervisor holds a flock on it until it has a slot
    slots/<i>               holding the flock on slot file i means occupying slot i
    jobs/<id>/spec.json     the job and the queue settings its supervisor needs
    jobs/<id>/job.sh        the job script, rendered from the shared templates/job.sh
    jobs/<id>/state.json    the job's state, always rewritten atomically (tmp + rename)
    jobs/<id>/cancel        present once a cancel was asked for
    jobs/<id>/supervisor.log  the supervisor's own errors

A slot lock dies with its supervisor, so no slot leaks. A supervisor that vanished while its job was
queued or running (killed, or the machine rebooted) is the local analogue of a node failure: the
job is reported ``NODE_FAIL``. Supervisors are identified by pid, kernel start time and boot id, so
a reused pid is not mistaken for a live supervisor. The job's first process dies with its
supervisor; the rest of its process group when the master next asks for its status
(``local_processes``). Linux only (reads ``/proc``).

GPUs: with ``gpus`` configured, a job asking for g GPUs in slot i sees devices i*g, i*g+1, ...
(modulo the list) in CUDA_VISIBLE_DEVICES, and a job asking for none sees none.

Exit codes: a job killed by signal N reports exit code 128 + N, as a shell would, with the signal
named in ``reason``. ``cpus`` is not enforced: one job occupies one slot whatever it asks for.
Queued jobs start in the order of their ids (first in, first out): each supervisor waits, in the
kernel, for the lock of the job queued just before its own. A queued job costs one small waiting
Python process.
All schedulers sharing a ``state_dir`` must agree on ``slots`` and ``gpus``.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._files import FILE_MODE, read_json, write_atomic, write_json_atomic
from .base import (
    JOB_NAME_RE,
    JobRejected,
    JobSpec,
    JobState,
    JobStatus,
    Scheduler,
    SchedulerMisconfigured,
    SchedulerOptionError,
    SchedulerUnavailable,
    render_script,
)
from .commands import command_problem, probe
from .local_processes import (
    RUNNER_MODULE,
    is_alive,
    kill_job_group,
    kill_marked,
    supervisor_alive,
)

# The supervisor imports this package from the same tree as the master.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent

SPEC_FILE = "spec.json"
SCRIPT_FILE = "job.sh"
STATE_FILE = "state.json"
CANCEL_FILE = "cancel"
SUPERVISOR_LOG = "supervisor.log"

DIR_MODE = 0o700

LOST_REASON = "local supervisor died"


def make_dir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


# --- the scheduler -----------------------------------------------------------------------------

class LocalScheduler(Scheduler):
    """Runs at most ``slots`` jobs at once on this machine; see the module docstring."""

    kind = "local"

    def __init__(self, state_dir: Path, slots: int = 1, gpus: Sequence[str] = (),
                 python: str = sys.executable, kill_grace_s: float = 5.0) -> None:
        if slots < 1:
            raise SchedulerOptionError("slots", f"slots must be at least 1, got {slots}")
        if kill_grace_s < 0:
            raise SchedulerOptionError("kill_grace_s",
                                       f"kill_grace_s must not be negative, got {kill_grace_s}")
        # Canonical, so that a restarted master finds supervisors by the path they were given.
        self.state_dir = Path(state_dir).resolve()
        self.slots = slots
        self.gpus = tuple(str(g) for g in gpus)
        self.python = python
        self.kill_grace_s = kill_grace_s
        self._jobs = self.state_dir / "jobs"
        self._names = self.state_dir / "names"
        self._queue = self.state_dir / "queue"
        for directory in (self.state_dir, self._jobs, self._names, self._queue,
                          self.state_dir / "slots"):
            make_dir(directory)
        self._supervisors: list[subprocess.Popen[bytes]] = []   # ours to reap once they end

    # submit ------------------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        self._check_resources(spec)
        self._reap()
        try:
            job_id, job_dir = self._allocate_job_dir()
            self._write_job_files(job_dir, spec)
            write_json_atomic(job_dir / STATE_FILE, {
                "state": JobState.PENDING.value, "submitted_at": time.time(),
                "supervisor": None})
            # The name first: a master that dies right after spawning must still find the job.
            write_atomic(self._names / spec.name, job_id)
            write_atomic(self._queue / job_id, "")
        except OSError as exc:
            raise SchedulerUnavailable(f"cannot write local job files: {exc}") from None
        self._spawn_supervisor(job_id, job_dir, spec.name)
        return job_id

    def _check_resources(self, spec: JobSpec) -> None:
        if self.gpus and spec.gpus > len(self.gpus):
            raise JobRejected(f"job {spec.name} asks for {spec.gpus} GPUs, "
                              f"only {len(self.gpus)} configured")
        if spec.time_limit_s is not None and spec.time_limit_s <= 0:
            raise JobRejected(f"job {spec.name} has a non-positive time limit")

    def _allocate_job_dir(self) -> tuple[str, Path]:
        """The next job id from the counter, and its freshly made directory."""
        fd = os.open(self.state_dir / "counter", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            text = os.read(fd, 64).decode().strip()
            number = int(text) if text else 0
            while True:   # skip ids taken already, should the counter have been lost
                number += 1
                job_dir = self._jobs / str(number)
                try:
                    job_dir.mkdir(mode=DIR_MODE)
                    break
                except FileExistsError:
                    continue
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, f"{number}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return str(number), job_dir

    def _write_job_files(self, job_dir: Path, spec: JobSpec) -> None:
        script = render_script(directives=f"# local job {spec.name}", spec=spec)
        write_atomic(job_dir / SCRIPT_FILE, script)
        write_json_atomic(job_dir / SPEC_FILE, {
            "name": spec.name,
            "command": list(spec.command),
            "workdir": str(spec.workdir),
            "env": dict(spec.env),
            "time_limit_s": spec.time_limit_s,
            "cpus": spec.cpus,
            "gpus": spec.gpus,
            "stdout": str(spec.stdout_path),
            "stderr": str(spec.stderr_path),
            "queue": {"slots": self.slots, "gpus": list(self.gpus),
                      "kill_grace_s": self.kill_grace_s},
        })

    def _spawn_supervisor(self, job_id: str, job_dir: Path, name: str) -> None:
        log_fd = os.open(job_dir / SUPERVISOR_LOG,
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
        try:
            proc = subprocess.Popen(
                [self.python, "-m", RUNNER_MODULE, str(job_dir)],
                stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, cwd=PACKAGE_PARENT,
                close_fds=True, start_new_session=True)
        except OSError as exc:
            # Nothing runs: take the name back so that the master's reconciliation resubmits.
            if self._read_name(name) == job_id:
                (self._names / name).unlink(missing_ok=True)
            self._record_end(job_id, JobState.NODE_FAIL,
                             f"local supervisor could not start: {exc.strerror}")
            error = (SchedulerMisconfigured
                     if isinstance(exc, (FileNotFoundError, PermissionError)) else
                     SchedulerUnavailable)
            raise error(f"cannot start local supervisor with python {self.python!r}: "
                        f"{exc.strerror}") from None
        finally:
            os.close(log_fd)
        self._supervisors.append(proc)

    def _reap(self) -> None:
        """Collect supervisors of ours that ended, so they do not linger as zombies."""
        self._supervisors = [p for p in self._supervisors if p.poll() is None]

    # status ------------------------------------------------------------------------------------

    def status(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        self._reap()
        return {job_id: self._status_one(job_id) for job_id in job_ids}

    def _status_one(self, job_id: str) -> JobStatus:
        record = self._read_state(job_id)
        if record is None:
            return JobStatus(job_id, JobState.UNKNOWN)
        alive = (JobState(record["state"]).terminal
                 or supervisor_alive(self._jobs / job_id, record))
        if not alive:
            record = self._settle_lost(job_id)
        return _to_status(job_id, record)

    def _read_state(self, job_id: str) -> dict[str, Any] | None:
        """The job's state record, None for a job this state_dir never had."""
        if not job_id.isdigit():
            return None
        try:
            return read_json(self._jobs / job_id / STATE_FILE)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SchedulerUnavailable(f"cannot read state of local job {job_id}: {exc}") from None

    def _settle_lost(self, job_id: str) -> dict[str, Any]:
        """Record the end of a job whose supervisor is gone, and kill what it left running."""
        # A supervisor writes the final state before it exits: read again, it may just have.
        record = self._read_state(job_id)
        if record is None or JobState(record["state"]).terminal:
            return record or {"state": JobState.UNKNOWN.value}
        kill_job_group(record.get("child"))
        kill_marked(record.get("token"))
        if (self._jobs / job_id / CANCEL_FILE).exists():
            return self._record_end(job_id, JobState.CANCELLED, "cancelled")
        return self._record_end(job_id, JobState.NODE_FAIL, LOST_REASON)

    def _record_end(self, job_id: str, state: JobState, reason: str) -> dict[str, Any]:
        path = self._jobs / job_id / STATE_FILE
        try:
            record = read_json(path)
            record.update(state=state.value, reason=reason, ended_at=time.time())
            write_json_atomic(path, record)
            (self._queue / job_id).unlink(missing_ok=True)
        except (OSError, ValueError) as exc:
            raise SchedulerUnavailable(f"cannot record end of local job {job_id}: {exc}") from None
        return record

    # cancel ------------------------------------------------------------------------------------

    def cancel(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            record = self._read_state(job_id)
            if record is None or JobState(record["state"]).terminal:
                continue
            # The mark reaches a supervisor that has not yet recorded itself (and so cannot be
            # signalled); it looks for the mark after recording itself.
            write_atomic(self._jobs / job_id / CANCEL_FILE, "")
            record = self._read_state(job_id)
            if record is None or JobState(record["state"]).terminal:
                continue
            supervisor = record.get("supervisor")
            if supervisor is not None and is_alive(supervisor):
                try:
                    os.kill(supervisor["pid"], signal.SIGTERM)
                except ProcessLookupError:
                    self._settle_lost(job_id)
            elif not supervisor_alive(self._jobs / job_id, record):
                self._settle_lost(job_id)

    # find_by_name ------------------------------------------------------------------------------

    def find_by_name(self, names: Iterable[str]) -> dict[str, str]:
        found = {}
        for name in names:
            job_id = self._read_name(name)
            if job_id is not None:
                found[name] = job_id
        return found

    def _read_name(self, name: str) -> str | None:
        if not JOB_NAME_RE.match(name):
            return None
        try:
            return (self._names / name).read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:   # unreadable is no answer: never report it as "not there"
            raise SchedulerUnavailable(f"cannot read local job name {name}: {exc}") from None

    def check(self, *, work_dir: Path | None = None) -> list[str]:
        problem = command_problem(self.python)
        if problem:
            return [f"python option: {problem}"]
        if not os.access(self.state_dir, os.W_OK | os.X_OK):
            return [f"state directory {self.state_dir} is not writable"]
        # the supervisor must import from this tree with this interpreter
        answer = probe([self.python, "-c", f"import {RUNNER_MODULE}"], cwd=str(PACKAGE_PARENT))
        return [f"python option: {answer}"] if answer else []

    def close(self) -> None:
        self._reap()



def _to_status(job_id: str, record: Mapping[str, Any]) -> JobStatus:
    return JobStatus(job_id, JobState(record["state"]), exit_code=record.get("exit_code"),
                     reason=record.get("reason"), node=record.get("node"),
                     started_at=record.get("started_at"), ended_at=record.get("ended_at"))
