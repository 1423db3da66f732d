"""Grid Engine (Son of Grid Engine 8.1.x) formats: ``qstat -xml``, ``qacct -j``, ``qstat -j``,
their mapping onto the common job states, and the native specification a user may give.

Pure functions, unit-tested on recorded output (tests/drmaa/data).
"""
from __future__ import annotations

import re
import shlex
import signal
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from .base import JobState, JobStatus, SchedulerOptionError

# Options the adapter derives from the JobSpec, or that break "one submit = one job that runs":
# a native specification may not carry them.
RESERVED_OPTIONS = frozenset({
    "-N", "-o", "-e", "-j", "-wd", "-cwd", "-b", "-S", "-shell", "-sync", "-terse", "-@", "-C",
    "-h", "-t", "-now", "-notify",
})
# Characters libdrmaa's native-specification splitter does not quote: a token must avoid them.
UNSAFE_TOKEN_RE = re.compile(r"[\s'\"\\\x00]")
RESOURCE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
H_RT_RE = re.compile(r"(?:^|[\s,])h_rt=([0-9:]+)")

# qacct "failed" codes: 37 = qmaster enforced h_rt/h_cpu/h_vmem; codes below 26 are execd or
# shepherd failures before or around the job's start (the program never ran properly),
# 26 and above are the job's own set-up errors (output file, shell, working directory).
FAILED_LIMIT_ENFORCED = 37
FAILED_AFTER_JOB = 100         # "assumedly after job": the job died by a signal (qdel, or its own)
FIRST_JOB_SETUP_FAILURE = 26
ACCOUNTING_TIME_FORMAT = "%a %b %d %H:%M:%S %Y"


# ---------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class LiveJob:
    """One row of ``qstat -xml``."""

    job_id: str
    name: str
    state: str                     # Grid Engine's letters: qw, hqw, r, t, Eqw, dr, ...
    node: str | None = None
    started_at: float | None = None


@dataclass(frozen=True)
class AccountingRecord:
    """One record of ``qacct -j``."""

    job_id: str
    name: str
    failed: int
    failed_text: str
    exit_status: int
    node: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    wallclock_s: float | None = None
    h_rt_s: float | None = None    # the requested wall-clock limit, from the job's category


