"""What a finished attempt means: a value, a program failure or an infrastructure failure.

The result file wins over the scheduler's word whenever it is valid and the program did not
report failure itself: a job that wrote its result and then vanished, or whose node died after
the atomic rename, still measured its point. Nothing valid is ever thrown away.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.result import RESULT_FILE, ResultError, read_result, read_result_object
from scheduler_adapters.base import JobState, JobStatus

from .states import AttemptState, FailureKind

PROGRAM = FailureKind.PROGRAM
INFRA = FailureKind.INFRA

# States in which a valid result file is still trusted.
RESULT_TRUSTED = (JobState.SUCCEEDED, JobState.UNKNOWN, JobState.NODE_FAIL, JobState.CANCELLED)


@dataclass(frozen=True)
class Outcome:
    state: AttemptState             # the attempt's final state
    value: float | None = None      # set on success of a trial
    values: dict[str, Any] | None = None
    failure_kind: FailureKind | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure_kind is None


def judge(status: JobStatus, run_dir: Path, objective_key: str | None) -> Outcome:
    """Decide a terminal attempt. ``objective_key`` None: a setup job (any JSON object)."""
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
            return Outcome(state=AttemptState.FAILED, failure_kind=PROGRAM, reason=result_problem)
    state = status.state
    if state is JobState.FAILED:
        code = "" if status.exit_code is None else f" with exit code {status.exit_code}"
        detail = None if status.reason and status.reason.startswith("exit code") else status.reason
        return Outcome(state=AttemptState.FAILED, failure_kind=PROGRAM,
                       reason=_join(f"program exited{code}", detail))
    if state is JobState.TIMEOUT:
        return Outcome(state=AttemptState.TIMEOUT, failure_kind=PROGRAM,
                       reason=_join("time limit exceeded", status.reason))
    if state is JobState.NODE_FAIL:
        return Outcome(state=AttemptState.NODE_FAIL, failure_kind=INFRA,
                       reason=_join("node failure or preemption", status.reason))
    if state is JobState.CANCELLED:
        return Outcome(state=AttemptState.CANCELLED, failure_kind=INFRA,
                       reason=_join("cancelled outside the master", status.reason))
    return Outcome(state=AttemptState.UNKNOWN, failure_kind=INFRA,
                   reason=_join("job vanished from the scheduler (not in queue nor history)", status.reason))


def _join(what: str, detail: str | None) -> str:
    return f"{what}: {detail}" if detail else what
