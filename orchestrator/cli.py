"""Command line: ``python -m orchestrator COMMAND ...`` (also the ``orchestrator`` script).

Every command is one row of ``COMMANDS``: its name, its one-line help, a function that adds its
arguments to an ``argparse`` parser, and a handler that gets the parsed arguments and returns an
exit code (see ``exitcodes``). Command modules never import this one. Errors a person can act
on (``errors.OrchestratorError`` and its kinds: a bad config, a master that cannot go on, ...)
become one line on standard error and their exit code here, in ``main``, and nowhere else.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import (
    admin_commands,
    check_commands,
    commands,
    completion,
    exitcodes,
    logs,
    master_commands,
    simulate,
    starter,
)
from .dashboard import command as dashboard_command
from .errors import OrchestratorError
from .version import __version__

Handler = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: Arguments
    handler: Handler


COMMANDS: tuple[Command, ...] = (
    Command("start", "start or resume an experiment",
            master_commands.start_args, master_commands.start),
    Command("check", "validate a config, its options and the scheduler before anything exists; "
            "show the first job script (--run-one: run that trial once)",
            check_commands.check_args, check_commands.check),
    Command("status", "state, progress and best point of an experiment",
            commands.status_args, commands.status),
    Command("queue", "jobs in flight at the scheduler", commands.read_args, commands.queue),
    Command("history", "every evaluation in order (--failed, --run-dir)",
            commands.history_args, commands.history),
    Command("logs", "a trial's stdout, stderr and run directory (--attempt N, --follow)",
            logs.logs_args, logs.logs),
    Command("stages", "the search's stages: base, level, points, best, duration",
            commands.read_args, commands.stages),
    Command("best", "the best point found so far, with its measurement",
            commands.best_args, commands.best),
    Command("events", "recent events of the experiment (oldest first)",
            commands.events_args, commands.events),
    Command("export", "all evaluations with parameters, value, metrics and attempts",
            commands.export_args, commands.export),
    Command("plot", "PNG plots: objective, job timeline, slot use, slices, DSICE path, "
            "parallel coordinates",
            commands.plot_args, commands.plot),
    Command("stop", "ask the running master to exit at its next cycle (jobs keep running)",
            admin_commands.wait_args, admin_commands.stop),
    Command("cancel", "cancel the experiment and all its jobs (final: it cannot be resumed)",
            admin_commands.wait_args, admin_commands.cancel),
    Command("retry", "give a failed point a new budget (the master must be stopped)",
            admin_commands.retry_args, admin_commands.retry),
    Command("dashboard", "a live read-only web page of one experiment or of all under a directory",
            dashboard_command.dashboard_args, dashboard_command.dashboard),
    Command("simulate", "run the experiment against a simulated cluster on a virtual clock",
            simulate.simulate_args, simulate.simulate),
    Command("init", "write a commented starter config for a trial command and a scheduler",
            starter.init_args, starter.init),
    Command("completion", "print a shell completion script: eval \"$(orchestrator completion "
            "bash)\"", completion.completion_args, lambda args: print_completion(args.shell)),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator", description="Auto-tune expensive programs on batch clusters.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.arguments(p)
        p.set_defaults(handler=cmd.handler)
    return parser


def print_completion(shell: str) -> int:
    """The completion command lives here because it reads the whole parser."""
    print(completion.script(build_parser(), shell), end="")
    return exitcodes.OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except OrchestratorError as exc:
        return _fail(str(exc), exc.code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return exitcodes.OK


def _fail(message: str, code: int) -> int:
    print(f"orchestrator: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
