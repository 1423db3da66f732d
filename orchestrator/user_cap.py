"""``[scheduler] cap_scope = "user"``: the cap holds the user's other jobs in the same queue.

With the default scope, "experiment", the cap counts this experiment's attempts in flight. With
"user", the free slots are also bounded by what the queue shows: cap minus the user's queued and
running jobs there (the experiment's own included; the adapter's ``user_active_jobs``: Slurm's
partition, PJM's resource group, the local scheduler's own queue) minus this experiment's
intents the scheduler has not been given yet. A count that fails frees nothing this cycle (it
never means "no jobs there"); the next cycle asks again.
"""
from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler_adapters.base import Scheduler, SchedulerUnavailable

from .models import Attempt
from .states import AttemptState

log = logging.getLogger("orchestrator.master")


def user_free_slots(s: Session, experiment_id: int, scheduler: Scheduler, cap: int) -> int:
    """Slots the user's jobs leave free under ``cap`` (may be negative: others took them)."""
    try:
        in_queue = scheduler.user_active_jobs()
    except SchedulerUnavailable as exc:
        log.warning("cannot count the user's jobs in the queue (%s); submitting nothing "
                    "this cycle", exc)
        return 0
    not_yet_given = s.execute(select(func.count()).select_from(Attempt).where(
        Attempt.experiment_id == experiment_id,
        Attempt.state == AttemptState.SUBMITTING)).scalar_one()
    return cap - in_queue - not_yet_given
