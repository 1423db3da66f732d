"""The middle layer of every command-line adapter (after Parsl's ``ClusterProvider``).

A batch system driven through commands (``sbatch``/``squeue``, ``pjsub``/``pjstat``, ``qstat``)
needs the same mechanics whatever its formats; they live here once:

- running its commands with a timeout, the configured environment and ``commands_dir``, each
  run counted in ``calls`` (tests hold adapters to their query budget with it);
- writing the job script: the shared template filled with the adapter's ``directives``;
- ``status``: ONE live query for every id, then ONE history query for the ids the live queue no
  longer shows, and UNKNOWN for the rest;
- ``find_by_name``: names in the live queue, then history for the names not live; when a name
  was submitted more than once the newest job (highest id) wins;
- ``check``: the commands exist and a harmless query answers.

A subclass supplies the formats: ``directives``, ``submit`` (classifying the scheduler's
refusals), ``cancel``, and the four queries ``_live``, ``_history``, ``_names_live``,
``_names_history``. A query that fails raises SchedulerUnavailable; it never returns "nothing
there" for a failure.
"""
from __future__ import annotations

import os
import re
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ._files import write_atomic
from .base import JobSpec, JobState, JobStatus, Scheduler, SchedulerMisconfigured, render_script
from .commands import DEFAULT_TIMEOUT_S, CommandResult, command_problem, probe, run_command

_LEADING_NUMBER = re.compile(r"\d+")


class CommandLineScheduler(Scheduler):
    commands: tuple[str, ...] = ()      # every command the adapter runs, for check()
    script_name = "job.sh"              # the job script's name in the run directory
    unknown_reason = "in neither the live queue nor the history"

    def __init__(self, *, command_timeout_s: float = DEFAULT_TIMEOUT_S,
                 commands_dir: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.command_timeout_s = command_timeout_s
        self.commands_dir = None if commands_dir is None else Path(commands_dir)
        self.env = env
        self.calls: Counter[str] = Counter()   # command name -> invocations

    # -- commands

    def program(self, command: str) -> str:
        """What runs for ``command``: the name in ``commands_dir``, or looked up on PATH."""
        return str(self.commands_dir / command) if self.commands_dir else command

    def run(self, command: str, args: Sequence[str], *, cwd: Path | None = None
            ) -> CommandResult:
        """Run one scheduler command (counted); a missing command is SchedulerMisconfigured,
        a hang SchedulerUnavailable, a non-zero exit the caller's to judge."""
        self.calls[command] += 1
        if self.commands_dir is not None and not self.commands_dir.is_dir():
            raise SchedulerMisconfigured(
                f"commands_dir {str(self.commands_dir)!r} is not a directory")
        return run_command([self.program(command), *args], timeout=self.command_timeout_s,
                           env=self.env, cwd=None if cwd is None else str(cwd))

    # -- the job script

    @abstractmethod
    def directives(self, spec: JobSpec) -> str:
        """The scheduler's directive lines for this job (validated, safe to write)."""

    def render(self, spec: JobSpec) -> str:
        return render_script(directives=self.directives(spec), spec=spec)

    def write_script(self, spec: JobSpec) -> Path:
        """The job script, written into the run directory (owner-only, executable)."""
        script = spec.workdir / self.script_name
        write_atomic(script, self.render(spec), mode=0o700)
        return script

    # -- status: live, then history, then UNKNOWN

    @abstractmethod
    def _live(self, ids: Sequence[str]) -> dict[str, JobStatus]:
        """Statuses of these ids that the live queue shows (others may appear: ignored)."""

    @abstractmethod
    def _history(self, ids: Sequence[str]) -> dict[str, JobStatus]:
        """Statuses of these ids from the finished-job history."""

    def _unknown(self, job_id: str) -> JobStatus:
        """A job in neither the live queue nor the history."""
        return JobStatus(job_id, JobState.UNKNOWN, reason=self.unknown_reason)

    def status(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return {}
        wanted = set(ids)
        found = {k: v for k, v in self._live(ids).items() if k in wanted}
        missing = [i for i in ids if i not in found]
        if missing:
            history = self._history(missing)
            found.update({k: v for k, v in history.items() if k in wanted and k not in found})
        return {i: found[i] if i in found else self._unknown(i) for i in ids}

    # -- find_by_name: live, then history; newest wins

    @abstractmethod
    def _names_live(self, names: Sequence[str]) -> Iterable[tuple[str, str]]:
        """(name, job id) of live jobs with one of these names."""

    @abstractmethod
    def _names_history(self, names: Sequence[str]) -> Iterable[tuple[str, str]]:
        """(name, job id) of finished jobs with one of these names."""

    def find_by_name(self, names: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        found = newest_wins(self._names_live(wanted), wanted)
        missing = [n for n in wanted if n not in found]
        if missing:
            found.update(newest_wins(self._names_history(missing), missing))
        return found

    # -- check

    def probe_args(self) -> tuple[str, Sequence[str]] | None:
        """A harmless query (command, args) that shows the scheduler answers; None: none."""
        return None

    def check(self, *, work_dir: Path | None = None) -> list[str]:
        if self.commands_dir is not None and not self.commands_dir.is_dir():
            problems = [f"commands_dir {str(self.commands_dir)!r} is not a directory"]
        else:
            problems = [p for c in self.commands
                        if (p := command_problem(self.program(c), self.env))]
        if work_dir is not None and (problem := self.work_dir_problem(work_dir)):
            problems.append(problem)
        query = self.probe_args()
        if not problems and query is not None:
            command, args = query
            answer = probe([self.program(command), *args], env=self.env, failure_is_outage=True)
            problems += [answer] if answer else []
        return problems

    def work_dir_problem(self, work_dir: Path) -> str | None:
        """Why run directories under ``work_dir`` cannot be used by this scheduler, or None."""
        return None


def job_number(job_id: str) -> int:
    """The leading number of a job id (``123``, ``123_4``, ``123[4]``): later jobs have larger."""
    match = _LEADING_NUMBER.match(job_id)
    return int(match.group()) if match else -1


def newest_wins(rows: Iterable[tuple[str, str]], names: Sequence[str]) -> dict[str, str]:
    """Name -> the newest job id among ``rows`` for each wanted name (a resubmission after a
    lost answer leaves two jobs of one name: the later one is the master's)."""
    wanted = set(names)
    found: dict[str, str] = {}
    for name, job_id in rows:
        if name in wanted and (name not in found or job_number(job_id) > job_number(found[name])):
            found[name] = job_id
    return found
