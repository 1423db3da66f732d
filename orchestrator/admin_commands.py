"""The CLI's write commands: cancel, retry and stop an experiment (listed in ``cli.COMMANDS``).

They open the database read-write (``store.make_engine``: BEGIN IMMEDIATE, busy timeout) and
keep each transaction to a few row updates, so a running master is never held up for long.
Whether a live master holds the experiment is decided inside the same transaction as the
change, so no master can take the lease in between.
"""
from __future__ import annotations

import argparse
import getpass
import math
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from scheduler_adapters.base import SchedulerError

from . import exitcodes, ledger, queries, recover
from .config import Config, load_config
from .errors import MasterRunning, NoExperiment, OrchestratorError, UsageError
from .lease import request_stop
from .models import Attempt, Experiment, point_key, utcnow
from .output import add_target
from .render import point as point_text
from .schedulers import build_scheduler
from .states import ExperimentState
from .store import (
    find_experiment,
    make_engine,
    retry_locked,
    session_factory,
    sqlite_path,
)

WAIT_POLL_S = 0.2


@contextmanager
def _sessions(config: Config) -> Iterator[sessionmaker[Session]]:
    db = sqlite_path(config.database_url)
    if db is not None and not db.exists():
        raise NoExperiment(db.parent)
    # The journal mode must match the master's: switching a WAL database back would need it alone.
    engine = make_engine(config.database_url, journal=config.model.experiment.sqlite_journal)
    try:
        yield session_factory(engine)
    except OperationalError as exc:      # a read-only file or filesystem, a full disk, ...
        detail = str(exc.orig or exc).splitlines()[0]
        raise OrchestratorError(f"cannot write the state database {config.database_url}: {detail}; "
                       "nothing was changed", exitcodes.ERROR) from None
    finally:
        engine.dispose()


def _experiment(s: Session, config: Config) -> Experiment:
    exp = find_experiment(s, config.database_url)
    if exp is None:
        raise NoExperiment(config.database_url)
    return exp


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):      # no login name and no passwd entry (some containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _event(s: Session, exp: Experiment, kind: str, message: str,
           data: dict[str, Any] | None = None) -> None:
    ledger.add_event(s, exp.id, kind, message, data, at=utcnow())


