"""Keeping the database in step with the scheduler: one batched status query per cycle.

Attempts whose submission was recorded but whose job id was not (the master died between the two)
are looked up by their unique name; only an answer that the name is not there makes them safe to
submit again. A job the scheduler no longer knows counts as vanished after ``VANISH_POLLS``
unknown answers in a row, unless its result file is already there. Cycles in which nothing
changed stretch the poll interval (up to ``max_poll_interval``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from scheduler_adapters.base import JobState, JobStatus, Scheduler, SchedulerUnavailable

from . import ledger
from .context import Context
from .ledger import Budget
from .models import Attempt
from .outcomes import Outcome, judge
from .states import AttemptKind, AttemptState

log = logging.getLogger("orchestrator.master")

VANISH_POLLS = 3            # consecutive "unknown" answers before a job counts as vanished

Change = Outcome | JobStatus  # a final outcome, or a new live state to record


@dataclass(frozen=True)
class Cancelled:
    """The jobs in flight were cancelled at the scheduler and recorded so."""

    count: int


@dataclass(frozen=True)
class CancelFailed:
    """The scheduler did not cancel them (its words); they may still run, nothing was recorded."""

    reason: str


class Reconciler:
    def __init__(self, ctx: Context, scheduler: Scheduler, absent: set[int]) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        # Intents a lookup by name answered "not there": the submitter may submit them again.
        self.absent = absent
        self.quiet_cycles = 0
        self._unknown_polls: dict[int, int] = {}
        trial, setup = ctx.config.model.trial, ctx.config.model.setup
        self._budget = Budget(trial.retries, trial.infra_retries, trial.continuations)
        # The setup job's failures are counted by SetupJob; only its continuations count here.
        self._setup_budget = Budget(0, 0, setup.continuations if setup else 0)

    def poll_interval(self) -> float:
        """The pause before the next cycle: longer while nothing changes."""
        sched = self.ctx.config.model.scheduler
        ceiling = sched.max_poll_interval or sched.poll_interval
        return min(ceiling, sched.poll_interval * (1.5 ** self.quiet_cycles))

    def poll(self) -> None:
        """One batched status query for all jobs in flight; record what changed."""
        with self.ctx.read() as s:
            active = Attempt.active(s, self.ctx.experiment_id)
        intents = [a for a in active
                   if a.state == AttemptState.SUBMITTING and a.id not in self.absent]
        live = [a for a in active if a.job_id is not None and a.state != AttemptState.SUBMITTING]
        changed = False
        if intents:
            changed |= self._reattach_by_name(intents)
        if live:
            try:
                statuses = self.scheduler.status([a.job_id for a in live if a.job_id])
            except SchedulerUnavailable as exc:
                log.warning("status query failed, will retry: %s", exc)
                self.quiet_cycles += 1          # back off, too
                return
            changes = []
            for attempt in live:
                assert attempt.job_id is not None
                status = statuses.get(attempt.job_id) or JobStatus(attempt.job_id, JobState.UNKNOWN)
                change = self._change_for(attempt, status)
                if change is not None:
                    changes.append((attempt, status, change))
            if changes:
                self._apply(changes)
                changed = True
        self.quiet_cycles = 0 if changed else self.quiet_cycles + 1

    def _reattach_by_name(self, intents: list[Attempt]) -> bool:
        """True if the scheduler answered (whatever it answered)."""
        try:
            found = self.scheduler.find_by_name([a.name for a in intents])
        except SchedulerUnavailable as exc:
            log.warning("lookup by name failed, will retry: %s", exc)
            return False
        with self.ctx.tx() as s:
            rows = ledger.load_attempts(s, [a.id for a in intents if a.name in found])
            for attempt in intents:
                if attempt.name in found:
                    row = ledger.mark_submitted(s, rows[attempt.id], found[attempt.name],
                                                at=self.ctx.now())
                    self.ctx.event(s, "reattached",
                                   f"{row.name} found in the scheduler as job {row.job_id}")
                else:
                    self.absent.add(attempt.id)   # never got in: submit it, same name
        return True

    def _change_for(self, attempt: Attempt, status: JobStatus) -> Change | None:
        """What a status means for an attempt: a final outcome, a new live state, or nothing."""
        if status.state is JobState.UNKNOWN:
            seen = self._unknown_polls.get(attempt.id, 0) + 1
            self._unknown_polls[attempt.id] = seen
            if seen < VANISH_POLLS and not _result_exists(attempt):
                return None
        else:
            self._unknown_polls.pop(attempt.id, None)
        if not status.state.terminal:
            if status.state.value == attempt.state and (status.node or None) == attempt.node:
                return None
            return status
        self._unknown_polls.pop(attempt.id, None)
        return judge(status, Path(attempt.run_dir),
                     None if attempt.kind == AttemptKind.SETUP else self.ctx.config.objective_key)

    def _apply(self, changes: list[tuple[Attempt, JobStatus, Change]]) -> None:
        """Record one poll's changes in one transaction (result files were read before it)."""
        with self.ctx.tx() as s:
            rows = ledger.load_attempts(s, [attempt.id for attempt, _, _ in changes])
            for attempt, status, change in changes:
                row = rows[attempt.id]
                if isinstance(change, Outcome):
                    budget = (self._setup_budget if row.kind == AttemptKind.SETUP
                              else self._budget)
                    ledger.record_outcome(s, row, change, status, budget=budget,
                                          at=self.ctx.now())
                else:
                    ledger.mark_live(s, row, change, at=self.ctx.now())

    def cancel_all(self, reason: str) -> Cancelled | CancelFailed:
        """Cancel every job in flight (``orchestrator cancel``, or leftover speculation)."""
        with self.ctx.read() as s:
            active = Attempt.active(s, self.ctx.experiment_id)
        job_ids = [a.job_id for a in active if a.job_id]
        if job_ids:
            try:
                self.scheduler.cancel(job_ids)
            except SchedulerUnavailable as exc:
                log.warning("cancel failed (%s); the jobs may still run", exc)
                with self.ctx.tx() as s:
                    self.ctx.event(s, "cancel-failed", f"{len(job_ids)} jobs: {exc}")
                return CancelFailed(str(exc))
        with self.ctx.tx() as s:
            cancelled = ledger.cancel_active(s, self.ctx.experiment_id, reason, at=self.ctx.now())
            if cancelled:
                self.ctx.event(s, "cancelled-jobs", f"cancelled {len(cancelled)} jobs: {reason}")
        return Cancelled(len(cancelled))


def _result_exists(attempt: Attempt) -> bool:
    return (Path(attempt.run_dir) / "result.json").is_file()
