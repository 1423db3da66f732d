"""Slurm adapter: sbatch / squeue / sacct / scancel through the command line.

Polling follows the submitit and Parsl lesson: ONE ``squeue`` call for every tracked job, then
ONE history call (``sacct``) for the jobs the live queue no longer lists, never one call per
job. History comes from the accounting database (plain ``sacct``) or, on clusters without
slurmdbd, from the job-completion file (``sacct -c``, JobCompType=jobcomp/filetxt); which one is
read from ``scontrol show config`` once. Every command run is counted in ``calls`` (by command
name) so tests can hold the adapter to that budget.

Formats (see ../shared/reference/schedulers.md, part B, checked against Slurm 22.05):
- ``sbatch --parsable`` prints ``jobid`` or ``jobid;cluster``.
- ``squeue -O exit_code`` is the raw wait status (``exit << 8 | signal``).
- ``sacct`` ExitCode is ``exit:signal``; its State may read ``CANCELLED by <uid>``; with
  ``-c`` a requeued job has one row per run, so the last row of an id wins.
"""
from __future__ import annotations

import getpass
import logging
import math
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

from .base import (JobRejected, JobSpec, JobState, JobStatus, Scheduler, SchedulerOptionError,
                   SchedulerUnavailable, SubmitLimitReached, render_script)
from .commands import DEFAULT_TIMEOUT_S, CommandResult, command_problem, probe, run_command

log = logging.getLogger(__name__)

TEMPLATE = resources.files(__package__).joinpath("templates/slurm.sh").read_text()

HistoryMode = Literal["auto", "sacct", "jobcomp", "none"]

# --- states ------------------------------------------------------------------------------------

# Slurm's job_state_string() values (base states and the flags that win over them).
_STATE_MAP: dict[str, JobState] = {
    **dict.fromkeys(("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
                     "SPECIAL_EXIT"), JobState.PENDING),
    **dict.fromkeys(("CONFIGURING", "POWER_UP_NODE", "RUNNING", "COMPLETING", "SUSPENDED",
                     "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT", "EXPEDITING"),
                    JobState.RUNNING),
    "COMPLETED": JobState.SUCCEEDED,
    **dict.fromkeys(("FAILED", "OUT_OF_MEMORY", "RECONFIG_FAIL"), JobState.FAILED),
    # the job hit a time limit, its own (--time) or a --deadline
    **dict.fromkeys(("TIMEOUT", "DEADLINE"), JobState.TIMEOUT),
    # the machine, not the program, failed (or took the node away)
    **dict.fromkeys(("NODE_FAIL", "BOOT_FAIL", "LAUNCH_FAILED", "PREEMPTED"), JobState.NODE_FAIL),
    **dict.fromkeys(("CANCELLED", "REVOKED"), JobState.CANCELLED),
}


def map_state(raw: str) -> JobState:
    """Common state of a Slurm state string (``CANCELLED by 0`` counts as CANCELLED)."""
    words = raw.split()
    return _STATE_MAP.get(words[0].upper(), JobState.UNKNOWN) if words else JobState.UNKNOWN


def exit_code_from_sacct(text: str) -> int | None:
    """``exit:signal`` -> the exit code; a signal death reads as 128 + signal, like a shell."""
    m = re.fullmatch(r"(\d+):(\d+)", text.strip())
    if not m:
        return None
    code, sig = int(m.group(1)), int(m.group(2))
    return 128 + sig if sig else code


def exit_code_from_wait_status(text: str) -> int | None:
    """squeue's ``exit_code`` is a raw wait status: exit code in the high byte, signal low."""
    text = text.strip()
    if not text.isdigit():
        return None
    status = int(text)
    sig = status & 0x7F
    return 128 + sig if sig else (status >> 8) & 0xFF


