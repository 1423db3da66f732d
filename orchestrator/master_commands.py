"""The CLI command that runs a master: ``start`` (foreground or ``--detach``)."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from . import check_commands, exitcodes, recover
from .check import preflight
from .config import Config, load_config
from .errors import OrchestratorError
from .files import write_atomic
from .opening import Known
from .output import add_target
from .store import sqlite_path
from .strategies import build_strategy
from .workdir import check_work_dir, open_append_private

PID_FILE = "master.pid"


def start_args(p: argparse.ArgumentParser) -> None:
    add_target(p, database_ok=False)
    p.add_argument("--quiet", action="store_true",
                   help="no progress output, and silence when a master already runs (for cron)")
    p.add_argument("--detach", action="store_true",
                   help="run in the background: pid in WORK_DIR/master.pid, output in master.out")
    p.add_argument("--dry-run", action="store_true",
                   help="check everything and show the first job script, then stop (= check)")
    p.add_argument("--fresh", action="store_true",
                   help="archive the old state to WORK_DIR/archive/<time>/ and start over")
    p.add_argument("--warm-start", metavar="OTHER",
                   help="a new experiment that knows the measured points of OTHER (its config "
                        "or state database): none of them is measured again")


def start(args: argparse.Namespace) -> int:
    if args.dry_run:
        return check_commands.check(argparse.Namespace(target=args.target, run_one=False,
                                                       json=False))
    config = load_config(args.target)
    new = args.fresh or not _has_state(config)
    for warning in preflight(config, new=new):   # stop before any state is created or changed
        if not args.quiet:
            print(f"orchestrator: warning: {warning}", file=sys.stderr)
    known = None if args.warm_start is None else _known(args.warm_start, config, args.quiet)
    if args.fresh:
        archived = recover.archive(config)
        if archived is not None and not args.quiet:
            print(f"orchestrator: the old state is in {archived}", file=sys.stderr)
    if args.detach:
        return _detach(config, quiet=args.quiet, known=known)
    return _run(config, quiet=args.quiet, known=known)


def _has_state(config: Config) -> bool:
    """Whether the experiment may exist already (a server database: assume so)."""
    db = sqlite_path(config.database_url)
    return db is None or db.exists()


def _known(other: str, config: Config, quiet: bool) -> Known:
    """The warm start's results: OTHER's measured points that are valid points of this grid."""
    strategy = build_strategy(config, config.model.scheduler.cap)
    results = {p: v for p, v in recover.known_results(other, config).items()
               if strategy.is_valid(p)}
    if not quiet:
        print(f"orchestrator: warm start: {len(results)} measured points of {other} are points "
              "of this grid; none is measured again", file=sys.stderr)
    return other, results


def _run(config: Config, *, quiet: bool, known: Known | None = None,
         on_claimed: Callable[[], None] | None = None) -> int:
    from . import queries
    from .master import Master, MasterError
    from .progress import Progress
    progress = Progress(sys.stderr, quiet=quiet,
                        overview=lambda: queries.query(config.database_url, queries.status))
    master = Master(config, progress=progress, known=known, on_claimed=on_claimed)
    try:
        return master.run()
    except MasterError as exc:
        if exc.code == exitcodes.ALREADY_RUNNING and quiet:
            return exc.code          # cron: a live master is the normal case; say nothing
        raise


def _detach(config: Config, *, quiet: bool, known: Known | None = None) -> int:
    """Daemonize (double fork, new session), then run the master as usual in the grandchild.
    The pid file is written once the daemon holds the lease: a second ``start --detach`` (cron's)
    that finds a master running leaves that master's pid file alone."""
    check_work_dir(config.work_dir)
    config.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    pid_file = config.work_dir / PID_FILE
    out_file = config.work_dir / "master.out"
    read_end, write_end = os.pipe()
    if os.fork() > 0:                       # the original process: report the daemon's pid
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            pid = pipe.read().strip()
        if not quiet:
            print(f"master started in the background: pid {pid}, log {out_file}")
        return exitcodes.OK
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    fd = open_append_private(out_file)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.write(write_end, str(os.getpid()).encode())
    os.close(write_end)
    try:
        code = _run(config, quiet=True, known=known,
                    on_claimed=lambda: _write_pid(config.work_dir))
    except OrchestratorError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        code = exc.code
    finally:
        if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
    os._exit(code)


def _write_pid(work_dir: Path) -> None:
    write_atomic(work_dir / PID_FILE, f"{os.getpid()}\n")
