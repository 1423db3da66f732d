"""The CLI commands that run a master: ``start`` (foreground or ``--detach``)."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from . import exitcodes
from .cli import CliError, command
from .config import Config, load_config
from .files import write_atomic
from .workdir import WorkDirUnsafe, check_work_dir, open_append_private

PID_FILE = "master.pid"


def _start_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="the experiment's TOML config")
    p.add_argument("--quiet", action="store_true",
                   help="no progress output, and silence when a master already runs (for cron)")
    p.add_argument("--detach", action="store_true",
                   help="run in the background: pid in WORK_DIR/master.pid, output in master.out")


@command("start", "start or resume an experiment", _start_args)
def start(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.detach:
        return _detach(config, quiet=args.quiet)
    return _run(config, quiet=args.quiet)


def _run(config: Config, *, quiet: bool, on_claimed: Callable[[], None] | None = None) -> int:
    from .master import Master, MasterError
    from .progress import Progress
    master = Master(config, progress=Progress(sys.stderr, quiet=quiet), on_claimed=on_claimed)
    try:
        return master.run()
    except MasterError as exc:
        if exc.code == exitcodes.ALREADY_RUNNING and quiet:
            return exc.code          # cron: a live master is the normal case; say nothing
        raise CliError(str(exc), exc.code) from None


def _detach(config: Config, *, quiet: bool) -> int:
    """Daemonize (double fork, new session), then run the master as usual in the grandchild.
    The pid file is written once the daemon holds the lease: a second ``start --detach`` (cron's)
    that finds a master running leaves that master's pid file alone."""
    try:
        check_work_dir(config.work_dir)
    except WorkDirUnsafe as exc:
        raise CliError(str(exc)) from None
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
        code = _run(config, quiet=True, on_claimed=lambda: _write_pid(config.work_dir))
    except CliError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        code = exc.code
    finally:
        if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
    os._exit(code)


def _write_pid(work_dir: Path) -> None:
    write_atomic(work_dir / PID_FILE, f"{os.getpid()}\n")