def _wait_released(config: Config, timeout: float | None) -> bool:
    """Wait until no live master holds the experiment; False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        master = queries.query(config.database_url, queries.master_info)
        if master is None or not master["alive"]:
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(WAIT_POLL_S)


def wait_args(p: argparse.ArgumentParser) -> None:
    add_target(p, database_ok=False)
    p.add_argument("--wait", action="store_true", help="wait until the master has exited")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="with --wait: give up after this long (exit 1)")


def _after_wait(config: Config, args: argparse.Namespace, pid: int) -> int:
    if not args.wait:
        return exitcodes.OK
    if not _wait_released(config, args.timeout):
        raise OrchestratorError(f"master pid {pid} is still running after {args.timeout:g} s")
    print(f"master pid {pid} has exited")
    return exitcodes.OK


# ---- stop --------------------------------------------------------------------------------------

def stop(args: argparse.Namespace) -> int:
    config = load_config(args.target)
    experiment_id, master = queries.query(
        config.database_url, lambda s, exp: (exp.id, queries.master_info(s, exp)))
    if master is None or not master["alive"]:
        print(f"no master is running for {config.name}; nothing to stop")
        return exitcodes.OK
    with _sessions(config) as sessions:
        lease = retry_locked(lambda: request_stop(sessions, experiment_id))
        if lease is None:
            print(f"no master is running for {config.name}; nothing to stop")
            return exitcodes.OK
        print(f"asked master pid {lease.pid} on {lease.host} to stop; it exits at its next "
              "cycle, jobs keep running; `start` resumes")
        return _after_wait(config, args, lease.pid)


# ---- cancel ------------------------------------------------------------------------------------

def cancel(args: argparse.Namespace) -> int:
    config = load_config(args.target)
    with _sessions(config) as sessions:
        decided = retry_locked(lambda: _mark_cancelled(sessions, config))
        if isinstance(decided, str):
            print(decided)
            return exitcodes.OK
        master, active = decided
        if master is not None:
            print(f"experiment {config.name} cancelled; master pid {master['pid']} on "
                  f"{master['host']} cancels its {active} jobs at its next cycle and exits")
            return _after_wait(config, args, master["pid"])
        cancelled = _cancel_jobs(sessions, config)
        print(f"experiment {config.name} cancelled; no master was running, "
              f"cancelled {cancelled} jobs at the scheduler")
        return exitcodes.OK


def _mark_cancelled(sessions: sessionmaker[Session], config: Config
                    ) -> str | tuple[dict[str, Any] | None, int]:
    """Set the state and say who cancels the jobs: the live master, or (None) this command.
    A string: nothing to do, and why."""
    with sessions.begin() as s:
        exp = _experiment(s, config)
        master = queries.master_info(s, exp)
        live = master if master is not None and master["alive"] else None
        active = Attempt.count_active(s, exp.id)
        if exp.state == ExperimentState.CANCELLED and active and live is None:
            return None, active          # an earlier cancel could not reach the scheduler
        if exp.state in ExperimentState.ENDED:
            return f"experiment {config.name} is already {exp.state}; nothing to cancel"
        ledger.set_experiment_state(s, exp.id, ExperimentState.CANCELLED, at=utcnow(),
                                    message=f"cancelled from {_who()}")
        _event(s, exp, "cancelled", f"experiment cancelled from {_who()} ({active} jobs in flight)",
               {"jobs": active})
        return live, active


def _cancel_jobs(sessions: sessionmaker[Session], config: Config) -> int:
    """No master runs: cancel the jobs at the scheduler ourselves and record it. Attempts whose
    submission was recorded but whose job id was not are looked up by their unique name."""
    attempts = queries.query(config.database_url, lambda s, exp: [
        (a.id, a.job_id, a.name) for a in Attempt.active(s, exp.id)])
    if not attempts:
        return 0
    scheduler = build_scheduler(config)
    try:
        unnamed = [name for _, job_id, name in attempts if job_id is None]
        found = scheduler.find_by_name(unnamed) if unnamed else {}
        job_ids = [job_id or found[name] for _, job_id, name in attempts
                   if job_id or name in found]
        scheduler.cancel(job_ids)
    except SchedulerError as exc:
        raise OrchestratorError(f"experiment {config.name} is cancelled, but its jobs could not "
                                f"be cancelled at the scheduler ({exc}); run `cancel` again"
                                ) from None
    finally:
        scheduler.close()
    with sessions.begin() as s:
        exp = _experiment(s, config)
        ledger.cancel_active(s, exp.id, "cancelled by `orchestrator cancel`", at=utcnow(),
                             found=found)
        _event(s, exp, "cancelled-jobs", f"{len(job_ids)} jobs cancelled at the scheduler "
               "(no master was running)", {"job_ids": job_ids})
    return len(job_ids)


# ---- retry -------------------------------------------------------------------------------------

def retry_args(p: argparse.ArgumentParser) -> None:
    add_target(p, database_ok=False)
    p.add_argument("points", metavar="POINT", nargs="*",
                   help="parameter values 'x=1,y=0.5' (every parameter) or a grid index '3,5,5'")
    p.add_argument("--all-failed", action="store_true",
                   help="every failed point (and those a fail-fast stop left unmeasured)")


def _matches(text: str, value: Any) -> bool:
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            return math.isclose(float(text), float(value), rel_tol=1e-9, abs_tol=1e-12)
        except ValueError:
            return False
    return text == str(value)


def point_key_of(spec: str, definition: dict[str, Any]) -> str:
    """The stored key ("3,5,5") of a point given as values or as an index; UsageError if none."""
    order: list[str] = definition["parameter_order"]
    values: dict[str, list[Any]] = definition["parameters"]
    if "=" not in spec:
        try:
            index = [int(i) for i in spec.split(",")]
        except ValueError:
            raise UsageError(f"point {spec!r}: give 'name=value,...' or an index like "
                             f"'{','.join('0' * len(order))}'") from None
        inside = all(0 <= i < len(values[n]) for i, n in zip(index, order))
        if len(index) != len(order) or not inside:
            raise UsageError(f"point {spec!r} is not an index of the grid "
                             f"({' x '.join(str(len(values[n])) for n in order)})")
        return point_key(index)
    given: dict[str, str] = {}
    for part in spec.split(","):
        name, sep, text = part.partition("=")
        if not sep or name.strip() not in values:
            raise UsageError(f"point {spec!r}: {part!r} is not name=value for a parameter "
                             f"({', '.join(order)})")
        given[name.strip()] = text.strip()
    missing = [n for n in order if n not in given]
    if missing:
        raise UsageError(f"point {spec!r}: no value for {', '.join(missing)}")
    index = []
    for name in order:
        hit = next((i for i, v in enumerate(values[name]) if _matches(given[name], v)), None)
        if hit is None:
            raise UsageError(f"point {spec!r}: {given[name]} is not a value of {name} "
                             f"({', '.join(map(str, values[name]))})")
        index.append(hit)
    return point_key(index)


def retry(args: argparse.Namespace) -> int:
    if bool(args.points) == bool(args.all_failed):
        raise UsageError("give the POINTs to retry, or --all-failed")
    config = load_config(args.target)
    with _sessions(config) as sessions:
        points, resumed = retry_locked(lambda: _reopen(sessions, config, args.points or None))
    again = " the experiment is running again;" if resumed else ""
    what = (f"point {point_text(points[0])} has" if len(points) == 1
            else f"{len(points)} points have")
    print(f"{what} a new budget;{again} `orchestrator start {args.target}` measures "
          f"{'it' if len(points) == 1 else 'them'}, and the search remakes its decisions")
    return exitcodes.OK


def _reopen(sessions: sessionmaker[Session], config: Config, specs: list[str] | None
            ) -> tuple[list[dict[str, Any]], bool]:
    with sessions.begin() as s:
        exp = _experiment(s, config)
        master = queries.master_info(s, exp)
        if master is not None and master["alive"]:
            raise MasterRunning(f"master pid {master['pid']} on {master['host']} is running: stop "
                                f"the master first (`orchestrator stop CONFIG --wait`)")
        keys = None if specs is None else [point_key_of(spec, exp.definition) for spec in specs]
        return recover.reopen(s, exp, keys, who=_who())
