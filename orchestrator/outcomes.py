"""What a finished attempt means: a value, a program failure or an infrastructure failure.

The result file wins over the scheduler's word whenever it is valid and the program did not
report failure itself: a job that wrote its result and then vanished, or whose node died after
the atomic rename, still measured its point. Nothing valid is ever thrown away.

A failure's reason says why, so that ``status`` and ``events`` are enough to fix the command:
the scheduler's own words, the last lines of the program's stderr, and a hint where the mistake
is a common one (no result file written, the objective under another key).

A trial that did not finish is continued rather than failed (state ``CONTINUED``, with the
outcome it would otherwise have as ``instead``): it reported ``{"_unfinished": true}``, or its
job ended at the time limit or was preempted while its checkpoint directory holds something.
Whether a continuation is still allowed is the ledger's decision (``trial.continuations``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.result import (
    CHECKPOINT_DIR,
    RESULT_FILE,
    ResultError,
    is_unfinished,
    read_result,
    read_result_object,
)
from scheduler_adapters.base import JobState, JobStatus

from .states import AttemptState, FailureKind

STDERR_FILE, STDOUT_FILE = "stderr.txt", "stdout.txt"     # the adapters' defaults (JobSpec)
TAIL_LINES = 5              # of the program's stderr, in a failure's reason
TAIL_CHARS = 500
TAIL_READ_BYTES = 16384     # read from the end of the file: a log may be huge

# States in which a valid result file is still trusted.
RESULT_TRUSTED = (JobState.SUCCEEDED, JobState.UNKNOWN, JobState.NODE_FAIL, JobState.CANCELLED)


@dataclass(frozen=True)
class Outcome:
    state: AttemptState             # the attempt's final state
    value: float | None = None      # set on success of a trial
    values: dict[str, Any] | None = None
    failure_kind: FailureKind | None = None
    reason: str | None = None
    instead: Outcome | None = None  # a continuation's outcome should no continuation be allowed

    @property
    def ok(self) -> bool:
        return self.failure_kind is None and self.instead is None

    @property
    def continued(self) -> bool:
        return self.instead is not None


# Job ends after which a trial may continue: it handed over itself, hit its time limit, or was
# preempted (which schedulers report as a node failure).
CONTINUABLE = (JobState.SUCCEEDED, JobState.TIMEOUT, JobState.NODE_FAIL)


def judge(status: JobStatus, run_dir: Path, objective_key: str | None) -> Outcome:
    """Decide a terminal attempt. ``objective_key`` None: a setup job (any JSON object)."""
    plain = _judge(status, run_dir, objective_key)
    if plain.ok or status.state not in CONTINUABLE:
        return plain
    reason = _unfinished_reason(status, run_dir)
    if reason is None:
        return plain
    return Outcome(state=AttemptState.CONTINUED, reason=reason, instead=plain)


def _unfinished_reason(status: JobStatus, run_dir: Path) -> str | None:
    try:
        if is_unfinished(read_result_object(run_dir / RESULT_FILE)):
            return "the trial reported it is not finished"
    except ResultError:
        pass
    if status.state is JobState.SUCCEEDED or not _has_checkpoint(run_dir / CHECKPOINT_DIR):
        return None
    if status.state is JobState.TIMEOUT:
        return "time limit reached with a checkpoint"
    return "preempted (or its node failed) with a checkpoint"


def _has_checkpoint(directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(True for _ in entries)
    except OSError:               # no such directory (or not one): nothing to continue from
        return False


def _judge(status: JobStatus, run_dir: Path, objective_key: str | None) -> Outcome:
    result_path = run_dir / RESULT_FILE
    if status.state in RESULT_TRUSTED:
        try:
            if objective_key is None:
                values = read_result_object(result_path)
                return Outcome(state=AttemptState.SUCCEEDED, values=values)
            value, values = read_result(result_path, objective_key)
            return Outcome(state=AttemptState.SUCCEEDED, value=value, values=values)
        except ResultError as exc:
            result_problem = str(exc)
        if status.state is JobState.SUCCEEDED:
            reason = _join(result_problem, result_hint(result_path, objective_key))
            return Outcome(state=AttemptState.FAILED, failure_kind=FailureKind.PROGRAM,
                           reason=with_output_tail(reason, run_dir))
    state = status.state
    if state is JobState.FAILED:
        code = "" if status.exit_code is None else f" with exit code {status.exit_code}"
        detail = None if status.reason and status.reason.startswith("exit code") else status.reason
        return Outcome(state=AttemptState.FAILED, failure_kind=FailureKind.PROGRAM,
                       reason=with_output_tail(_join(f"program exited{code}", detail), run_dir))
    if state is JobState.TIMEOUT:
        return Outcome(state=AttemptState.TIMEOUT, failure_kind=FailureKind.PROGRAM,
                       reason=with_output_tail(_join("time limit exceeded", status.reason),
                                               run_dir))
    if state is JobState.NODE_FAIL:
        return Outcome(state=AttemptState.NODE_FAIL, failure_kind=FailureKind.INFRA,
                       reason=_join("node failure or preemption", status.reason))
    if state is JobState.CANCELLED:
        return Outcome(state=AttemptState.CANCELLED, failure_kind=FailureKind.INFRA,
                       reason=_join("cancelled outside the master", status.reason))
    return Outcome(state=AttemptState.UNKNOWN, failure_kind=FailureKind.INFRA, reason=_join(
                   "job vanished from the scheduler (not in queue nor history)", status.reason))


def _join(what: str, detail: str | None) -> str:
    return f"{what}: {detail}" if detail else what


def result_hint(result_path: Path, objective_key: str | None) -> str | None:
    """What to change when the result file is absent or holds the objective under another key."""
    if not result_path.exists() and not result_path.is_symlink():
        return (f"the program must write one JSON object to $ORCH_RESULT_FILE ({RESULT_FILE} "
                "in its run directory; Python: jobs.result.write_result)")
    if objective_key is None:
        return None
    try:
        values = read_result_object(result_path)
    except ResultError:
        return None
    if objective_key in values:
        return None
    keys = ", ".join(repr(k) for k in sorted(values)[:20]) or "none"
    return f"keys present: {keys}; [objective] key is {objective_key!r}"


def with_output_tail(reason: str, run_dir: Path) -> str:
    """The reason, then the program's last stderr lines (its stdout where stderr was merged)."""
    for name, label in ((STDERR_FILE, "stderr"), (STDOUT_FILE, "output")):
        path = run_dir / name
        if path.is_file():
            tail = output_tail(path)
            return f"{reason}; {label}: {tail}" if tail else reason
    return reason


def output_tail(path: Path, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last non-blank lines of a log as one line (' | ' between them), at most ``chars``."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - TAIL_READ_BYTES))
            data = fh.read(TAIL_READ_BYTES)
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept)
    return joined if len(joined) <= chars else "..." + joined[-(chars - 3):]