def parse_qstat_xml(text: str) -> list[LiveJob]:
    """Jobs of ``qstat -xml`` (running ones under queue_info, waiting ones under job_info)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"unreadable qstat -xml output: {exc}") from None
    jobs = []
    for row in root.iter("job_list"):
        job_id = (row.findtext("JB_job_number") or "").strip()
        if not job_id:
            raise ValueError("qstat -xml row without JB_job_number")
        queue = (row.findtext("queue_name") or "").strip()
        start = (row.findtext("JAT_start_time") or "").strip()
        jobs.append(LiveJob(job_id=job_id, name=(row.findtext("JB_name") or "").strip(),
                            state=(row.findtext("state") or "").strip(),
                            node=queue.partition("@")[2] or None,
                            started_at=datetime.fromisoformat(start).timestamp() if start else None))
    return jobs


def parse_qacct(text: str) -> list[AccountingRecord]:
    """Records of ``qacct -j``, in file order (a later record of one job id is the newer one)."""
    records = []
    for block in re.split(r"^=+\s*$", text, flags=re.MULTILINE):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                fields[key] = value.strip()
        if "jobnumber" in fields:
            records.append(_accounting_record(fields))
    return records


def _accounting_record(fields: dict[str, str]) -> AccountingRecord:
    failed_code, _, failed_text = fields.get("failed", "0").partition(":")
    h_rt = H_RT_RE.search(fields.get("category", ""))
    return AccountingRecord(
        job_id=fields["jobnumber"], name=fields.get("jobname", ""),
        failed=int(failed_code.strip()), failed_text=failed_text.strip(),
        exit_status=int(fields.get("exit_status", "0").split()[0]),
        node=fields.get("hostname") or None,
        started_at=_accounting_time(fields.get("start_time", "")),
        ended_at=_accounting_time(fields.get("end_time", "")),
        wallclock_s=float(fields["ru_wallclock"].rstrip("s")) if "ru_wallclock" in fields else None,
        h_rt_s=parse_duration(h_rt.group(1)) if h_rt else None)


def _accounting_time(text: str) -> float | None:
    # a job that never started has "-/-"
    try:
        return datetime.strptime(text, ACCOUNTING_TIME_FORMAT).timestamp()
    except ValueError:
        return None


def parse_duration(text: str) -> float:
    """Grid Engine time values: ``[[hours:]minutes:]seconds``."""
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part or 0)
    return total


def parse_error_reasons(text: str) -> dict[str, str]:
    """Job id -> the last "error reason" of ``qstat -j id,...`` (why a job sits in Eqw)."""
    reasons: dict[str, str] = {}
    job_id = None
    for line in text.splitlines():
        if line.startswith("job_number:"):
            job_id = line.split(":", 1)[1].strip()
        elif line.startswith("error reason") and job_id:
            message = line.split(":", 1)[1].strip()
            # drop the "11/29/2026 00:07:38 [0:6505]: " prefix
            reasons[job_id] = re.sub(r"^\S+ \S+ \[[^\]]*\]:\s*", "", message)
    return reasons


# ---------------------------------------------------------------------------- state mapping

def live_status(job: LiveJob, error_reason: str | None = None) -> JobStatus:
    """A job still in ``qstat``. Eqw jobs stay there until deleted: they count as failed."""
    if "E" in job.state:
        return JobStatus(job.job_id, JobState.FAILED, node=job.node,
                         reason=f"Grid Engine error state {job.state}: {error_reason or 'see qstat -j'}")
    # r running, t transferring, s/S/T suspended; "Rq" (requeued) is pending, "Rr" running
    running = any(letter in job.state for letter in "rtsST")
    return JobStatus(job.job_id, JobState.RUNNING if running else JobState.PENDING,
                     node=job.node, started_at=job.started_at, reason=job.state)


def finished_status(record: AccountingRecord, *, cancelled: bool) -> JobStatus:
    """A job from ``qacct``; ``cancelled`` when this adapter was asked to cancel it."""
    state, reason = _finished_state(record, cancelled)
    return JobStatus(record.job_id, state, exit_code=record.exit_status, reason=reason,
                     node=record.node, started_at=record.started_at, ended_at=record.ended_at)


def _finished_state(record: AccountingRecord, cancelled: bool) -> tuple[JobState, str | None]:
    killed_by = _signal_name(record.exit_status)
    if record.failed == 0 and record.exit_status == 0:
        return JobState.SUCCEEDED, None
    if record.failed == FAILED_LIMIT_ENFORCED or (
            killed_by == "SIGKILL" and record.h_rt_s is not None
            and record.wallclock_s is not None and record.wallclock_s >= record.h_rt_s):
        limit = f" h_rt={record.h_rt_s:g} s" if record.h_rt_s is not None else ""
        return JobState.TIMEOUT, f"limit{limit} exceeded: {record.failed_text or 'killed by SIGKILL'}"
    failure = f"Grid Engine failure {record.failed}: {record.failed_text}"
    if 0 < record.failed < FIRST_JOB_SETUP_FAILURE:
        return JobState.NODE_FAIL, failure
    if record.failed not in (0, FAILED_AFTER_JOB):
        return JobState.FAILED, failure          # the job's set-up failed before a cancel could matter
    if cancelled:
        return JobState.CANCELLED, "cancelled"
    if killed_by:
        return JobState.FAILED, f"killed by {killed_by}"
    return JobState.FAILED, f"exit status {record.exit_status}"


def _signal_name(exit_status: int) -> str | None:
    # Grid Engine reports death by signal N as exit status 128 + N
    if exit_status <= 128:
        return None
    try:
        return signal.Signals(exit_status - 128).name
    except ValueError:
        return f"signal {exit_status - 128}"


def vanished_status(job_id: str, *, cancelled: bool) -> JobStatus:
    """Neither in qstat nor in qacct: deleted before it ran (no accounting record) or unknown."""
    if cancelled:
        return JobStatus(job_id, JobState.CANCELLED, reason="cancelled before it ran")
    return JobStatus(job_id, JobState.UNKNOWN, reason="neither in qstat nor in qacct")


def parse_native_specification(text: str) -> tuple[str, ...]:
    """Split and check a native specification; SchedulerOptionError names the offending part."""
    if "\n" in text or "\x00" in text:
        raise _bad_native("native_specification must be one line")
    try:
        tokens = tuple(shlex.split(text))
    except ValueError as exc:
        raise _bad_native(f"native_specification {text!r}: {exc}") from None
    if tokens and not tokens[0].startswith("-"):
        raise _bad_native(f"native_specification must start with an option, not {tokens[0]!r}")
    for index, token in enumerate(tokens):
        if UNSAFE_TOKEN_RE.search(token):
            raise _bad_native(f"native_specification token {token!r} contains a space, quote "
                              "or backslash")
        if token in RESERVED_OPTIONS:
            raise _bad_native(f"native_specification may not contain {token}: "
                              "the adapter sets it from the job")
        if index > 0 and tokens[index - 1] == "-l" and H_RT_RE.search(token):
            raise _bad_native("native_specification may not set h_rt: use the job's time limit")
    return tokens


def _bad_native(message: str) -> SchedulerOptionError:
    return SchedulerOptionError("native_specification", message)
