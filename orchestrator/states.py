"""The orchestrator's own state vocabulary, one enum per stored field.

Members are stored as their string values (the columns are plain strings), so databases written
before these enums existed stay valid. The scheduler's view of a job is a different vocabulary
(``scheduler_adapters.base.JobState``); ``AttemptState`` takes over its names where they mean the
same thing.
"""
from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class AttemptState(StrEnum):
    """What became of one job submitted (or about to be) for a point or the setup job."""

    SUBMITTING = "submitting"
    """Intent recorded with its unique job name; the job id is not known yet."""
    SUBMITTED = "submitted"
    """The scheduler accepted the job; no status seen yet."""
    PENDING = "pending"
    """Queued at the scheduler."""
    RUNNING = "running"
    """Running on a node."""
    SUCCEEDED = "succeeded"
    """Ended with a valid result (a value for a trial, outputs for the setup job)."""
    FAILED = "failed"
    """Ended without a valid result: the program failed or the scheduler refused the job."""
    TIMEOUT = "timeout"
    """Killed at its time limit (a program failure: it would be killed again)."""
    CANCELLED = "cancelled"
    """Cancelled, by the master, an admin command or someone outside."""
    NODE_FAIL = "node_fail"
    """Its node died or it was preempted (an infrastructure failure)."""
    UNKNOWN = "unknown"
    """Vanished from the scheduler's queue and history without a result (infrastructure)."""
    CONTINUED = "continued"
    """Ended unfinished with a checkpoint; the next attempt row with its number continues it."""

    ACTIVE: ClassVar[frozenset[AttemptState]]

    @property
    def terminal(self) -> bool:
        """True once the attempt will not change any more."""
        return self not in AttemptState.ACTIVE


AttemptState.ACTIVE = frozenset({AttemptState.SUBMITTING, AttemptState.SUBMITTED,
                                 AttemptState.PENDING, AttemptState.RUNNING})


class AttemptKind(StrEnum):
    """What an attempt runs."""

    TRIAL = "trial"
    """A measurement of one point."""
    SETUP = "setup"
    """The experiment's one-off setup job, run before any trial."""


class PointState(StrEnum):
    """Where a point of the grid stands."""

    PENDING = "pending"
    """Wanted, no attempt in flight (new, or retrying after a failure within budget)."""
    ACTIVE = "active"
    """An attempt is in flight."""
    DONE = "done"
    """Measured: its evaluation holds the value."""
    FAILED = "failed"
    """Its failure budget is spent: its evaluation holds no value."""
    CANCELLED = "cancelled"
    """No longer wanted: the experiment was cancelled, or it was unneeded speculation."""


class ExperimentState(StrEnum):
    """The life cycle of an experiment."""

    NOT_STARTED = "not-started"
    """Created by a first ``start`` that has not yet claimed it."""
    RUNNING = "running"
    """A master has worked on it and it has not ended (whether or not a master runs now)."""
    FINISHED = "finished"
    """The search finished; ``retry`` of a failed point may reopen it."""
    CANCELLED = "cancelled"
    """Cancelled by ``orchestrator cancel``; final."""
    FAILED = "failed"
    """The setup job's budget was spent; final."""

    ENDED: ClassVar[frozenset[ExperimentState]]
    FINAL: ClassVar[frozenset[ExperimentState]]


ExperimentState.ENDED = frozenset({ExperimentState.FINISHED, ExperimentState.CANCELLED,
                                   ExperimentState.FAILED})
"""States that take no more work."""
ExperimentState.FINAL = frozenset({ExperimentState.CANCELLED, ExperimentState.FAILED})
"""Ended states nothing can revive."""


class FailureKind(StrEnum):
    """Which budget a failed attempt is charged to."""

    PROGRAM = "program"
    """The program failed (bad exit, bad result, time limit): ``trial.retries``."""
    INFRA = "infra"
    """The infrastructure failed (node, vanished job, outside cancel): ``trial.infra_retries``."""


class Origin(StrEnum):
    """Who wanted a point measured."""

    SEARCH = "search"
    """The search asked for it in a round."""
    SPECULATIVE = "speculative"
    """Prefetched into idle slots; joins a round if the search later asks for it."""
    KNOWN = "known"
    """Measured before this search began (``start --warm-start``, or before the grid was
    extended): told to the search as a known result (DSICE ``inform``), never submitted."""


class JournalKind(StrEnum):
    """A step of the search in refill mode, as the search journal records it."""

    ASK = "ask"
    """The strategy was asked, with the number of free slots; it returned these points."""
    TELL = "tell"
    """The strategy was told the outcomes of these points, in this order."""
