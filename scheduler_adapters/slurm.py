"""Slurm adapter: sbatch / squeue / sacct / scancel through the command line.

Polling follows the submitit and Parsl lesson: ONE ``squeue`` call for every tracked job, then
ONE history call (``sacct``) for the jobs the live queue no longer lists, never one call per
job. History comes from the accounting database (plain ``sacct``) or, on clusters without
slurmdbd, from the job-completion file (``sacct -c``, JobCompType=jobcomp/filetxt); which one is
read from ``scontrol show config`` once. Every command run is counted in ``calls`` (by command
name) so tests can hold the adapter to that budget.
"""
from __future__ import annotations

import getpass
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from .base import JobSpec, JobStatus, SchedulerOptionError, SchedulerUnavailable, SubmitLimitReached
from .cli_base import CommandLineScheduler
from .commands import DEFAULT_TIMEOUT_S, CommandResult
from .slurm_formats import (
    ALLOCATION_ID,
    BENIGN_SCANCEL,
    SACCT_FORMAT,
    SQUEUE_FORMAT,
    classify_submit_failure,
    history_mode_from_config,
    parse_sacct,
    parse_sbatch_output,
    parse_squeue,
    scheduler_words,
)

log = logging.getLogger(__name__)

HistoryMode = Literal["auto", "sacct", "jobcomp", "none"]

# --- directives ---------------------------------------------------------------------------------

_WORD_RE = re.compile(r"^[A-Za-z0-9_.:+/-]+$")   # partition, account, qos, gres type
# sbatch reads directives with its own tokenizer and expands %j, %u... in file names: forbid
# the characters that would change what the path means.
_BAD_PATH_CHARS = re.compile(r'["\\%\n\r\x00]')


def _word(option: str, value: str) -> str:
    if not _WORD_RE.match(value):
        raise ValueError(f"invalid Slurm {option} value {value!r}")
    return f"#SBATCH --{option}={value}"


def _path(option: str, path: Path) -> str:
    text = str(path)
    if not path.is_absolute() or _BAD_PATH_CHARS.search(text):
        raise ValueError(
            f"Slurm {option} path must be absolute without quotes, '\\' or '%': {text!r}")
    return f'#SBATCH --{option}="{text}"'


def _validate_extra(lines: Sequence[str]) -> tuple[str, ...]:
    for line in lines:
        if not line.startswith("#SBATCH ") or "\n" in line or "\r" in line or "\x00" in line:
            raise SchedulerOptionError(
                "extra_directives", f"extra_directives: each must be one '#SBATCH ...' line, "
                                    f"got {line!r}")
    return tuple(lines)


def time_limit_minutes(seconds: int) -> int:
    """Slurm limits are whole minutes; round up so a job never gets less than it asked for."""
    if seconds <= 0:
        raise ValueError(f"time limit must be positive, got {seconds} s")
    return math.ceil(seconds / 60)


# --- the adapter --------------------------------------------------------------------------------

