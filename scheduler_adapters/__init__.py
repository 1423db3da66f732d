"""Batch-scheduler adapters behind one small interface (see ``base``); ``SCHEDULERS`` maps each
``[scheduler] kind`` to its declared options and factory (see ``registry``)."""
from .base import (
                   JobRejected,
                   JobSpec,
                   JobState,
                   JobStatus,
                   Scheduler,
                   SchedulerError,
                   SchedulerMisconfigured,
                   SchedulerOptionError,
                   SchedulerUnavailable,
                   SubmitLimitReached,
)
from .registry import SCHEDULERS, Option, SchedulerKind, lookup

__all__ = ["SCHEDULERS", "JobRejected", "JobSpec", "JobState", "JobStatus", "Option", "Scheduler",
           "SchedulerError", "SchedulerKind", "SchedulerMisconfigured", "SchedulerOptionError",
           "SchedulerUnavailable", "SubmitLimitReached", "lookup"]
