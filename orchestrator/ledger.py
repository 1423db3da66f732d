"""Every change of attempt, point and experiment state, as functions over an open Session.

This module is the only writer of those fields: the master and the admin commands (cancel,
retry) both change state through it, each inside a transaction it opened itself, so the rules
(which budget a failure is charged to, what a cancel does to a point) live in one place.
Functions take the time ``at`` from the caller: the master's clock may be a virtual one.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from scheduler_adapters.base import JobState, JobStatus

from .faults import crash_point
from .models import Attempt, Evaluation, Event, Experiment, JournalEntry, Point, point_key
from .outcomes import Outcome
from .render import number
from .render import point as point_text
from .states import (
    AttemptKind,
    AttemptState,
    ExperimentState,
    FailureKind,
    JournalKind,
    Origin,
    PointState,
)
from .trials import continuation_name

log = logging.getLogger("orchestrator.ledger")

Index = tuple[int, ...]


@dataclass(frozen=True)
class Budget:
    """How many failures of each kind a point (or the setup job) may have before it fails."""

    retries: int
    infra_retries: int
    continuations: int = 0        # runs after the first that one attempt may have

    def spent(self, program_failures: int, infra_failures: int) -> bool:
        return program_failures > self.retries or infra_failures > self.infra_retries


@dataclass(frozen=True)
class Intent:
    """An attempt about to be submitted: its point (None: the setup job), name and run dir."""

    point_id: int | None
    number: int
    name: str
    run_dir: str


def add_event(s: Session, experiment_id: int, kind: str, message: str,
              data: dict[str, Any] | None = None, *, at: datetime) -> None:
    log.info("%s: %s", kind, message)
    s.add(Event(experiment_id=experiment_id, at=at, kind=kind, message=message, data=data))


# ---- the experiment ------------------------------------------------------------------------------
def set_experiment_state(s: Session, experiment_id: int, state: ExperimentState, *,
                         at: datetime, message: str | None = None) -> Experiment:
    """Move the experiment to ``state`` (ended states record when, and may say why)."""
    exp = s.get(Experiment, experiment_id)
    assert exp is not None
    if state is ExperimentState.RUNNING:
        if exp.state == ExperimentState.NOT_STARTED:
            exp.started_at = at
        exp.finished_at = None
    elif state in ExperimentState.ENDED:
        exp.finished_at = at
    if message is not None:
        exp.message = message
    exp.state = state
    return exp


def set_scheduler_note(s: Session, experiment_id: int, note: str | None) -> None:
    """The scheduler's words while it refuses or cannot take submissions (None: it takes them)."""
    exp = s.get(Experiment, experiment_id)
    assert exp is not None
    exp.scheduler_note = note


# ---- points --------------------------------------------------------------------------------------
def record_points(s: Session, experiment_id: int, batch: Sequence[Index], *,
                  round_number: int | None, params_of: Callable[[Index], dict[str, Any]],
                  at: datetime) -> list[Index]:
    """Record points the search (round_number) or speculation (None) wants; return the new ones.
    A point speculation already holds joins the search's round as it is."""
    keys = [point_key(p) for p in batch]
    existing = Point.by_keys(s, experiment_id, keys)
    new = []
    for index, key in zip(batch, keys):
        point = existing.get(key)
        if point is None:
            s.add(Point(experiment_id=experiment_id, key=key, params=params_of(index),
                        origin=Origin.SEARCH if round_number is not None else Origin.SPECULATIVE,
                        round=round_number, created_at=at))
            new.append(index)
        elif point.round is None and round_number is not None:
            point.round = round_number     # a speculative point the search now needs
            if point.state == PointState.CANCELLED:
                point.state = PointState.PENDING   # left unmeasured earlier: measure it now
    return new


def record_known(s: Session, experiment_id: int, known: Mapping[Index, float | None], *,
                 params_of: Callable[[Index], dict[str, Any]], source: str,
                 at: datetime) -> None:
    """Store results measured before the search began (a warm start) as done or failed points."""
    for index, value in sorted(known.items()):
        point = Point(experiment_id=experiment_id, key=point_key(index), params=params_of(index),
                      origin=Origin.KNOWN, round=None, created_at=at,
                      state=PointState.DONE if value is not None else PointState.FAILED)
        s.add(point)
        s.flush()
        s.add(Evaluation(point_id=point.id, value=value, metrics={"known_from": source},
                         failure=None if value is not None else f"failed in {source}",
                         attempt_id=None, recorded_at=at))


def cancel_pending_points(s: Session, experiment_id: int) -> None:
    """At the end of the search: speculation it never needed is not wanted any more."""
    for point in Point.in_state(s, experiment_id, PointState.PENDING):
        point.state = PointState.CANCELLED


