"""The adapter interface every batch scheduler implements, and the shared job model.

Shape (after Parsl's providers): ``submit`` one job, ``status`` for many jobs in ONE batched
query, ``cancel``, and ``find_by_name`` so that a restarted master can re-find jobs it submitted
before it died (every job carries a name unique to experiment + point + attempt).

Error contract, which the master relies on:
- ``submit`` raises :class:`SubmitLimitReached` when the scheduler refuses because of a per-user
  limit (the master waits and tries later), :class:`SchedulerUnavailable` for a transient failure
  after the adapter's own retries (the master reconciles by name before trying again), and
  :class:`JobRejected` for a permanent refusal of this job (bad resources, bad script).
- ``status`` raises :class:`SchedulerUnavailable` when the query itself fails; it must never
  report jobs as failed because a query failed. A job the adapter cannot find in the live queue
  nor in the scheduler's history is reported as ``JobState.UNKNOWN``.
- ``find_by_name`` returns only what the scheduler answered; when its query fails it raises
  :class:`SchedulerUnavailable`, never an empty "not found".
- ``cancel`` is idempotent (unknown or finished jobs are fine) and raises
  :class:`SchedulerUnavailable` when a cancel command failed after the adapter's own retries.
- Any of them raises :class:`SchedulerMisconfigured` for a problem that affects every job (a
  command not found or not executable, a bad ``commands_dir``, a bad option): retrying cannot help.
"""
from __future__ import annotations

import enum
import functools
import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path


class JobState(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    NODE_FAIL = "node_fail"      # node failure or preemption: not the program's fault
    UNKNOWN = "unknown"          # vanished: neither in the live queue nor in history

    @property
    def terminal(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING)


# Job names and environment keys reach job scripts and command lines: keep them boring.
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class JobSpec:
    """Everything an adapter needs to run one attempt."""

    name: str                      # unique per experiment + point + attempt; <= 63 safe chars
    command: tuple[str, ...]       # argv of the trial program, run in ``workdir``
    workdir: Path                  # the attempt's run directory (exists, owner-only)
    env: Mapping[str, str] = field(default_factory=dict)
    time_limit_s: int | None = None
    cpus: int = 1
    gpus: int = 0
    stdout: Path | None = None     # default: workdir/stdout.txt
    stderr: Path | None = None     # default: workdir/stderr.txt

    def __post_init__(self) -> None:
        if not JOB_NAME_RE.match(self.name):
            raise ValueError(f"invalid job name {self.name!r}")
        if not self.command:
            raise ValueError("empty command")
        for key in self.env:
            if not ENV_KEY_RE.match(key):
                raise ValueError(f"invalid environment variable name {key!r}")
        for text in (*self.command, *self.env.values(), str(self.workdir)):
            if "\x00" in text or "\n" in text:
                raise ValueError(f"newline or NUL in job value {text!r}")

    @property
    def stdout_path(self) -> Path:
        return self.stdout or self.workdir / "stdout.txt"

    @property
    def stderr_path(self) -> Path:
        return self.stderr or self.workdir / "stderr.txt"


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: JobState
    exit_code: int | None = None
    reason: str | None = None      # scheduler's words, for the failure record
    node: str | None = None
    started_at: float | None = None  # epoch seconds, when the scheduler tells
    ended_at: float | None = None


class SchedulerError(Exception):
    """Base of adapter errors."""


class SchedulerUnavailable(SchedulerError):
    """A command failed or timed out transiently; try again later."""


class SubmitLimitReached(SchedulerError):
    """The scheduler refused a submission for a policy reason (per-user or QOS limit,
    reservation, maintenance); the message is the scheduler's own words. Wait and retry."""


class JobRejected(SchedulerError):
    """The scheduler permanently refused this job."""


class SchedulerMisconfigured(SchedulerError):
    """A problem that affects every job: a scheduler command missing or not executable, a bad
    ``commands_dir``, an option the scheduler cannot use. Nothing will work until it is fixed."""


class Unanswered(str):
    """An answer of ``Scheduler.check`` that says the scheduler does not answer now (a query
    that timed out, or failed although its command exists: a daemon down or unreachable), not
    that it is set up wrong. A new experiment is refused for it; a restart goes on, and the
    master re-attaches to the jobs in flight once the scheduler answers."""


class SchedulerOptionError(SchedulerMisconfigured, ValueError):
    """A bad adapter option (unknown, wrong type, or a value the scheduler cannot carry).

    Also a ``ValueError``, so code that validates values with ``except ValueError`` keeps
    working; ``option`` names the offending option."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


class Scheduler(ABC):
    """One batch system. Instances are cheap; all state lives in the scheduler itself."""

    kind: str = "abstract"

    @abstractmethod
    def submit(self, spec: JobSpec) -> str:
        """Submit one job and return the scheduler's job id."""

    @abstractmethod
    def status(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """States of these jobs from ONE batched query (plus one history query for the missing)."""

    @abstractmethod
    def cancel(self, job_ids: Iterable[str]) -> None:
        """Ask the scheduler to cancel these jobs (best effort, idempotent)."""

    @abstractmethod
    def find_by_name(self, names: Iterable[str]) -> dict[str, str]:
        """Map each job name that the scheduler knows (live or in history) to its job id."""

    def user_active_jobs(self) -> int:
        """How many jobs of this user are queued or running in the queue this adapter submits
        to (its partition or resource group), the experiment's own and any others: what
        ``[scheduler] cap_scope = "user"`` holds under the cap. SchedulerUnavailable when the
        query fails; SchedulerMisconfigured where the scheduler cannot say."""
        raise SchedulerMisconfigured(f"scheduler {self.kind} cannot count the user's jobs")

    def check(self, *, work_dir: Path | None = None) -> list[str]:
        """Problems that would stop every job, found without submitting anything: a command
        missing or not answering, a ``work_dir`` this scheduler cannot carry. Empty when fine.
        A scheduler that does not answer now is an ``Unanswered`` item."""
        return []

    def close(self) -> None:
        """Release sessions or connections."""


@functools.cache
def job_template() -> str:
    """The one job-script template every adapter fills (``templates/job.sh``)."""
    return resources.files("scheduler_adapters").joinpath("templates", "job.sh").read_text()


def render_script(*, directives: str, spec: JobSpec) -> str:
    """The job script of ``spec`` under the scheduler's directive lines. Every value is
    shell-quoted here, once."""
    exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in sorted(spec.env.items()))
    return job_template().format(
        directives=directives,
        exports=exports,
        workdir=shlex.quote(str(spec.workdir)),
        command=" ".join(shlex.quote(a) for a in spec.command),
    )
