"""Filling free slots: pending points become attempts, attempts become jobs.

Intent before action: an attempt is committed with its unique job name before the submit command
runs, and its job id is committed right after, so a master killed in between finds the job again
by name (``reconcile``) instead of submitting it twice.

What the scheduler says decides what happens next (the adapter error contract, see
scheduler_adapters/base.py): a permanent refusal of this job fails the attempt; a policy refusal
(``SubmitLimitReached``) or a scheduler that does not answer (``SchedulerUnavailable``) is no
failure of the trial: submissions wait, backing off on the master's clock, and the scheduler's
words are stored for ``status``. A submit that failed may still have got in, so it is submitted
again only after a lookup by name answered "not there"; a lookup that fails leaves the intent
to the next cycle's reconciliation. ``SchedulerMisconfigured`` (every job would fail) goes up to
the master, which stops.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from scheduler_adapters.base import (
    JobRejected,
    JobSpec,
    Scheduler,
    SchedulerMisconfigured,
    SchedulerUnavailable,
    SubmitLimitReached,
)

from . import ledger
from .context import Context, MasterError
from .faults import crash_point
from .ledger import Budget, Intent
from .models import Attempt, Experiment, Point
from .outcomes import Outcome
from .states import AttemptKind, AttemptState, FailureKind, PointState
from .trials import build_spec, job_name, run_dir_for
from .user_cap import user_free_slots

log = logging.getLogger("orchestrator.master")

SUBMIT_TRIES = 3            # transient submit failures retried within one cycle
MAX_BACKOFF_S = 600.0       # the longest wait between submissions the scheduler refuses

Wanted = tuple[int | None, str, int]   # point id (None: the setup job), tag, attempt number


@dataclass(frozen=True)
class Submitted:
    """The scheduler took the job."""

    job_id: str


@dataclass(frozen=True)
class Rejected:
    """This job can never run as it is (recorded as a program failure of the attempt)."""

    reason: str


@dataclass(frozen=True)
class Wait:
    """The scheduler cannot take jobs now (limit, outage): stop submitting, keep the intents."""

    reason: str


class Submitter:
    def __init__(self, ctx: Context, scheduler: Scheduler, absent: set[int],
                 setup_outputs: Callable[[], dict[str, Any] | None]) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.absent = absent                 # shared with the Reconciler
        self.setup_outputs = setup_outputs
        self.cap = ctx.config.model.scheduler.cap
        trial = ctx.config.model.trial
        self.budget = Budget(trial.retries, trial.infra_retries, trial.continuations)
        self._blocked_until = 0.0
        self._waits = 0                      # consecutive waits: the back-off grows with them
        with ctx.read() as s:                # the words an earlier master may have left
            exp = s.get(Experiment, ctx.experiment_id)
            self._note = exp.scheduler_note if exp is not None else None

    def fill(self, prefetch: Callable[[int], None] | None) -> None:
        """Submit again what is known not to have got in, then pending points up to the cap.
        ``prefetch(free)`` may first add speculative points; None while the setup job runs."""
        if self.ctx.clock() < self._blocked_until:
            return
        if self.absent and isinstance(self._submit(sorted(self.absent)), Wait):
            return
        with self.ctx.read() as s:
            free = self.cap - Attempt.count_active(s, self.ctx.experiment_id)
            if free > 0 and self.ctx.config.model.scheduler.cap_scope == "user":
                free = min(free, user_free_slots(s, self.ctx.experiment_id, self.scheduler,
                                                 self.cap))
        if free <= 0 or prefetch is None:
            return
        prefetch(free)
        # The highest attempt number so far (an attempt's continuations share its number),
        # looked up per pending point through the point index: never a scan of all attempts.
        tries = (select(func.coalesce(func.max(Attempt.number), 0))
                 .where(Attempt.point_id == Point.id).scalar_subquery())
        with self.ctx.read() as s:
            pending = s.execute(select(Point.id, Point.key, tries).where(
                Point.experiment_id == self.ctx.experiment_id, Point.state == PointState.PENDING)
                .order_by(Point.round.is_(None), Point.round, Point.id).limit(free)).all()
        if pending:
            self.launch([(pid, "p" + key.replace(",", "-"), n + 1) for pid, key, n in pending])

    def launch(self, wanted: list[Wanted]) -> None:
        """Record attempts as intents, then submit them."""
        self._submit(self._record_intents(wanted))

    def _record_intents(self, wanted: list[Wanted]) -> list[int]:
        config, instance = self.ctx.config, self.ctx.instance
        intents = [Intent(point_id, number, job_name(config, instance, tag, number),
                          str(run_dir_for(config, tag, number)))
                   for point_id, tag, number in wanted]
        with self.ctx.tx() as s:
            ids = ledger.record_intents(s, self.ctx.experiment_id, intents, at=self.ctx.now())
        crash_point("after-intent")
        return ids

    def _submit(self, attempt_ids: list[int]) -> Wait | None:
        """Submit recorded attempts in order, then commit their job ids together.
        Wait: the scheduler asked us to wait; the rest stay recorded intents."""
        outputs = self.setup_outputs()       # before the session: it may open its own
        with self.ctx.read() as s:
            attempts = ledger.load_attempts(s, attempt_ids)      # one query, with their points
            runs_before = ledger.runs_before(s, attempts.values())
            specs: list[tuple[int, JobSpec | Rejected]] = []
            for attempt_id in attempt_ids:
                attempt = attempts[attempt_id]
                try:
                    specs.append((attempt.id, self._spec_for(attempt, outputs,
                                                             runs_before[attempt_id])))
                except ValueError as exc:
                    specs.append((attempt.id, Rejected(str(exc))))
        submitted: list[tuple[int, str]] = []
        waiting: Wait | None = None
        for attempt_id, spec in specs:
            result = spec if isinstance(spec, Rejected) else self.submit_one(attempt_id, spec)
            if isinstance(result, Wait):
                waiting = result
                break
            if isinstance(result, Rejected):
                self._reject(attempt_id, result.reason)
            else:
                submitted.append((attempt_id, result.job_id))
        if submitted:
            with self.ctx.tx() as s:
                rows = ledger.load_attempts(s, [attempt_id for attempt_id, _ in submitted])
                for attempt_id, job_id in submitted:
                    ledger.mark_submitted(s, rows[attempt_id], job_id, at=self.ctx.now())
        return waiting

    def submit_one(self, attempt_id: int, spec: JobSpec) -> Submitted | Rejected | Wait:
        for tries in range(SUBMIT_TRIES):
            try:
                job_id = self.scheduler.submit(spec)
                crash_point("after-submit")
            except SchedulerMisconfigured:
                raise                                  # every job would fail: the master stops
            except SubmitLimitReached as exc:
                # Refused by policy (limits, reservation): it did not get in; not the trial's fault.
                self.absent.add(attempt_id)
                return self._wait(f"the scheduler refuses new jobs: {exc}")
            except (JobRejected, ValueError) as exc:   # ValueError: a value the adapter refuses
                return Rejected(f"scheduler rejected the job: {exc}")
            except SchedulerUnavailable as exc:
                log.warning("submit of %s failed (%s); checking whether it got in", spec.name, exc)
                try:
                    found = self.scheduler.find_by_name([spec.name]).get(spec.name)
                except SchedulerUnavailable as lookup:
                    # Whether it got in is unknown: never submit it again until a lookup answers.
                    log.warning("lookup of %s failed too (%s); asking again later", spec.name,
                                lookup)
                    self.absent.discard(attempt_id)
                    return self._wait(f"the scheduler does not answer: {exc}")
                if found is None:
                    if tries + 1 < SUBMIT_TRIES:
                        self.ctx.sleep(min(0.2 * 2 ** tries, 2.0))
                        continue
                    # The intent stays recorded; the next cycle looks it up by name again.
                    self.absent.discard(attempt_id)
                    return self._wait(f"the scheduler does not answer: {exc}")
                job_id = found
            self.absent.discard(attempt_id)
            self._resumed()
            return Submitted(job_id)
        raise AssertionError("unreachable")

    def _wait(self, reason: str) -> Wait:
        """Stop submitting for a while (longer after each refusal in a row); keep the words."""
        poll = self.ctx.config.model.scheduler.poll_interval
        self._blocked_until = self.ctx.clock() + min(MAX_BACKOFF_S, 2 * poll * 2 ** self._waits)
        self._waits += 1
        log.info("submissions wait: %s", reason)
        if reason != self._note:
            with self.ctx.tx() as s:
                ledger.set_scheduler_note(s, self.ctx.experiment_id, reason)
                self.ctx.event(s, "submit-waiting", reason)
            self._note = reason
        return Wait(reason)

    def _resumed(self) -> None:
        self._waits = 0
        if self._note is not None:
            with self.ctx.tx() as s:
                ledger.set_scheduler_note(s, self.ctx.experiment_id, None)
                self.ctx.event(s, "submit-resumed", "the scheduler takes jobs again")
            self._note = None

    def _spec_for(self, attempt: Attempt, outputs: dict[str, Any] | None,
                  continuation: int) -> JobSpec:
        setup_dir = Path(outputs["_run_dir"]) if outputs else None
        config = self.ctx.config
        if attempt.kind == AttemptKind.SETUP:
            section, params = config.model.setup, {}
        else:
            assert attempt.point is not None
            section, params = config.model.trial, attempt.point.params
        assert section is not None
        try:
            return build_spec(config, section, name=attempt.name, run_dir=Path(attempt.run_dir),
                              attempt=attempt.number, params=params,
                              setup_outputs=outputs, setup_dir=setup_dir,
                              continuation=continuation)
        except OSError as exc:
            raise MasterError(f"cannot prepare run directory {attempt.run_dir}: "
                              f"{exc.strerror or exc}") from None

    def _reject(self, attempt_id: int, reason: str) -> None:
        with self.ctx.tx() as s:
            row = s.get(Attempt, attempt_id)
            assert row is not None
            ledger.record_outcome(s, row, Outcome(state=AttemptState.FAILED,
                                                  failure_kind=FailureKind.PROGRAM, reason=reason),
                                  None, budget=self.budget, at=self.ctx.now())
        self.absent.discard(attempt_id)
