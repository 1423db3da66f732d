"""Command line: ``python -m orchestrator COMMAND ...`` (also the ``orchestrator`` script).

Commands register themselves with ``@command``; each gets the parsed arguments and returns an
exit code (see ``exitcodes``). Known errors become one line on stderr and a distinct exit code.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import exitcodes
from .config import ConfigError

Handler = Callable[[argparse.Namespace], int]


@dataclass
class Command:
    name: str
    help: str
    handler: Handler
    configure: Callable[[argparse.ArgumentParser], None]


REGISTRY: dict[str, Command] = {}


def command(name: str, help: str,
            configure: Callable[[argparse.ArgumentParser], None] = lambda p: None
            ) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        REGISTRY[name] = Command(name, help, handler, configure)
        return handler
    return register


class CliError(Exception):
    """A user-facing error: one line, and the exit code to use."""

    def __init__(self, message: str, code: int = exitcodes.USAGE) -> None:
        super().__init__(message)
        self.code = code


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator", description="Auto-tune expensive programs on batch clusters.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in REGISTRY.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(handler=cmd.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from . import commands, master_commands, simulate  # noqa: F401  (they register commands)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    except CliError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