class SlurmScheduler(CommandLineScheduler):
    kind = "slurm"
    commands = ("sbatch", "squeue", "sacct", "scancel", "scontrol")
    script_name = "job.slurm.sh"
    unknown_reason = "not in squeue nor in history"

    def __init__(self, *, partition: str | None = None, account: str | None = None,
                 qos: str | None = None, gpu_option: Literal["gres", "gpus"] = "gres",
                 gpu_type: str | None = None, requeue: bool = False,
                 extra_directives: Sequence[str] = (),
                 command_timeout_s: float = DEFAULT_TIMEOUT_S,
                 history: HistoryMode = "auto", history_days: int = 30,
                 commands_dir: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(command_timeout_s=command_timeout_s, commands_dir=commands_dir, env=env)
        for option, value in (("partition", partition), ("account", account), ("qos", qos),
                              ("gpu_type", gpu_type)):
            if value is not None and not _WORD_RE.match(value):
                raise SchedulerOptionError(option, f"{option}: invalid Slurm value {value!r}")
        if gpu_option not in ("gres", "gpus"):
            raise SchedulerOptionError(
                "gpu_option", f"gpu_option must be 'gres' or 'gpus', got {gpu_option!r}")
        if history not in ("auto", "sacct", "jobcomp", "none"):
            raise SchedulerOptionError(
                "history", f"history must be auto, sacct, jobcomp or none, got {history!r}")
        self.partition, self.account, self.qos = partition, account, qos
        self.gpu_option, self.gpu_type, self.requeue = gpu_option, gpu_type, requeue
        self.extra_directives = _validate_extra(extra_directives)
        self.history: HistoryMode = history
        self.history_days = history_days
        self.user = getpass.getuser()

    # -- script

    def directives(self, spec: JobSpec) -> str:
        if spec.cpus < 1 or spec.gpus < 0:
            raise ValueError(f"invalid resources: cpus={spec.cpus} gpus={spec.gpus}")
        lines = [_word("job-name", spec.name),
                 _path("output", spec.stdout_path),
                 _path("error", spec.stderr_path),
                 _path("chdir", spec.workdir),
                 "#SBATCH --ntasks=1",
                 f"#SBATCH --cpus-per-task={int(spec.cpus)}",
                 "#SBATCH --requeue" if self.requeue else "#SBATCH --no-requeue"]
        if spec.time_limit_s is not None:
            lines.append(f"#SBATCH --time={time_limit_minutes(spec.time_limit_s)}")
        if spec.gpus:
            gpus = f"{self.gpu_type}:{int(spec.gpus)}" if self.gpu_type else str(int(spec.gpus))
            lines.append(f"#SBATCH --gres=gpu:{gpus}" if self.gpu_option == "gres"
                         else f"#SBATCH --gpus={gpus}")
        for option, value in (("partition", self.partition), ("account", self.account),
                              ("qos", self.qos)):
            if value is not None:
                lines.append(_word(option, value))
        lines.extend(self.extra_directives)
        return "\n".join(lines)

    def work_dir_problem(self, work_dir: Path) -> str | None:
        if _BAD_PATH_CHARS.search(str(work_dir)):
            return (f"work_dir {str(work_dir)!r}: Slurm directives cannot carry quotes, '\\' "
                    "or '%' in a path")
        return None

    def probe_args(self) -> tuple[str, Sequence[str]]:
        return "squeue", ["-h", "-u", self.user, "-O", "JobID:|"]

    # -- Scheduler interface

    def submit(self, spec: JobSpec) -> str:
        """One ``sbatch --parsable`` of a script written into the workdir; no retries here."""
        script = self.write_script(spec)
        result = self.run("sbatch", ["--parsable", str(script)], cwd=spec.workdir)
        job_id = parse_sbatch_output(result.stdout) if result.returncode == 0 else None
        if job_id is not None:
            return job_id
        if result.returncode == 0:
            raise SchedulerUnavailable(f"sbatch printed no job id: {_one_line(result)}")
        error = classify_submit_failure(result.output)
        if error is SubmitLimitReached:
            raise SubmitLimitReached(scheduler_words(result.output))   # shown to the user as is
        raise error(f"sbatch failed for {spec.name}: {_one_line(result)}")

    def cancel(self, job_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return
        result = self.run("scancel", ids)
        # Already finished or purged jobs are fine (idempotent); anything else is not.
        errors = [ln for ln in result.stderr.splitlines()
                  if "error" in ln.lower() and not BENIGN_SCANCEL.search(ln)]
        if errors or (result.returncode != 0 and not result.stderr.strip()):
            raise SchedulerUnavailable(
                f"scancel failed (exit {result.returncode}): {' | '.join(errors)[:500]}")

    def user_active_jobs(self) -> int:
        """This user's pending, configuring, running, completing or suspended jobs in the
        partition (every partition when none is configured)."""
        partition = ["-p", self.partition] if self.partition else []
        result = self.run("squeue", ["-h", "-u", self.user, *partition, "-t", "PD,CF,R,CG,S",
                                     "-o", "%i"])
        _check_squeue(result)
        return sum(bool(ALLOCATION_ID.match(line.strip())) for line in result.stdout.splitlines())

    # -- queries

    def _live(self, ids: Sequence[str]) -> dict[str, JobStatus]:
        result = self.run("squeue", ["-h", "-t", "all", "-j", ",".join(ids), "-O", SQUEUE_FORMAT])
        if result.returncode != 0 and "Invalid job id specified" in result.stderr:
            if len(ids) == 1:
                # Slurm 22.05 fails a lone purged id (several ids just filter): the job is no
                # longer live, which the history query settles.
                return {}
            # Versions that fail the whole batch on one purged id: list this user's jobs.
            result = self.run("squeue", ["-h", "-t", "all", "-u", self.user, "-O", SQUEUE_FORMAT])
        _check_squeue(result)
        return parse_squeue(result.stdout)

    def _history(self, ids: Sequence[str]) -> dict[str, JobStatus]:
        return {k: st for k, (_, st) in self._sacct(["-j", ",".join(ids)]).items()}

    def _names_live(self, names: Sequence[str]) -> list[tuple[str, str]]:
        result = self.run("squeue", ["-h", "-t", "all", "-u", self.user, "-n", ",".join(names),
                                     "-O", "JobID:|,Name:|"])
        _check_squeue(result)
        rows = []
        for line in result.stdout.splitlines():
            job_id, _, rest = line.partition("|")
            if ALLOCATION_ID.match(job_id.strip()):
                rows.append((rest.split("|", 1)[0].strip(), job_id.strip()))
        return rows

    def _names_history(self, names: Sequence[str]) -> list[tuple[str, str]]:
        window = f"now-{self.history_days}days"
        history = self._sacct(["-u", self.user, "-S", window, "--name", ",".join(names)])
        return [(name, job_id) for job_id, (name, _) in history.items()]  # sacct -c ignores --name

    def _history_mode(self) -> Literal["sacct", "jobcomp", "none"]:
        if self.history == "auto":
            result = self.run("scontrol", ["show", "config"])
            if result.returncode != 0:
                raise SchedulerUnavailable(f"scontrol show config failed: {result.output[:300]}")
            self.history = history_mode_from_config(result.stdout)
            log.info("slurm history source: %s", self.history)
        return self.history

    def _sacct(self, selection: Sequence[str]) -> dict[str, tuple[str, JobStatus]]:
        mode = self._history_mode()
        if mode == "none":
            return {}
        result = self.run("sacct", [*(["-c"] if mode == "jobcomp" else ["-X"]), "-P", "-n",
                                    *selection, f"--format={SACCT_FORMAT}"])
        if result.returncode != 0:
            # Never turn a failed query into verdicts: the caller retries later.
            raise SchedulerUnavailable(
                f"sacct failed (exit {result.returncode}): {result.output[:300]}")
        return parse_sacct(result.stdout)


def _check_squeue(result: CommandResult) -> None:
    if result.returncode != 0:
        raise SchedulerUnavailable(
            f"squeue failed (exit {result.returncode}): {result.output[:300]}")


def _one_line(result: CommandResult) -> str:
    return result.output.replace("\n", " | ")[:500] or f"exit status {result.returncode}"
