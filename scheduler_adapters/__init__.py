"""Batch-scheduler adapters behind one small interface (see ``base``)."""
from .base import (JobRejected, JobSpec, JobState, JobStatus, Scheduler, SchedulerError,
                   SchedulerUnavailable, SubmitLimitReached)

__all__ = ["JobRejected", "JobSpec", "JobState", "JobStatus", "Scheduler", "SchedulerError",
           "SchedulerUnavailable", "SubmitLimitReached"]
