"""The CLI's commands: start and stop the master, and read-only views for people and scripts."""
from __future__ import annotations

import argparse
import sys

from . import exitcodes, queries
from .cli import CliError, command, emit_json
from .config import load_config
from .render import block, table


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="CONFIG",
                   help="the experiment's config file (or its state database file or URL)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _start_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="the experiment's TOML config")
    p.add_argument("--quiet", action="store_true", help="no progress output (for cron)")


@command("start", "start or resume an experiment (foreground)", _start_args)
def start(args: argparse.Namespace) -> int:
    from .master import Master, MasterError
    from .progress import Progress
    config = load_config(args.config)
    master = Master(config, progress=Progress(sys.stderr, quiet=args.quiet))
    try:
        return master.run()
    except MasterError as exc:
        if exc.code == exitcodes.ALREADY_RUNNING and args.quiet:
            return exc.code          # cron: a live master is the normal case, say nothing
        raise CliError(str(exc), exc.code) from None


@command("status", "state, progress and best point of an experiment", _target)
def status(args: argparse.Namespace) -> int:
    data = queries.query(args.target, queries.status)
    if args.json:
        emit_json(data)
        return exitcodes.OK
    best = data["best"]
    master = data["master"]
    print(block([
        ("experiment", data["experiment"]),
        ("state", data["state"] + (f" ({data['message']})" if data["message"] else "")),
        ("master", "-" if master is None else
         f"pid {master['pid']} on {master['host']}, "
         f"{'alive' if master['alive'] else 'not running'}, heartbeat {master['heartbeat_age_s']:.0f} s ago"),
        ("stages done", data["stages_done"]),
        ("level", data["level"]),
        ("evaluations", data["evaluations"]),
        ("failed points", data["failed_points"]),
        ("running / pending", f"{data['running']} / {data['pending']}"),
        ("best", "-" if best is None else
         f"{best['value']:.6g} at {best['params']} (evaluation {best['evaluation']}, {best['found_at']})"),
    ]))
    return exitcodes.OK


@command("queue", "jobs in flight at the scheduler", _target)
def queue(args: argparse.Namespace) -> int:
    rows = queries.query(args.target, queries.queue)
    if args.json:
        emit_json(rows)
    elif not rows:
        print("no jobs in flight")
    else:
        print(table(rows, ["job_id", "name", "attempt", "state", "params", "submitted_at",
                           "elapsed_s", "node"]))
    return exitcodes.OK


@command("history", "every evaluation in order", _target)
def history(args: argparse.Namespace) -> int:
    rows = queries.query(args.target, queries.history)
    if args.json:
        emit_json(rows)
    elif not rows:
        print("no evaluations yet")
    else:
        print(table(rows, ["n", "value", "state", "attempts", "params", "failures"]))
    return exitcodes.OK