def reset_point(s: Session, point: Point) -> None:
    """Give a failed point a new budget (``orchestrator retry``)."""
    assert point.evaluation is not None
    s.delete(point.evaluation)
    point.program_failures = point.infra_failures = 0
    point.state = PointState.PENDING
    point.budget_resets += 1


def rewind_journal(s: Session, experiment_id: int,
                   reopened: Iterable[Sequence[int]] | None = None) -> None:
    """Cut the refill journal back to before the first tell of a reopened point (None: all of
    it), so the search's decisions from there on are remade with the new results; points
    measured later are reused when the remade search asks for them again."""
    entries = s.execute(select(JournalEntry).where(JournalEntry.experiment_id == experiment_id)
                        .order_by(JournalEntry.seq)).scalars().all()
    wanted = None if reopened is None else {tuple(p) for p in reopened}
    cut = next((i for i, e in enumerate(entries) if wanted is None or (
        e.kind == JournalKind.TELL and any(tuple(p) in wanted for p in e.points))), len(entries))
    for entry in entries[cut:]:
        s.delete(entry)


# ---- attempts ------------------------------------------------------------------------------------
def record_intents(s: Session, experiment_id: int, intents: Iterable[Intent], *,
                   at: datetime) -> list[int]:
    """Commit attempts with their unique job names before anything is submitted."""
    intents = list(intents)
    point_ids = [i.point_id for i in intents if i.point_id is not None]
    points = {p.id: p for p in s.execute(select(Point).where(Point.id.in_(point_ids)))
              .scalars()} if point_ids else {}          # in one query, not one per intent
    attempts = []
    for intent in intents:
        attempt = Attempt(experiment_id=experiment_id, point_id=intent.point_id,
                          kind=AttemptKind.SETUP if intent.point_id is None else AttemptKind.TRIAL,
                          number=intent.number, name=intent.name, state=AttemptState.SUBMITTING,
                          created_at=at, run_dir=intent.run_dir)
        s.add(attempt)
        if intent.point_id is not None:
            points[intent.point_id].state = PointState.ACTIVE
        attempts.append(attempt)
    s.flush()
    return [a.id for a in attempts]


def mark_submitted(s: Session, row: Attempt, job_id: str, *, at: datetime) -> Attempt:
    row.job_id, row.state = job_id, AttemptState.SUBMITTED
    row.submitted_at = row.submitted_at or at
    return row


def mark_live(s: Session, row: Attempt, status: JobStatus, *, at: datetime) -> None:
    """A job still in flight changed (pending -> running, another node)."""
    row.state = AttemptState(status.state.value)
    row.node = status.node or row.node
    if status.state is JobState.RUNNING and row.started_at is None:
        row.started_at = _ts(status.started_at) or at


def record_outcome(s: Session, row: Attempt, outcome: Outcome, status: JobStatus | None, *,
                   budget: Budget, at: datetime) -> None:
    """Record a terminal attempt and what it means for its point (or the setup job): a value,
    a continuation, another try, or a failed point once the budget of that kind is spent."""
    if outcome.continued:
        runs = attempt_runs(s, row)
        if len(runs) - 1 < budget.continuations:
            _continue(s, row, outcome, runs, at=at)
            return
        assert outcome.instead is not None
        outcome = replace(outcome.instead, reason=f"{outcome.instead.reason}; not continued: "
                          f"{len(runs) - 1} continuations used (continuations = "
                          f"{budget.continuations})")
    row.state = outcome.state
    row.failure_kind = outcome.failure_kind
    row.reason = outcome.reason
    if status is not None:
        row.exit_code = status.exit_code
        row.node = status.node or row.node
        row.started_at = row.started_at or _ts(status.started_at)
        row.ended_at = _ts(status.ended_at) or at
    else:
        row.ended_at = at
    if row.kind == AttemptKind.SETUP:
        _record_setup_outcome(s, row, outcome, at)
        return
    point = row.point
    assert point is not None
    if outcome.ok:
        crash_point("before-evaluation")
        assert outcome.value is not None
        s.add(Evaluation(point_id=point.id, value=outcome.value, metrics=outcome.values,
                         attempt_id=row.id, recorded_at=at))
        point.state = PointState.DONE
        add_event(s, row.experiment_id, "evaluated",
                  f"point {point_text(point.params)} = {number(outcome.value)}",
                  {"point": point.key, "value": outcome.value}, at=at)
        return
    if outcome.failure_kind == FailureKind.PROGRAM:
        point.program_failures += 1
    else:
        point.infra_failures += 1
    spent = budget.spent(point.program_failures, point.infra_failures)
    add_event(s, row.experiment_id, "attempt-failed", f"{row.name}: {outcome.reason}",
              {"point": point.key, "kind": outcome.failure_kind, "spent": spent}, at=at)
    if spent:
        s.add(Evaluation(point_id=point.id, value=None, failure=outcome.reason,
                         attempt_id=row.id, recorded_at=at))
        point.state = PointState.FAILED
        add_event(s, row.experiment_id, "point-failed",
                  f"point {point_text(point.params)} failed: {outcome.reason}",
                  {"point": point.key}, at=at)
    else:
        point.state = PointState.PENDING


