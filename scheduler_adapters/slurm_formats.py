"""Slurm's formats: ``sbatch --parsable``, ``squeue -O``, ``sacct -P``, ``scontrol show config``,
its state names mapped onto the common states, and its submission errors classified.

Pure functions, unit-tested on recorded output (tests/slurm/test_slurm_parsers.py).

Formats (Slurm's man pages, checked against Slurm 22.05; recorded samples in the tests):
- ``sbatch --parsable`` prints ``jobid`` or ``jobid;cluster``.
- ``squeue -O exit_code`` is the raw wait status (``exit << 8 | signal``).
- ``sacct`` ExitCode is ``exit:signal``; its State may read ``CANCELLED by <uid>``; with
  ``-c`` a requeued job has one row per run, so the last row of an id wins.
"""
from __future__ import annotations

import re
import time
from typing import Literal

from .base import JobRejected, JobState, JobStatus, SchedulerUnavailable, SubmitLimitReached

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
ALLOCATION_ID = re.compile(r"^\d+(?:_\d+)?$")   # job rows; steps (123.batch) are skipped


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
        if len(parts) < len(SQUEUE_FIELDS) or not ALLOCATION_ID.match(parts[0].strip()):
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
        if len(parts) < len(SACCT_FIELDS) or not ALLOCATION_ID.match(parts[0].strip()):
            continue
        job_id, name, state, exit_text, node, start, end = (p.strip() for p in parts[:7])
        out[job_id] = (name, _status(job_id, state, exit_code_from_sacct(exit_text), "", node,
                                     start, end))
    return out


# Submission errors. Slurm's words (slurm_errno.c, as in libslurm 22.05) for policy refusals that
# pass with time (a submit limit, a partition drained or a reservation for maintenance) and for
# a controller it cannot reach.
_LIMIT_PATTERNS = re.compile(
    r"MaxSubmitJob|SubmitJobsLimit|Job violates accounting/QOS policy|job submit limit|"
    r"maintenance reservation|Required partition not available \(inactive or drain\)|"
    r"Requested reservation not usable now",
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
BENIGN_SCANCEL = re.compile(r"Invalid job id|already completing or completed|"
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


def scheduler_words(output: str) -> str:
    """sbatch's error lines on one line, without the ``sbatch: error:`` prefixes: what the
    user is shown as the reason a submission waits."""
    lines = [re.sub(r"^sbatch: error:\s*", "", line.strip()) for line in output.splitlines()]
    return "sbatch: " + "; ".join(line for line in lines if line)[:500]


def history_mode_from_config(config_text: str) -> Literal["sacct", "jobcomp", "none"]:
    """Pick the history source from ``scontrol show config``."""
    settings = dict(re.findall(r"^(\w+)\s*=\s*(\S*)", config_text, re.MULTILINE))
    storage = settings.get("AccountingStorageType", "accounting_storage/none")
    if storage != "accounting_storage/none":
        return "sacct"
    if settings.get("JobCompType") == "jobcomp/filetxt":
        return "jobcomp"
    return "none"