def _timestamp(text: str) -> float | None:
    """Slurm prints local times as 2026-11-29T00:09:41; N/A, Unknown, None mean unset."""
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _status(job_id: str, raw_state: str, exit_code: int | None, reason: str, node: str,
            start: str, end: str) -> JobStatus:
    state = map_state(raw_state)
    if state is JobState.SUCCEEDED:
        exit_code = 0 if exit_code is None else exit_code
    elif not state.terminal:
        exit_code = None          # squeue shows 0 for jobs still going
    words = [w for w in (raw_state.strip(), reason.strip()) if w and w not in ("None", "(null)")]
    return JobStatus(
        job_id=job_id, state=state, exit_code=exit_code,
        reason=" ".join(words) if state is not JobState.SUCCEEDED and words else None,
        node=node.strip() or None,
        # squeue shows the expected start of a pending job and the expected end of a running one
        started_at=None if state is JobState.PENDING else _timestamp(start),
        ended_at=_timestamp(end) if state.terminal else None,
    )


# --- parsers (pure; unit-tested on recorded output) ---------------------------------------------

SQUEUE_FIELDS = ("JobID", "State", "exit_code", "NodeList", "StartTime", "EndTime", "Reason")
# "Field:|" = default width, "|" appended: no padding, no truncation (Slurm >= 20.11).
SQUEUE_FORMAT = ",".join(f"{f}:|" for f in SQUEUE_FIELDS)
SACCT_FIELDS = ("JobID", "JobName", "State", "ExitCode", "NodeList", "Start", "End")
SACCT_FORMAT = ",".join(SACCT_FIELDS)
_ALLOCATION_ID = re.compile(r"^\d+(?:_\d+)?$")   # job rows; steps (123.batch) are skipped


