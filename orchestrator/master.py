"""The master: one long-running process per experiment, the only writer of its database.

Each cycle: renew the lease, poll the scheduler once for every job in flight, record outcomes
(each in its own transaction), run the setup job or advance the search round, and submit points
up to the cap. Intent before action: an attempt is committed with its unique job name before the
submit command runs and its job id is committed right after, so a master killed at any instant is
resumed by reconciling those attempts against the scheduler by id or by name.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from scheduler_adapters.base import (JobRejected, JobSpec, JobState, JobStatus, Scheduler,
                                     SchedulerUnavailable, SubmitLimitReached)

from . import exitcodes
from .config import Config
from .faults import crash_point
from .lease import LeaseHeld, LeaseHolder, LeaseLost
from .models import (ACTIVE_ATTEMPT_STATES, Attempt, Evaluation, Event, Experiment, Lease,
                     Point, Stage, point_key)
from .outcomes import INFRA, PROGRAM, Outcome, judge
from .progress import Progress
from .schedulers import build_scheduler
from .store import create_schema, make_engine, schema_problem, session_factory
from .strategies import Replay, build_strategy, replay
from .trials import build_spec, job_name, run_dir_for

log = logging.getLogger("orchestrator.master")

SETUP = "setup"
VANISH_POLLS = 3            # consecutive "unknown" answers before a job counts as vanished
SUBMIT_TRIES = 3            # transient submit failures retried within one cycle


class MasterError(Exception):
    """The master cannot go on; the message says why, in one line."""

    def __init__(self, message: str, code: int = exitcodes.ERROR) -> None:
        super().__init__(message)
        self.code = code


class Master:
    def __init__(self, config: Config, *, scheduler: Scheduler | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] | None = None,
                 progress: Progress | None = None) -> None:
        self.config = config
        self.clock = clock
        self._wake = threading.Event()
        self.sleep = sleep or (lambda seconds: self._wake.wait(seconds) and None)
        self.progress = progress or Progress(quiet=True)
        self.cap = config.model.scheduler.cap
        self._scheduler = scheduler
        self.stopping: str | None = None
        self._unknown_polls: dict[int, int] = {}
        self._submit_blocked_until = 0.0
        self._resubmit: set[int] = set()
        self.status_calls = 0
        self.cycles = 0
        self.fingerprint = config.fingerprint()
        self._setup_cache: dict[str, Any] | None = None

    # ---- life cycle ------------------------------------------------------------------------------
    def run(self) -> int:
        """Start or resume the experiment; return the process exit code."""
        self._open()
        try:
            if self.experiment_state == "finished":
                self.progress.finish(self.summary())
                return exitcodes.OK
            if self.experiment_state in ("cancelled", "failed"):
                raise MasterError(f"experiment {self.config.name!r} is {self.experiment_state}"
                                  f"{': ' + self._message() if self._message() else ''}; "
                                  "start a new one with another name or work_dir")
            self._claim()
            try:
                return self._run_claimed()
            except LeaseLost:
                log.warning("lease lost: another master took over; exiting without writing")
                self.progress.message("another master took over this experiment; exiting")
                return exitcodes.LEASE_LOST
        except (OperationalError, OSError) as exc:
            # A full disk, a vanished mount, a lost database server. Every state change is one
            # transaction, so what was stored stays stored; `start` resumes once it is fixed.
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            log.error("stopping: %s", detail)
            raise MasterError(f"cannot write the experiment's state ({self.config.database_url} "
                              f"or {self.config.work_dir}): {detail}; nothing stored was lost, "
                              "`start` resumes once this is fixed") from None
        finally:
            if self._scheduler is not None:
                self._scheduler.close()
            self.engine.dispose()

    def _run_claimed(self) -> int:
        with self._signals():
            with self.tx() as s:
                exp = s.get(Experiment, self.experiment_id)
                assert exp is not None
                if exp.state == "not-started":
                    exp.started_at = self.now()
                exp.state = "running"
                self._event(s, "master-start", f"master pid {os.getpid()} started",
                            {"takeover": self.took_over})
            self.scheduler  # build it now: a bad scheduler option fails before any work
            self._poll()    # reconcile every unfinished attempt before submitting anything
            if not self._setup_done():
                self.replayed = None
            else:
                self._rebuild()
            while True:
                self.cycles += 1
                crash_point("cycle")
                if self._check_stop():
                    break
                self._poll()
                if not self._setup_done():
                    if not self._advance_setup():
                        return exitcodes.ERROR
                else:
                    if self.replayed is None:
                        self._rebuild()
                    if self._advance_search():
                        self._finish()
                        return exitcodes.OK
                self._submit()
                self.progress.update(self._progress_snapshot())
                self.sleep(self._poll_interval())
        self._release()
        self.progress.message(f"master stopped ({self.stopping}); jobs keep running; "
                              f"`start` resumes the experiment")
        return exitcodes.OK

    def _open(self) -> None:
        cfg = self.config
        try:
            if not cfg.work_dir.exists():
                cfg.work_dir.mkdir(parents=True, mode=0o700)
                os.chmod(cfg.work_dir, 0o700)
            probe = cfg.work_dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise MasterError(f"work directory {cfg.work_dir} is not writable: "
                              f"{exc.strerror or exc}", exitcodes.USAGE) from None
        self.engine = make_engine(cfg.database_url, journal=cfg.model.experiment.sqlite_journal)
        self.sessions = session_factory(self.engine)
        for tries in range(3):
            try:
                create_schema(self.engine)
                problem = schema_problem(self.engine)
                if problem:
                    raise MasterError(f"the state database {cfg.database_url} was written by "
                                      f"another version of orchestrator ({problem}); finish or "
                                      "export it with that version, or start a new work_dir")
                self.experiment_id, self.experiment_state = self._load_experiment()
                break
            except MasterError:
                raise
            except (IntegrityError, ProgrammingError):
                # Two masters creating the schema or the experiment at the same instant (on
                # PostgreSQL; SQLite serialises them): the loser looks again.
                if tries == 2:
                    raise
            except Exception as exc:  # a corrupt file or an unreachable server, in the user's words
                raise MasterError(f"cannot open the state database {cfg.database_url}: "
                                  f"{str(exc).splitlines()[0]}") from None
        self._setup_logging()

    def _load_experiment(self) -> tuple[int, str]:
        cfg = self.config
        definition = cfg.search_definition()
        settings = {k: v for k, v in cfg.model.model_dump(mode="json").items()
                    if k not in ("parameters", "objective")}
        with self.sessions.begin() as s:
            exps = s.execute(select(Experiment)).scalars().all()
            if not exps:
                exp = Experiment(name=cfg.name, fingerprint=self.fingerprint,
                                 instance=uuid.uuid4().hex[:8],
                                 definition=definition, settings=settings, created_at=self.now())
                s.add(exp)
                s.flush()
                s.add(Event(experiment_id=exp.id, at=self.now(), kind="created",
                            message=f"experiment {cfg.name} created", data=None))
                self.instance = exp.instance
                return exp.id, exp.state
            exp = exps[0]
            if exp.name != cfg.name:
                raise MasterError(f"database {cfg.database_url} belongs to experiment "
                                  f"{exp.name!r}, not {cfg.name!r}", exitcodes.USAGE)
            if exp.fingerprint != self.fingerprint:
                raise MasterError(describe_change(exp.definition, definition, cfg), exitcodes.USAGE)
            if exp.settings != settings:
                exp.settings = settings
                s.add(Event(experiment_id=exp.id, at=self.now(), kind="config-changed",
                            message="settings changed (cap, scheduler, retries, ...); accepted",
                            data=None))
            self.instance = exp.instance
            return exp.id, exp.state

    def _claim(self) -> None:
        holder = LeaseHolder(self.experiment_id, self.config.model.experiment.lease_timeout)
        try:
            self.took_over = holder.acquire(self.sessions)
        except LeaseHeld as exc:
            raise MasterError(f"a master is already running for {self.config.name!r}: {exc}",
                              exitcodes.ALREADY_RUNNING) from None
        self.lease = holder

    def _release(self) -> None:
        try:
            self.lease.release(self.sessions)
        except LeaseLost:
            pass

    @contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: Any) -> None:
            self.stopping = signal.Signals(signum).name
            self._wake.set()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _setup_logging(self) -> None:
        path = self.config.work_dir / "master.log"
        root = logging.getLogger("orchestrator")
        if not any(getattr(h, "baseFilename", None) == str(path) for h in root.handlers):
            handler = logging.FileHandler(path, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            root.addHandler(handler)
            root.setLevel(logging.INFO)
            os.chmod(path, 0o600)

    # ---- helpers ---------------------------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """One write transaction, which first proves this process still holds the lease."""
        with self.sessions.begin() as s:
            if hasattr(self, "lease"):
                self.lease.check(s)
            yield s

    def _event(self, s: Session, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        log.info("%s: %s", kind, message)
        s.add(Event(experiment_id=self.experiment_id, at=self.now(), kind=kind, message=message,
                    data=data))

    def _message(self) -> str | None:
        with self.sessions() as s:
            exp = s.get(Experiment, self.experiment_id)
            return exp.message if exp else None

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            self._scheduler = build_scheduler(self.config)
        return self._scheduler

    def _poll_interval(self) -> float:
        sched = self.config.model.scheduler
        base = sched.poll_interval
        ceiling = sched.max_poll_interval or base
        quiet = getattr(self, "_quiet_cycles", 0)
        return min(ceiling, base * (1.5 ** quiet))

    def _check_stop(self) -> bool:
        with self.tx() as s:
            lease = s.get(Lease, self.experiment_id)
            exp = s.get(Experiment, self.experiment_id)
            assert exp is not None and lease is not None
            if lease.stop_requested and not self.stopping:
                self.stopping = "stop requested"
            if exp.state == "cancelled":
                self.stopping = "experiment cancelled"
        if self.stopping == "experiment cancelled":
            self._cancel_jobs()
        return self.stopping is not None

    def _cancel_jobs(self, reason: str = "experiment cancelled") -> None:
        """Cancel every job in flight (``orchestrator cancel``, or leftover speculation)."""
        with self.sessions() as s:
            active = s.execute(select(Attempt).where(
                Attempt.experiment_id == self.experiment_id,
                Attempt.state.in_(ACTIVE_ATTEMPT_STATES))).scalars().all()
        job_ids = [a.job_id for a in active if a.job_id]
        if job_ids:
            try:
                self.scheduler.cancel(job_ids)
            except SchedulerUnavailable as exc:
                log.warning("cancel failed (%s); the jobs may still run", exc)
                return
        with self.tx() as s:
            for attempt in active:
                row = s.get(Attempt, attempt.id)
                assert row is not None
                row.state, row.reason, row.ended_at = "cancelled", reason, self.now()
                if row.point is not None and row.point.state == "active":
                    row.point.state = "cancelled"
            if active:
                self._event(s, "cancelled-jobs", f"cancelled {len(active)} jobs: {reason}")

    # ---- polling ---------------------------------------------------------------------------------
    def _poll(self) -> None:
        """One batched status query for all jobs in flight; record what changed."""
        with self.sessions() as s:
            active = s.execute(select(Attempt).where(
                Attempt.experiment_id == self.experiment_id,
                Attempt.state.in_(ACTIVE_ATTEMPT_STATES))).scalars().all()
        intents = [a for a in active if a.state == "submitting" and a.id not in self._resubmit]
        live = [a for a in active if a.job_id is not None and a.state != "submitting"]
        changed = False
        if intents:
            changed |= self._reattach_by_name(intents)
        if live:
            try:
                self.status_calls += 1
                statuses = self.scheduler.status([a.job_id for a in live if a.job_id])
            except SchedulerUnavailable as exc:
                log.warning("status query failed, will retry: %s", exc)
                self._quiet_cycles = getattr(self, "_quiet_cycles", 0) + 1   # back off, too
                return
            changes = []
            for attempt in live:
                assert attempt.job_id is not None
                status = statuses.get(attempt.job_id) or JobStatus(attempt.job_id, JobState.UNKNOWN)
                change = self._change_for(attempt, status)
                if change is not None:
                    changes.append((attempt, status, change))
            if changes:
                self._apply_changes(changes)
                changed = True
        self._quiet_cycles = 0 if changed else getattr(self, "_quiet_cycles", 0) + 1

    def _reattach_by_name(self, intents: list[Attempt]) -> bool:
        try:
            found = self.scheduler.find_by_name([a.name for a in intents])
        except SchedulerUnavailable as exc:
            log.warning("lookup by name failed, will retry: %s", exc)
            return False
        with self.tx() as s:
            for attempt in intents:
                row = s.get(Attempt, attempt.id)
                assert row is not None
                if attempt.name in found:
                    row.job_id = found[attempt.name]
                    row.state = "submitted"
                    row.submitted_at = row.submitted_at or self.now()
                    self._event(s, "reattached", f"{row.name} found in the scheduler as job {row.job_id}")
                else:
                    self._resubmit.add(attempt.id)   # never got in: submit it, same name
        return True

    def _change_for(self, attempt: Attempt, status: JobStatus) -> Outcome | JobState | None:
        """What a status means for an attempt: a final outcome, a new live state, or nothing."""
        if status.state is JobState.UNKNOWN:
            seen = self._unknown_polls.get(attempt.id, 0) + 1
            self._unknown_polls[attempt.id] = seen
            if seen < VANISH_POLLS and not self._result_exists(attempt):
                return None
        else:
            self._unknown_polls.pop(attempt.id, None)
        if not status.state.terminal:
            if status.state.value == attempt.state and (status.node or None) == attempt.node:
                return None
            return status.state
        self._unknown_polls.pop(attempt.id, None)
        return judge(status, Path(attempt.run_dir),
                     None if attempt.kind == SETUP else self.config.objective_key)

    def _apply_changes(self, changes: list[tuple[Attempt, JobStatus, Outcome | JobState]]) -> None:
        """Record one poll's changes in one transaction (result files were read before it)."""
        with self.tx() as s:
            for attempt, status, change in changes:
                row = s.get(Attempt, attempt.id)
                assert row is not None
                if isinstance(change, Outcome):
                    self._record_outcome(s, row, change, status)
                    continue
                row.state = change.value
                row.node = status.node or row.node
                if change is JobState.RUNNING and row.started_at is None:
                    row.started_at = _ts(status.started_at) or self.now()

    def _result_exists(self, attempt: Attempt) -> bool:
        return (Path(attempt.run_dir) / "result.json").is_file()

    def _record_outcome(self, s: Session, row: Attempt, outcome: Outcome,
                        status: JobStatus | None) -> None:
        now = self.now()
        row.state = outcome.state
        row.failure_kind = outcome.failure_kind
        row.reason = outcome.reason
        if status is not None:
            row.exit_code = status.exit_code
            row.node = status.node or row.node
            row.started_at = row.started_at or _ts(status.started_at)
            row.ended_at = _ts(status.ended_at) or now
        else:
            row.ended_at = now
        if row.kind == SETUP:
            self._record_setup_outcome(s, row, outcome)
            return
        point = row.point
        assert point is not None
        if outcome.ok:
            crash_point("before-evaluation")
            s.add(Evaluation(point_id=point.id, value=outcome.value, metrics=outcome.values,
                             attempt_id=row.id, recorded_at=now))
            point.state = "done"
            self._event(s, "evaluated", f"point {point.params} = {outcome.value:.6g}",
                        {"point": point.key, "value": outcome.value})
            return
        if outcome.failure_kind == PROGRAM:
            point.program_failures += 1
        else:
            point.infra_failures += 1
        trial = self.config.model.trial
        spent = (point.program_failures > trial.retries
                 or point.infra_failures > trial.infra_retries)
        self._event(s, "attempt-failed", f"{row.name}: {outcome.reason}",
                    {"point": point.key, "kind": outcome.failure_kind, "spent": spent})
        if spent:
            s.add(Evaluation(point_id=point.id, value=None, failure=outcome.reason,
                             attempt_id=row.id, recorded_at=now))
            point.state = "failed"
            self._event(s, "point-failed", f"point {point.params} failed: {outcome.reason}",
                        {"point": point.key})
        else:
            point.state = "pending"

    # ---- setup job -------------------------------------------------------------------------------
    def _setup_done(self) -> bool:
        return self.config.model.setup is None or self._setup_outputs() is not None

    def _setup_outputs(self) -> dict[str, Any] | None:
        """The setup job's outputs once it succeeded (they never change after that)."""
        if self._setup_cache is None:
            with self.sessions() as s:
                exp = s.get(Experiment, self.experiment_id)
                self._setup_cache = exp.setup_outputs if exp is not None else None
        return self._setup_cache

    def _record_setup_outcome(self, s: Session, row: Attempt, outcome: Outcome) -> None:
        exp = s.get(Experiment, self.experiment_id)
        assert exp is not None
        if outcome.ok:
            exp.setup_outputs = {**(outcome.values or {}), "_run_dir": row.run_dir}
            self._event(s, "setup-done", f"setup succeeded: {outcome.values}")
            return
        self._event(s, "setup-failed", f"{row.name}: {outcome.reason}")

    def _advance_setup(self) -> bool:
        """Keep one setup attempt going; False once its budget is spent (experiment failed)."""
        setup = self.config.model.setup
        assert setup is not None
        with self.sessions() as s:
            attempts = s.execute(select(Attempt).where(
                Attempt.experiment_id == self.experiment_id, Attempt.kind == SETUP)
                .order_by(Attempt.number)).scalars().all()
        if any(a.state in ACTIVE_ATTEMPT_STATES for a in attempts):
            return True
        program = sum(a.failure_kind == PROGRAM for a in attempts)
        infra = sum(a.failure_kind == INFRA for a in attempts)
        if program > setup.retries or infra > setup.infra_retries:
            reason = attempts[-1].reason if attempts else "unknown"
            message = (f"setup job failed {len(attempts)} times, budget spent; last failure: "
                       f"{reason}; see {attempts[-1].run_dir if attempts else self.config.work_dir}")
            with self.tx() as s:
                exp = s.get(Experiment, self.experiment_id)
                assert exp is not None
                exp.state, exp.message, exp.finished_at = "failed", message, self.now()
                self._event(s, "experiment-failed", message)
            self._release()
            self.progress.message(f"experiment failed: {message}")
            return False
        self._submit_attempts(self._record_intents([(None, SETUP, len(attempts) + 1)]))
        return True

    # ---- the search ------------------------------------------------------------------------------
    def _outcomes(self, points: list[tuple[int, ...]] | None = None
                  ) -> dict[tuple[int, ...], float | None]:
        """Stored outcomes: of the given points (an indexed lookup), or of all (at start)."""
        query = select(Point.key, Evaluation.value).join(
            Evaluation, Evaluation.point_id == Point.id).where(
            Point.experiment_id == self.experiment_id)
        if points is not None:
            query = query.where(Point.key.in_([point_key(p) for p in points]))
        with self.sessions() as s:
            rows = s.execute(query).all()
        return {tuple(int(i) for i in key.split(",")): value for key, value in rows}

    def _rebuild(self) -> None:
        strategy = build_strategy(self.config, self.cap)
        outcomes = self._outcomes()
        self.evaluated = len(outcomes)
        with self.sessions() as s:
            self.speculated = s.execute(select(func.count()).select_from(Point).where(
                Point.experiment_id == self.experiment_id,
                Point.origin == "speculative")).scalar_one()
        self.replayed: Replay | None = replay(strategy, outcomes)
        self._record_stages()
        if self.replayed.current:
            self._ensure_points(self.replayed.current, self.replayed.rounds)

    def _advance_search(self) -> bool:
        """Tell the strategy about a completed round and ask for the next; True when done."""
        state = self.replayed
        assert state is not None
        outcomes = self._outcomes(state.current)
        while state.current and all(p in outcomes for p in state.current):
            state.strategy.tell({p: outcomes[p] for p in state.current})
            state.current = []
            self._record_stages()
            if state.strategy.done:
                break
            batch = state.strategy.ask()
            if not batch:
                break
            state.rounds += 1
            state.current = batch
            self._ensure_points(batch, state.rounds)
            outcomes = self._outcomes(batch)      # speculation may have measured some already
        if not state.current and not state.strategy.done:
            batch = state.strategy.ask()
            if batch:
                state.rounds += 1
                state.current = batch
                self._ensure_points(batch, state.rounds)
                return False
        return state.strategy.done and not self._active_count(search_only=True)

    def _ensure_points(self, batch: list[tuple[int, ...]], round_number: int) -> None:
        """Record a round's points; a point speculation already holds joins the round as is."""
        with self.tx() as s:
            keys = [point_key(p) for p in batch]
            existing = {p.key: p for p in s.execute(select(Point).where(
                Point.experiment_id == self.experiment_id, Point.key.in_(keys))).scalars()}
            for index, key in zip(batch, keys):
                point = existing.get(key)
                if point is None:
                    s.add(Point(experiment_id=self.experiment_id, key=key,
                                params=self.config.params_of(index), round=round_number,
                                created_at=self.now()))
                elif point.round is None:
                    point.round = round_number     # a speculative point the search now needs

    def _record_stages(self) -> None:
        assert self.replayed is not None
        stages = getattr(self.replayed.strategy, "stages", None)
        if not stages:
            return
        with self.tx() as s:
            recorded = s.execute(select(func.max(Stage.number)).where(
                Stage.experiment_id == self.experiment_id)).scalar() or 0
            for st in stages:
                if st.number <= recorded:
                    continue
                s.add(Stage(experiment_id=self.experiment_id, number=st.number, level=st.level,
                            base=list(st.base), points=[list(p) for p in st.points],
                            best=None if st.best is None else list(st.best),
                            best_value=st.best_value, moved=st.moved, recorded_at=self.now()))
                self._event(s, "stage", f"stage {st.number} (level {st.level}) done: "
                            f"{len(st.points)} points, best {st.best_value}")

    def _active_count(self, search_only: bool = False) -> int:
        """Attempts in flight (optionally only those of points the search asked for)."""
        query = select(func.count()).select_from(Attempt).where(
            Attempt.experiment_id == self.experiment_id,
            Attempt.state.in_(ACTIVE_ATTEMPT_STATES))
        if search_only:
            query = query.join(Point, Attempt.point_id == Point.id, isouter=True).where(
                (Point.round.is_not(None)) | (Attempt.point_id.is_(None)))
        with self.sessions() as s:
            return s.execute(query).scalar_one()

    # ---- submission ------------------------------------------------------------------------------
    def _submit(self) -> None:
        if self.clock() < self._submit_blocked_until:
            return
        if self._resubmit and not self._submit_attempts(sorted(self._resubmit)):
            return
        free = self.cap - self._active_count()
        if free <= 0 or not self._setup_done():
            return
        if self.replayed is not None and self.config.model.search.speculation == "on":
            self._speculate(free)
        tries = (select(Attempt.point_id, func.count().label("n"))
                 .where(Attempt.experiment_id == self.experiment_id)
                 .group_by(Attempt.point_id).subquery())
        with self.sessions() as s:
            pending = s.execute(select(Point.id, Point.key, func.coalesce(tries.c.n, 0))
                                .outerjoin(tries, tries.c.point_id == Point.id).where(
                Point.experiment_id == self.experiment_id, Point.state == "pending")
                .order_by(Point.round.is_(None), Point.round, Point.id).limit(free)).all()
        if pending:
            ids = self._record_intents([(pid, "p" + key.replace(",", "-"), n + 1)
                                        for pid, key, n in pending])
            self._submit_attempts(ids)

    def _speculate(self, free: int) -> None:
        """Fill slots the round leaves idle with points the search ranks as likely next."""
        with self.sessions() as s:
            waiting = s.execute(select(func.count()).select_from(Point).where(
                Point.experiment_id == self.experiment_id, Point.state == "pending")).scalar_one()
        budget = self.config.model.search.speculation_budget
        room = free - waiting
        if budget is not None:
            room = min(room, budget - self.speculated)
        speculate = getattr(self.replayed.strategy if self.replayed else None, "speculate", None)
        if room <= 0 or speculate is None or self.replayed is None or self.replayed.strategy.done:
            return
        candidates = speculate(room + len(self.replayed.current))
        keys = [point_key(p) for p in candidates]
        with self.tx() as s:
            existing = set(s.execute(select(Point.key).where(
                Point.experiment_id == self.experiment_id, Point.key.in_(keys))).scalars())
            new = [(p, k) for p, k in zip(candidates, keys) if k not in existing][:room]
            for index, key in new:
                s.add(Point(experiment_id=self.experiment_id, key=key, origin="speculative",
                            params=self.config.params_of(index), round=None, created_at=self.now()))
            if new:
                self._event(s, "speculate", f"prefetching {len(new)} points into idle slots")
        self.speculated += len(new)

    def _record_intents(self, wanted: list[tuple[int | None, str, int]]) -> list[int]:
        """Commit the attempts (point id or None for the setup job, its tag, attempt number)
        with their unique job names before anything is submitted."""
        with self.tx() as s:
            attempts = []
            for point_id, what, number in wanted:
                attempt = Attempt(experiment_id=self.experiment_id, point_id=point_id,
                                  kind=SETUP if point_id is None else "trial", number=number,
                                  name=job_name(self.config, self.instance, what, number),
                                  state="submitting", created_at=self.now(),
                                  run_dir=str(run_dir_for(self.config, what, number)))
                s.add(attempt)
                if point_id is not None:
                    point = s.get(Point, point_id)
                    assert point is not None
                    point.state = "active"
                attempts.append(attempt)
            s.flush()
            ids = [a.id for a in attempts]
        crash_point("after-intent")
        return ids

    def _spec_for(self, attempt: Attempt, outputs: dict[str, Any] | None) -> JobSpec:
        setup_dir = Path(outputs["_run_dir"]) if outputs else None
        if attempt.kind == SETUP:
            section, params = self.config.model.setup, {}
        else:
            assert attempt.point is not None
            section, params = self.config.model.trial, attempt.point.params
        assert section is not None
        try:
            return build_spec(self.config, section, name=attempt.name, run_dir=Path(attempt.run_dir),
                              attempt=attempt.number, params=params,
                              setup_outputs=outputs, setup_dir=setup_dir)
        except OSError as exc:
            raise MasterError(f"cannot prepare run directory {attempt.run_dir}: "
                              f"{exc.strerror or exc}") from None

    def _submit_attempts(self, attempt_ids: list[int]) -> bool:
        """Submit recorded attempts in order, then commit their job ids together.
        False: the scheduler asked us to wait (limit, outage); the rest stay recorded intents."""
        outputs = self._setup_outputs()        # before the session: it may open its own
        with self.sessions() as s:
            attempts = [s.get(Attempt, i) for i in attempt_ids]
            specs: list[tuple[int, JobSpec | str]] = []
            for attempt in attempts:
                assert attempt is not None
                try:
                    specs.append((attempt.id, self._spec_for(attempt, outputs)))
                except ValueError as exc:
                    specs.append((attempt.id, str(exc)))
        submitted: list[tuple[int, str]] = []
        going = True
        for attempt_id, spec in specs:
            if isinstance(spec, str):
                self._reject(attempt_id, spec)
                continue
            job_id = self._submit_one(attempt_id, spec)
            if job_id is None:
                going = False
                break
            if job_id:
                submitted.append((attempt_id, job_id))
        if submitted:
            with self.tx() as s:
                for attempt_id, job_id in submitted:
                    row = s.get(Attempt, attempt_id)
                    assert row is not None
                    row.job_id, row.state, row.submitted_at = job_id, "submitted", self.now()
        return going

    def _submit_one(self, attempt_id: int, spec: JobSpec) -> str | None:
        """The job id; "" if the scheduler rejected this job; None to stop submitting."""
        for tries in range(SUBMIT_TRIES):
            try:
                job_id = self.scheduler.submit(spec)
                crash_point("after-submit")
            except SubmitLimitReached as exc:
                log.info("submit limit reached, waiting: %s", exc)
                self._block_submissions()
                self._resubmit.add(attempt_id)
                return None
            except (JobRejected, ValueError) as exc:   # ValueError: a value the adapter refuses
                self._reject(attempt_id, f"scheduler rejected the job: {exc}")
                return ""
            except SchedulerUnavailable as exc:
                log.warning("submit of %s failed (%s); checking whether it got in", spec.name, exc)
                try:
                    found = self.scheduler.find_by_name([spec.name]).get(spec.name)
                except SchedulerUnavailable:
                    found = None
                if found is None:
                    if tries + 1 < SUBMIT_TRIES:
                        time.sleep(min(0.2 * 2 ** tries, 2.0))
                    continue
                job_id = found
            self._resubmit.discard(attempt_id)
            return job_id
        # The intent stays recorded: the next cycle looks the job up by name before resubmitting,
        # in case one of the failed submits got in after all.
        self._block_submissions()
        self._resubmit.discard(attempt_id)
        return None

    def _block_submissions(self) -> None:
        self._submit_blocked_until = self.clock() + self.config.model.scheduler.poll_interval * 2

    def _reject(self, attempt_id: int, reason: str) -> bool:
        with self.tx() as s:
            row = s.get(Attempt, attempt_id)
            assert row is not None
            self._record_outcome(s, row, Outcome(state="failed", failure_kind=PROGRAM,
                                                 reason=reason), None)
        self._resubmit.discard(attempt_id)
        return True

    # ---- the end ---------------------------------------------------------------------------------
    def _finish(self) -> None:
        self._cancel_jobs("search finished; speculative job no longer needed")
        summary = self.summary()
        with self.tx() as s:
            for point in s.execute(select(Point).where(Point.experiment_id == self.experiment_id,
                                                       Point.state == "pending")).scalars():
                point.state = "cancelled"          # speculation the search never needed
            exp = s.get(Experiment, self.experiment_id)
            assert exp is not None
            exp.state, exp.finished_at = "finished", self.now()
            self._event(s, "finished", f"experiment finished: best {summary['best']}", summary)
        self._release()
        self.progress.finish(summary)

    def summary(self) -> dict[str, Any]:
        with self.sessions() as s:
            exp = s.get(Experiment, self.experiment_id)
            assert exp is not None
            rows = s.execute(select(Point, Evaluation).join(Evaluation).where(
                Point.experiment_id == self.experiment_id).order_by(Evaluation.id)).all()
            attempts = s.execute(select(func.count()).select_from(Attempt).where(
                Attempt.experiment_id == self.experiment_id)).scalar_one()
        best = None
        for point, evaluation in rows:
            if evaluation.value is None:
                continue
            if best is None or (evaluation.value < best[1] if self.config.minimize
                                else evaluation.value > best[1]):
                best = (point.params, evaluation.value)
        started = exp.started_at or exp.created_at
        ended = exp.finished_at or self.now()
        return {
            "experiment": exp.name,
            "best": None if best is None else {"params": best[0], "value": best[1]},
            "evaluations": sum(e.value is not None for _, e in rows),
            "failed_points": sum(e.value is None for _, e in rows),
            "attempts": attempts,
            "wall_seconds": round((ended - started).total_seconds(), 1),
        }

    def _progress_snapshot(self) -> dict[str, Any]:
        with self.sessions() as s:
            counts = dict(s.execute(select(Attempt.state, func.count()).where(
                Attempt.experiment_id == self.experiment_id,
                Attempt.state.in_(ACTIVE_ATTEMPT_STATES)).group_by(Attempt.state)).all())
            done = s.execute(select(func.count()).select_from(Evaluation).join(Point).where(
                Point.experiment_id == self.experiment_id)).scalar_one()
        strategy = self.replayed.strategy if self.replayed else None
        best = strategy.best if strategy is not None else None
        return {
            "stage": getattr(strategy, "stage", None),
            "round": self.replayed.rounds if self.replayed else 0,
            "running": counts.get("running", 0),
            "pending": sum(counts.get(k, 0) for k in ("submitting", "submitted", "pending")),
            "done": done,
            "best": None if best is None else best[1],
        }


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def describe_change(old: dict[str, Any], new: dict[str, Any], config: Config) -> str:
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return (f"{config.path}: the search definition changed since the experiment started "
            f"({', '.join(changed)}); a changed space or objective is a new experiment: "
            f"give it another experiment.name or work_dir")
