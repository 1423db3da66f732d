"""The master: one long-running process per experiment, the only writer of its database.

Each cycle: renew the lease, poll the scheduler once for every job in flight and record outcomes
(``reconcile``), run the setup job (``setup_job``) or advance the search (``search_driver``), and
submit points up to the cap (``submit``). Every state change goes through ``ledger``. Intent
before action: an attempt is committed with its unique job name before the submit command runs
and its job id is committed right after, so a master killed at any instant is resumed by
reconciling those attempts against the scheduler by id or by name.
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
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from scheduler_adapters.base import Scheduler, SchedulerMisconfigured

from . import exitcodes, extend, ledger, queries
from .announce import announce, check_notifier
from .background import Interrupted, run_keeping_lease
from .config import Config
from .context import Context, MasterError
from .fail_fast import FailFast
from .faults import crash_point
from .guards import DatabaseWatch, refuse_new_over_old_runs, refuse_unsafe_change
from .lease import LeaseHeld, LeaseHolder, LeaseLost
from .models import Experiment, Lease
from .progress import Progress
from .reconcile import CancelFailed, Reconciler
from .render import best as best_text
from .schedulers import build_scheduler
from .search_driver import SearchDriver
from .setup_job import Failed, SetupJob, SetupOutputs
from .states import ExperimentState
from .store import create_schema, make_engine, schema_problem, session_factory
from .submit import Submitter
from .workdir import PrivateLogHandler, WorkDirUnsafe, check_work_dir, probe_writable

__all__ = ["Master", "MasterError"]

log = logging.getLogger("orchestrator.master")


@dataclass(frozen=True)
class Crew:
    """The collaborators of one claimed run, built together."""

    ctx: Context
    reconciler: Reconciler
    submitter: Submitter
    outputs: SetupOutputs
    setup: SetupJob | None
    search: SearchDriver
    fail_fast: FailFast


class Master:
    def __init__(self, config: Config, *, scheduler: Scheduler | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] | None = None,
                 progress: Progress | None = None,
                 known: tuple[str, dict[tuple[int, ...], float | None]] | None = None,
                 on_claimed: Callable[[], None] | None = None) -> None:
        self.config = config
        self.known = known                   # (source, results): a warm start of a new experiment
        self.on_claimed = on_claimed         # called once this process holds the lease
        self.clock = clock
        self._wake = threading.Event()
        self.sleep: Callable[[float], None] = sleep or self._wait
        self.progress = progress or Progress(quiet=True)
        self._scheduler = scheduler          # injected (simulation, tests), or built on claim
        self.stopping: str | None = None     # why the loop ends: a signal or a stop request
        self.cycles = 0
        self.fingerprint = config.fingerprint()

    def _wait(self, seconds: float) -> None:
        """The real sleep between cycles; a signal ends it early."""
        self._wake.wait(seconds)

    # ---- life cycle ------------------------------------------------------------------------------
    def run(self) -> int:
        """Start or resume the experiment; return the process exit code."""
        with self._signals():        # from the first instant: a SIGTERM always stops cleanly
            return self._run()

    def _run(self) -> int:
        engine: Engine | None = None
        watch: DatabaseWatch | None = None
        try:
            engine = self._open_engine()
            sessions = session_factory(engine)
            experiment_id, state, instance = self._open(engine, sessions)
            watch = DatabaseWatch(self.config)
            self._setup_logging()
            if state == ExperimentState.FINISHED:
                with sessions() as s:
                    summary = self._summary(s, experiment_id)
                self.progress.finish(summary)
                return exitcodes.OK if summary["best"] is not None else exitcodes.ERROR
            if state in ExperimentState.FINAL:
                with sessions() as s:
                    exp = s.get(Experiment, experiment_id)
                    message = exp.message if exp is not None else None
                raise MasterError(f"experiment {self.config.name!r} is {state}"
                                  f"{': ' + message if message else ''}; "
                                  "`start --fresh` archives it and starts over")
            check_notifier(self.config)   # a notifier that cannot run: fail before any work
            if self.stopping:
                self.progress.message(f"master stopped ({self.stopping}) before it started")
                return exitcodes.OK
            lease = self._claim(sessions, experiment_id)
            if self.on_claimed is not None:
                self.on_claimed()
            ctx = Context(self.config, sessions, experiment_id, instance, lease.holder,
                          self.clock, self.sleep)
            try:
                return self._run_claimed(ctx, lease.took_over, lambda: watch.check(engine))
            except LeaseLost:
                log.warning("lease lost: another master took over; exiting without writing")
                self.progress.message("another master took over this experiment; exiting")
                return exitcodes.LEASE_LOST
        except (OperationalError, OSError) as exc:
            if watch is not None and engine is not None:
                watch.check(engine)          # a deleted state.db: say so, and save what it held
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
            if engine is not None:
                engine.dispose()

    def _run_claimed(self, ctx: Context, took_over: bool, check_database: Callable[[], None]
                     ) -> int:
        with ctx.tx() as s:
            ledger.set_experiment_state(s, ctx.experiment_id, ExperimentState.RUNNING,
                                        at=ctx.now())
            ctx.event(s, "master-start", f"master pid {os.getpid()} started",
                      {"takeover": took_over})
        crew = self._assemble(ctx)   # builds the scheduler: a bad option fails before work
        try:
            return self._cycles(crew, check_database)
        except SchedulerMisconfigured as exc:
            # Every job would fail the same way: stop at once, charge no trial for it.
            message = f"the scheduler cannot run jobs as configured: {exc}"
            with ctx.tx() as s:
                ctx.event(s, "scheduler-misconfigured", message)
            self._release(ctx)
            raise MasterError(f"{message}; fix [scheduler] in {self.config.path} and "
                              "`start` again (nothing was recorded as a failure)",
                              exitcodes.USAGE) from None

    def _cycles(self, crew: Crew, check_database: Callable[[], None]) -> int:
        """Reconcile, then cycle until the search finishes, fails fast, the setup job fails or
        a stop. A search step interrupted by a stop ends at the next ``_check_stop``."""
        ctx = crew.ctx
        crew.reconciler.poll()           # reconcile every unfinished attempt before submitting
        if crew.outputs.ready():
            self._search_step(ctx, crew.search.rebuild)
        while True:
            self.cycles += 1
            crash_point("cycle")
            check_database()
            if (stop := self._check_stop(crew)) is not None:
                self._release(ctx)
                self.progress.message(stop.message)
                return stop.code
            crew.reconciler.poll()
            if (reason := crew.fail_fast.verdict()) is not None:
                return self._fail_fast(crew, reason)
            if crew.setup is not None and not crew.outputs.ready():
                if isinstance(failed := crew.setup.advance(), Failed):
                    announce(ctx, ExperimentState.FAILED, None)    # nothing measured yet
                    self._release(ctx)
                    self.progress.message(f"experiment failed: {failed.message}")
                    return exitcodes.ERROR
            else:
                if not self._search_step(ctx, crew.search.advance):
                    continue
                if crew.search.finished():
                    return self._finish(crew)
            crew.submitter.fill(crew.search.speculate if crew.outputs.ready() else None)
            self.progress.update(crew.search.progress())
            ctx.sleep(crew.reconciler.poll_interval())

    def _search_step(self, ctx: Context, step: Callable[[], None]) -> bool:
        """Run a search step while the lease is renewed; False if a stop came first."""
        def renew() -> None:
            with ctx.tx():
                pass                  # the lease check in every transaction renews it
        lease_timeout = self.config.model.experiment.lease_timeout
        try:
            run_keeping_lease(step, renew=renew, stopping=lambda: self.stopping is not None,
                              renew_every=min(self.config.model.scheduler.poll_interval,
                                              lease_timeout / 4))
        except Interrupted:
            return False
        return True

    def _assemble(self, ctx: Context) -> Crew:
        if self._scheduler is None:
            self._scheduler = build_scheduler(self.config)
        scheduler = self._scheduler
        absent: set[int] = set()     # intents a lookup answered "not there": submit again
        outputs = SetupOutputs(ctx)
        submitter = Submitter(ctx, scheduler, absent, outputs.get)
        setup = SetupJob(ctx, outputs, submitter) if self.config.model.setup is not None else None
        return Crew(ctx, Reconciler(ctx, scheduler, absent), submitter, outputs, setup,
                    SearchDriver(ctx), FailFast(ctx))

    def _open_engine(self) -> Engine:
        cfg = self.config
        try:
            check_work_dir(cfg.work_dir)
        except WorkDirUnsafe as exc:
            raise MasterError(str(exc), exitcodes.USAGE) from None
        try:
            if not cfg.work_dir.exists():
                cfg.work_dir.mkdir(parents=True, mode=0o700)
                os.chmod(cfg.work_dir, 0o700)
            probe_writable(cfg.work_dir)
        except OSError as exc:
            raise MasterError(f"work directory {cfg.work_dir} is not writable: "
                              f"{exc.strerror or exc}", exitcodes.USAGE) from None
        return make_engine(cfg.database_url, journal=cfg.model.experiment.sqlite_journal)

    def _open(self, engine: Engine, sessions: sessionmaker[Session]) -> tuple[int, str, str]:
        """The experiment's id, state and instance, created on the first start."""
        cfg = self.config
        for tries in range(3):
            try:
                create_schema(engine)
                problem = schema_problem(engine)
                if problem:
                    raise MasterError(f"the state database {cfg.database_url} was written by "
                                      f"another version of orchestrator ({problem}); finish or "
                                      "export it with that version, or start a new work_dir")
                return self._load_experiment(sessions)
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
        raise AssertionError("unreachable")

    def _load_experiment(self, sessions: sessionmaker[Session]) -> tuple[int, str, str]:
        cfg = self.config
        definition = cfg.search_definition()
        settings = {k: v for k, v in cfg.model.model_dump(mode="json").items()
                    if k not in ("parameters", "objective")}
        now = self._now()
        with sessions.begin() as s:
            exps = s.execute(select(Experiment)).scalars().all()
            if not exps:
                refuse_new_over_old_runs(cfg)
                exp = Experiment(name=cfg.name, fingerprint=self.fingerprint,
                                 instance=uuid.uuid4().hex[:8],
                                 definition=definition, settings=settings, created_at=now)
                s.add(exp)
                s.flush()
                ledger.add_event(s, exp.id, "created", f"experiment {cfg.name} created", at=now)
                if self.known is not None:
                    self._record_known(s, exp.id, now)
                return exp.id, exp.state, exp.instance
            exp = exps[0]
            if exp.name != cfg.name:
                raise MasterError(f"database {cfg.database_url} belongs to experiment "
                                  f"{exp.name!r}, not {cfg.name!r}", exitcodes.USAGE)
            if self.known is not None:
                raise MasterError(f"--warm-start: {cfg.name!r} already exists in "
                                  f"{cfg.database_url}; warm start a new experiment "
                                  "(`start --fresh --warm-start ...`)", exitcodes.USAGE)
            if exp.fingerprint != self.fingerprint:
                changed = cfg.search_changes(exp.definition)
                if changed:
                    self._extend(s, exp, now)
                else:
                    # Equal as a search (1 and 1.0, a seed no strategy reads): keep the new form.
                    exp.fingerprint, exp.definition = self.fingerprint, definition
                    ledger.add_event(s, exp.id, "definition-rewritten", "search definition "
                                     "rewritten in an equal form; accepted", at=now)
            refuse_unsafe_change(s, exp, settings, cfg)
            if exp.settings != settings:
                exp.settings = settings
                ledger.add_event(s, exp.id, "config-changed",
                                 "settings changed (cap, scheduler, retries, ...); accepted", at=now)
            return exp.id, exp.state, exp.instance

    def _extend(self, s: Session, exp: Experiment, now: datetime) -> None:
        """Continue on a grid whose candidate lists grew; refuse any other change, named."""
        definition = self.config.search_definition()
        mapping = extend.plan(exp.definition, definition)
        if mapping is None:
            raise MasterError(extend.refusal(exp.definition, definition, self.config),
                              exitcodes.USAGE)
        try:
            message = extend.apply(s, exp, mapping, self.config, self.fingerprint, at=now)
        except extend.ExtensionRefused as exc:
            raise MasterError(f"{self.config.path}: {exc}", exitcodes.USAGE) from None
        self.progress.message(f"{message}; every measured point kept")

    def _record_known(self, s: Session, experiment_id: int, now: datetime) -> None:
        assert self.known is not None
        source, results = self.known
        ledger.record_known(s, experiment_id, results, params_of=self.config.params_of,
                            source=source, at=now)
        ledger.add_event(s, experiment_id, "warm-start",
                         f"{len(results)} points known from {source}",
                         {"source": source, "points": len(results)}, at=now)

    def _claim(self, sessions: sessionmaker[Session], experiment_id: int) -> _Claim:
        holder = LeaseHolder(experiment_id, self.config.model.experiment.lease_timeout)
        try:
            took_over = holder.acquire(sessions)
        except LeaseHeld as exc:
            raise MasterError(f"a master is already running for {self.config.name!r}: {exc}",
                              exitcodes.ALREADY_RUNNING) from None
        return _Claim(holder, took_over)

    def _release(self, ctx: Context) -> None:
        try:
            ctx.lease.release(ctx.sessions)
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
            handler = PrivateLogHandler(path, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            root.addHandler(handler)
            root.setLevel(logging.INFO)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    # ---- stop and end ----------------------------------------------------------------------------
    def _check_stop(self, crew: Crew) -> Stop | None:
        """Why the loop ends now (a signal, ``stop``, ``cancel``), or None to go on."""
        ctx = crew.ctx
        with ctx.tx() as s:
            lease = s.get(Lease, ctx.experiment_id)
            exp = s.get(Experiment, ctx.experiment_id)
            assert exp is not None and lease is not None
            if lease.stop_requested and not self.stopping:
                self.stopping = "stop requested"
            if exp.state == ExperimentState.CANCELLED:
                self.stopping = "experiment cancelled"
        if self.stopping is None:
            return None
        if self.stopping == "experiment cancelled":
            cancel = crew.reconciler.cancel_all("experiment cancelled")
            if isinstance(cancel, CancelFailed):
                return Stop(f"experiment cancelled, but its jobs could not be cancelled at the "
                            f"scheduler ({cancel.reason}); they may still run: run "
                            f"`orchestrator cancel {self.config.path}` again", exitcodes.ERROR)
        return Stop(f"master stopped ({self.stopping}); jobs keep running; "
                    "`start` resumes the experiment", exitcodes.OK)

    def _fail_fast(self, crew: Crew, reason: str) -> int:
        """Stop the experiment: its trials fail alike and none succeeded (see ``fail_fast``)."""
        ctx = crew.ctx
        crew.reconciler.cancel_all("experiment failed fast")
        message = (f"{reason}; fix the trial (`orchestrator check CONFIG --run-one`), then "
                   "`orchestrator retry CONFIG --all-failed`")
        with ctx.tx() as s:
            ledger.set_experiment_state(s, ctx.experiment_id, ExperimentState.FAILED,
                                        at=ctx.now(), message=message)
            ctx.event(s, "experiment-failed", message, {"fail_fast": True})
        self._release(ctx)
        self.progress.message(f"experiment failed: {message}")
        return exitcodes.ERROR

    def _finish(self, crew: Crew) -> int:
        """Record the end of the search; non-zero when nothing was measured."""
        ctx = crew.ctx
        cancel = crew.reconciler.cancel_all("search finished; speculative job no longer needed")
        if isinstance(cancel, CancelFailed):
            self.progress.message(f"speculative jobs the search no longer needs could not be "
                                  f"cancelled ({cancel.reason}); they may still run")
        with ctx.read() as s:
            summary = self._summary(s, ctx.experiment_id)
        with ctx.tx() as s:
            ledger.cancel_pending_points(s, ctx.experiment_id)
            ledger.set_experiment_state(s, ctx.experiment_id, ExperimentState.FINISHED,
                                        at=ctx.now())
            ctx.event(s, "finished", f"experiment finished: best {best_text(summary['best'])}", summary)
        announce(ctx, ExperimentState.FINISHED,
                 summary["best"]["value"] if summary["best"] else None)
        self._release(ctx)
        self.progress.finish(summary)
        return exitcodes.OK if summary["best"] is not None else exitcodes.ERROR

    def summary(self) -> dict[str, Any]:
        """The experiment's result so far: best point, counts, wall time."""
        engine = make_engine(self.config.database_url,
                             journal=self.config.model.experiment.sqlite_journal)
        try:
            with session_factory(engine)() as s:
                exp = s.execute(select(Experiment)).scalars().one()
                return self._summary(s, exp.id)
        finally:
            engine.dispose()

    def _summary(self, s: Session, experiment_id: int) -> dict[str, Any]:
        exp = s.get(Experiment, experiment_id)
        assert exp is not None
        return queries.summary(s, exp, self._now())


@dataclass(frozen=True)
class Stop:
    """The loop ends: what to tell the user, and the exit code."""

    message: str
    code: int


@dataclass(frozen=True)
class _Claim:
    holder: LeaseHolder
    took_over: bool