def parse_sbatch_output(stdout: str) -> str | None:
    """``sbatch --parsable`` -> job id (``123`` or ``123;cluster``); None if there is none."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    if not lines:
        return None
    job_id = lines[-1].split(";", 1)[0]
    return job_id if job_id.isdigit() else None


def parse_squeue(stdout: str) -> dict[str, JobStatus]:
    """Rows of ``squeue -h -O SQUEUE_FORMAT``."""
    out: dict[str, JobStatus] = {}
    for line in stdout.splitlines():
        parts = line.rstrip("\n").split("|")
        if len(parts) < len(SQUEUE_FIELDS) or not _ALLOCATION_ID.match(parts[0].strip()):
            continue
        job_id, state, wait_status, node, start, end, reason = (p.strip() for p in parts[:7])
        out[job_id] = _status(job_id, state, exit_code_from_wait_status(wait_status), reason,
                              node, start, end)
    return out


def parse_sacct(stdout: str) -> dict[str, tuple[str, JobStatus]]:
    """Rows of ``sacct -P -n --format=SACCT_FORMAT`` -> id: (job name, status).

    Step rows are skipped; when an id has several rows (a requeued job in the completion
    file), the last one, the latest run, wins."""
    out: dict[str, tuple[str, JobStatus]] = {}
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) < len(SACCT_FIELDS) or not _ALLOCATION_ID.match(parts[0].strip()):
            continue
        job_id, name, state, exit_text, node, start, end = (p.strip() for p in parts[:7])
        out[job_id] = (name, _status(job_id, state, exit_code_from_sacct(exit_text), "", node,
                                     start, end))
    return out


# Submission errors. Slurm's words (slurm_errno.c) for limits and for a controller it cannot reach.
_LIMIT_PATTERNS = re.compile(
    r"MaxSubmitJob|SubmitJobsLimit|Job violates accounting/QOS policy|job submit limit",
    re.IGNORECASE)
_TRANSIENT_PATTERNS = re.compile(
    r"Socket timed out|Unable to contact slurm controller|Connection refused|"
    r"Zero Bytes were transmitted|Communication connection failure|temporarily unavailable|"
    r"Slurm temporarily unable|try again|backup controller|Connection reset|"
    r"Transport endpoint",
    re.IGNORECASE)
_REJECT_PATTERNS = re.compile(
    r"Batch job submission failed|sbatch: error: (Invalid|Unable to open)", re.IGNORECASE)
# sbatch names the policy that refused a job on the line before "Job violates accounting/QOS
# policy": QOSMaxSubmitJobPerUserLimit passes once jobs finish, QOSMaxWallDurationPerJobLimit never.
_POLICY_REASON = re.compile(r"^sbatch: error: ((?:QOS|Assoc)\w*Limit)\s*$", re.MULTILINE)
_BENIGN_SCANCEL = re.compile(r"Invalid job id|already completing or completed|"
                             r"Job has already finished")


def classify_submit_failure(
        text: str) -> type[SubmitLimitReached | SchedulerUnavailable | JobRejected]:
    """Which error a failed ``sbatch`` means: limit, transient, or a refusal of this job."""
    policy = _POLICY_REASON.search(text)
    if policy and "Submit" not in policy.group(1):
        return JobRejected        # the job itself is too big or too long for the policy
    if _LIMIT_PATTERNS.search(text):
        return SubmitLimitReached
    if _TRANSIENT_PATTERNS.search(text):
        return SchedulerUnavailable
    if _REJECT_PATTERNS.search(text):
        return JobRejected
    return SchedulerUnavailable   # no id, no known refusal: the job may or may not exist


def history_mode_from_config(config_text: str) -> Literal["sacct", "jobcomp", "none"]:
    """Pick the history source from ``scontrol show config``."""
    settings = dict(re.findall(r"^(\w+)\s*=\s*(\S*)", config_text, re.MULTILINE))
    storage = settings.get("AccountingStorageType", "accounting_storage/none")
    if storage != "accounting_storage/none":
        return "sacct"
    if settings.get("JobCompType") == "jobcomp/filetxt":
        return "jobcomp"
    return "none"


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

class SlurmScheduler(Scheduler):
    kind = "slurm"

    def __init__(self, *, partition: str | None = None, account: str | None = None,
                 qos: str | None = None, gpu_option: Literal["gres", "gpus"] = "gres",
                 gpu_type: str | None = None, requeue: bool = False,
                 extra_directives: Sequence[str] = (),
                 command_timeout_s: float = DEFAULT_TIMEOUT_S,
                 history: HistoryMode = "auto", history_days: int = 30,
                 commands_dir: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
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
        self.command_timeout_s = command_timeout_s
        self.history: HistoryMode = history
        self.history_days = history_days
        self.env = env
        self.commands_dir = None if commands_dir is None else Path(commands_dir)
        self.user = getpass.getuser()
        self.calls: Counter[str] = Counter()   # command name -> invocations

    # -- commands

    def _program(self, command: str) -> str:
        return str(self.commands_dir / command) if self.commands_dir else command

    def _run(self, argv: Sequence[str], *, cwd: Path | None = None) -> CommandResult:
        self.calls[argv[0]] += 1
        return run_command([self._program(argv[0]), *argv[1:]], timeout=self.command_timeout_s,
                           env=self.env, cwd=None if cwd is None else str(cwd))

    def check(self, *, work_dir: Path | None = None) -> list[str]:
        problems = [p for c in ("sbatch", "squeue", "sacct", "scancel", "scontrol")
                    if (p := command_problem(self._program(c), self.env))]
        if work_dir is not None and _BAD_PATH_CHARS.search(str(work_dir)):
            problems.append(f"work_dir {str(work_dir)!r}: Slurm directives cannot carry quotes, "
                            "'\\' or '%' in a path")
        if not problems:
            answer = probe([self._program("squeue"), "-h", "-u", self.user, "-O", "JobID:|"],
                           env=self.env)
            problems += [answer] if answer else []
        return problems

    # -- script

    def directives(self, spec: JobSpec) -> str:
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

    def render(self, spec: JobSpec) -> str:
        if spec.cpus < 1 or spec.gpus < 0:
            raise ValueError(f"invalid resources: cpus={spec.cpus} gpus={spec.gpus}")
        return render_script(TEMPLATE, directives=self.directives(spec), spec=spec)

    # -- Scheduler interface

    def submit(self, spec: JobSpec) -> str:
        """One ``sbatch --parsable`` of a script written into the workdir; no retries here."""
        script = spec.workdir / "job.slurm.sh"
        script.write_text(self.render(spec))
        result = self._run(["sbatch", "--parsable", str(script)], cwd=spec.workdir)
        job_id = parse_sbatch_output(result.stdout) if result.returncode == 0 else None
        if job_id is not None:
            return job_id
        message = result.output.replace("\n", " | ")[:500] or f"exit status {result.returncode}"
        if result.returncode == 0:
            raise SchedulerUnavailable(f"sbatch printed no job id: {message}")
        raise classify_submit_failure(result.output)(f"sbatch failed for {spec.name}: {message}")

    def status(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return {}
        wanted = set(ids)
        found = {k: v for k, v in self._live(ids).items() if k in wanted}
        missing = [i for i in ids if i not in found]
        if missing:
            history = self._history(["-j", ",".join(missing)])
            found.update({k: st for k, (_, st) in history.items()
                          if k in wanted and k not in found})
        return {i: found.get(i, JobStatus(i, JobState.UNKNOWN,
                                          reason="not in squeue nor in history"))
                for i in ids}

    def cancel(self, job_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return
        result = self._run(["scancel", *ids])
        # Already finished or purged jobs are fine (idempotent); anything else is not.
        errors = [ln for ln in result.stderr.splitlines()
                  if "error" in ln.lower() and not _BENIGN_SCANCEL.search(ln)]
        if errors or (result.returncode != 0 and not result.stderr.strip()):
            raise SchedulerUnavailable(
                f"scancel failed (exit {result.returncode}): {' | '.join(errors)[:500]}")

    def find_by_name(self, names: Iterable[str]) -> dict[str, str]:
        """Name -> job id, live queue first, then history. If a name was submitted more than
        once, the newest job (highest id) wins, so a lost-then-found submission is not lost."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        result = self._run(["squeue", "-h", "-t", "all", "-u", self.user,
                            "-n", ",".join(wanted), "-O", "JobID:|,Name:|"])
        self._check_squeue(result)
        found: dict[str, str] = {}
        for line in result.stdout.splitlines():
            job_id, _, rest = line.partition("|")
            name = rest.split("|", 1)[0].strip()
            if _ALLOCATION_ID.match(job_id.strip()) and name in wanted:
                _keep_newest(found, name, job_id.strip())
        missing = [n for n in wanted if n not in found]
        if missing:
            window = f"now-{self.history_days}days"
            history = self._history(["-u", self.user, "-S", window, "--name", ",".join(missing)])
            for job_id, (name, _) in history.items():
                if name in missing:   # sacct -c ignores --name: filter here
                    _keep_newest(found, name, job_id)
        return found

    # -- queries

    def _live(self, ids: Sequence[str]) -> dict[str, JobStatus]:
        result = self._run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-O", SQUEUE_FORMAT])
        if result.returncode != 0 and "Invalid job id specified" in result.stderr:
            if len(ids) == 1:
                # Slurm 22.05 fails a lone purged id (several ids just filter): the job is no
                # longer live, which the history query settles.
                return {}
            # Versions that fail the whole batch on one purged id: list this user's jobs.
            result = self._run(["squeue", "-h", "-t", "all", "-u", self.user, "-O", SQUEUE_FORMAT])
        self._check_squeue(result)
        return parse_squeue(result.stdout)

    @staticmethod
    def _check_squeue(result: CommandResult) -> None:
        if result.returncode != 0:
            raise SchedulerUnavailable(
                f"squeue failed (exit {result.returncode}): {result.output[:300]}")

    def _history_mode(self) -> Literal["sacct", "jobcomp", "none"]:
        if self.history == "auto":
            result = self._run(["scontrol", "show", "config"])
            if result.returncode != 0:
                raise SchedulerUnavailable(f"scontrol show config failed: {result.output[:300]}")
            self.history = history_mode_from_config(result.stdout)
            log.info("slurm history source: %s", self.history)
        return self.history

    def _history(self, selection: Sequence[str]) -> dict[str, tuple[str, JobStatus]]:
        mode = self._history_mode()
        if mode == "none":
            return {}
        argv = ["sacct", *(["-c"] if mode == "jobcomp" else ["-X"]), "-P", "-n",
                *selection, f"--format={SACCT_FORMAT}"]
        result = self._run(argv)
        if result.returncode != 0:
            # Never turn a failed query into verdicts: the caller retries later.
            raise SchedulerUnavailable(
                f"sacct failed (exit {result.returncode}): {result.output[:300]}")
        return parse_sacct(result.stdout)


def _keep_newest(found: dict[str, str], name: str, job_id: str) -> None:
    if name not in found or int(job_id.split("_")[0]) > int(found[name].split("_")[0]):
        found[name] = job_id