def load_attempts(s: Session, attempt_ids: Sequence[int]) -> dict[int, Attempt]:
    """Attempts by id with their points, in two queries whatever their number (instead of one
    ``s.get`` per attempt and one lazy load per point)."""
    if not attempt_ids:
        return {}
    rows = s.execute(select(Attempt).where(Attempt.id.in_(attempt_ids))
                     .options(selectinload(Attempt.point))).scalars().all()
    return {row.id: row for row in rows}


def runs_before(s: Session, rows: Iterable[Attempt]) -> dict[int, int]:
    """For each attempt, how many runs of it came before (0: it is the first run, not a
    continuation): trials' from one query over the index of their points."""
    rows = list(rows)
    runs_of = select(Attempt.id, Attempt.point_id, Attempt.kind, Attempt.number)
    point_ids = {r.point_id for r in rows if r.point_id is not None}
    queries = [runs_of.where(Attempt.point_id.in_(point_ids))] if point_ids else []
    if any(r.point_id is None for r in rows):          # the setup job's
        queries.append(runs_of.where(Attempt.experiment_id == rows[0].experiment_id,
                                     Attempt.point_id.is_(None)))
    runs: dict[tuple[int | None, str, int], list[int]] = {}
    for query in queries:
        for attempt_id, point_id, kind, attempt_number in s.execute(query.order_by(Attempt.id)):
            runs.setdefault((point_id, kind, attempt_number), []).append(attempt_id)
    return {r.id: runs[(r.point_id, r.kind, r.number)].index(r.id) for r in rows}


def attempt_runs(s: Session, row: Attempt) -> Sequence[Attempt]:
    """The rows of one attempt: its first run and its continuations, in order."""
    same_point = (Attempt.point_id.is_(None) if row.point_id is None
                  else Attempt.point_id == row.point_id)
    return s.execute(select(Attempt).where(
        Attempt.experiment_id == row.experiment_id, Attempt.kind == row.kind, same_point,
        Attempt.number == row.number).order_by(Attempt.id)).scalars().all()


def _continue(s: Session, row: Attempt, outcome: Outcome, runs: Sequence[Attempt], *,
              at: datetime) -> None:
    """End ``row`` as continued and record its continuation as an intent (same number and run
    directory, its own job name); no budget is charged and the point stays active."""
    row.state, row.reason, row.ended_at = AttemptState.CONTINUED, outcome.reason, at
    number = len(runs)
    s.add(Attempt(experiment_id=row.experiment_id, point_id=row.point_id, kind=row.kind,
                  number=row.number, name=continuation_name(runs[0].name, number),
                  state=AttemptState.SUBMITTING, created_at=at, run_dir=row.run_dir))
    add_event(s, row.experiment_id, "continued", f"{row.name}: {outcome.reason}; "
              f"continuation {number}", {"attempt": row.number, "continuation": number}, at=at)


def _record_setup_outcome(s: Session, row: Attempt, outcome: Outcome, at: datetime) -> None:
    if outcome.ok:
        exp = s.get(Experiment, row.experiment_id)
        assert exp is not None
        exp.setup_outputs = {**(outcome.values or {}), "_run_dir": row.run_dir}
        add_event(s, row.experiment_id, "setup-done",
                  f"setup succeeded: {point_text(outcome.values or {})}", at=at)
        return
    add_event(s, row.experiment_id, "setup-failed", f"{row.name}: {outcome.reason}", at=at)


def cancel_active(s: Session, experiment_id: int, reason: str, *, at: datetime,
                  found: Mapping[str, str] | None = None) -> Sequence[Attempt]:
    """Mark every attempt in flight cancelled (after the scheduler cancelled the jobs), and its
    point with it. ``found``: job ids learnt by name for attempts that had none recorded."""
    cancelled = Attempt.active(s, experiment_id)
    for row in cancelled:
        if row.job_id is None and found:
            row.job_id = found.get(row.name)
        row.state, row.reason, row.ended_at = AttemptState.CANCELLED, reason, at
        if row.point is not None and row.point.state == PointState.ACTIVE:
            row.point.state = PointState.CANCELLED
    return cancelled


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)
