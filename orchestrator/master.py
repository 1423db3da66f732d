"""The master: one long-running process per experiment, the only writer of its database.

The master opens the experiment (``opening``), claims its lease, and cycles: renew the lease,
poll the scheduler once for every job in flight and record outcomes (``reconcile``), run the
setup job (``setup_job``) or advance the search (``search_driver``), and submit points up to the
cap (``submit``), until the run ends (``ending``). Every state change goes through ``ledger``.
Intent before action: an attempt is committed with its unique job name before the submit command
runs and its job id is committed right after, so a master killed at any instant is resumed by
reconciling those attempts against the scheduler by id or by name.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from scheduler_adapters.base import Scheduler, SchedulerMisconfigured

from . import exitcodes, ledger
from .announce import check_notifier
from .background import Interrupted, run_keeping_lease
from .config import Config
from .context import Context, MasterError
from .ending import CANCELLED, Ending, summary
from .fail_fast import FailFast
from .faults import crash_point
from .guards import DatabaseWatch
from .lease import LeaseHeld, LeaseHolder, LeaseLost
from .models import Experiment, Lease
from .opening import Known, Opener
from .progress import Progress
from .reconcile import Reconciler
from .schedulers import build_scheduler
from .search_driver import SearchDriver
from .setup_job import Failed, SetupJob, SetupOutputs
from .states import ExperimentState
from .store import make_engine, session_factory
from .submit import Submitter
from .workdir import PrivateLogHandler

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
    ending: Ending


class Master:
    def __init__(self, config: Config, *, scheduler: Scheduler | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] | None = None,
                 progress: Progress | None = None,
                 known: Known | None = None,
                 on_claimed: Callable[[], None] | None = None) -> None:
        self.config = config
        self.opener = Opener(config, known=known, clock=clock)   # known: a warm start
        self.on_claimed = on_claimed         # called once this process holds the lease
        self.clock = clock
        self._wake = threading.Event()
        self.sleep: Callable[[float], None] = sleep or self._wait
        self.progress = progress or Progress(quiet=True)
        self._scheduler = scheduler          # injected (simulation, tests), or built on claim
        self.stopping: str | None = None     # why the loop ends: a signal or a stop request
        self.cycles = 0

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
            engine = self.opener.engine()
            sessions = session_factory(engine)
            opened = self.opener.open(engine, sessions)
            experiment_id, state = opened.experiment_id, opened.state
            watch = DatabaseWatch(self.config)
            self._setup_logging()
            if opened.extended is not None:
                self.progress.message(f"{opened.extended}; every measured point kept")
            if state == ExperimentState.FINISHED:
                with sessions() as s:
                    result = summary(s, experiment_id, self._now())
                self.progress.finish(result)
                return exitcodes.OK if result["best"] is not None else exitcodes.ERROR
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
            ctx = Context(self.config, sessions, experiment_id, opened.instance, lease.holder,
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
            crew.ending.release()
            raise MasterError(f"{message}; fix [scheduler] in {self.config.path} and "
                              "`start` again (nothing was recorded as a failure)",
                              exitcodes.USAGE) from None

    def _cycles(self, crew: Crew, check_database: Callable[[], None]) -> int:
        """Reconcile, then cycle until the search finishes, fails fast, the setup job fails or
        a stop. A search step interrupted by a stop ends at the next ``_stop_reason``."""
        ctx = crew.ctx
        crew.reconciler.poll()           # reconcile every unfinished attempt before submitting
        if crew.outputs.ready():
            self._search_step(ctx, crew.search.rebuild)
        while True:
            self.cycles += 1
            crash_point("cycle")
            check_database()
            if (why := self._stop_reason(ctx)) is not None:
                return crew.ending.stopped(why)
            crew.reconciler.poll()
            if (reason := crew.fail_fast.verdict()) is not None:
                return crew.ending.fail_fast(reason)
            if crew.setup is not None and not crew.outputs.ready():
                if isinstance(failed := crew.setup.advance(), Failed):
                    return crew.ending.setup_failed(failed.message)
            else:
                if not self._search_step(ctx, crew.search.advance):
                    continue
                if crew.search.finished():
                    return crew.ending.finish()
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
        reconciler = Reconciler(ctx, scheduler, absent)
        return Crew(ctx, reconciler, submitter, outputs, setup, SearchDriver(ctx), FailFast(ctx),
                    Ending(ctx, reconciler, self.progress))

    def _claim(self, sessions: sessionmaker[Session], experiment_id: int) -> _Claim:
        holder = LeaseHolder(experiment_id, self.config.model.experiment.lease_timeout)
        try:
            took_over = holder.acquire(sessions)
        except LeaseHeld as exc:
            raise MasterError(f"a master is already running for {self.config.name!r}: {exc}",
                              exitcodes.ALREADY_RUNNING) from None
        return _Claim(holder, took_over)

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

    def _stop_reason(self, ctx: Context) -> str | None:
        """Why the loop ends now (a signal, ``stop``, ``cancel``), or None to go on."""
        with ctx.tx() as s:
            lease = s.get(Lease, ctx.experiment_id)
            exp = s.get(Experiment, ctx.experiment_id)
            assert exp is not None and lease is not None
            if lease.stop_requested and not self.stopping:
                self.stopping = "stop requested"
            if exp.state == ExperimentState.CANCELLED:
                self.stopping = CANCELLED
        return self.stopping

    def summary(self) -> dict[str, Any]:
        """The experiment's result so far: best point, counts, wall time."""
        engine = make_engine(self.config.database_url,
                             journal=self.config.model.experiment.sqlite_journal)
        try:
            with session_factory(engine)() as s:
                exp = s.execute(select(Experiment)).scalars().one()
                return summary(s, exp.id, self._now())
        finally:
            engine.dispose()


@dataclass(frozen=True)
class _Claim:
    holder: LeaseHolder
    took_over: bool
