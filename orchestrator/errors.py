"""Errors a person can act on, each carrying the process exit code it means (``exitcodes``).

The read model, the plots, the simulation and the commands raise these; only ``cli.main``
turns them into a line on standard error and an exit status, so library callers (benchmarks,
notebooks) get an exception instead of a ``sys.exit``. The message is one line naming the
file, field or value at fault.
"""
from __future__ import annotations

from . import exitcodes


class OrchestratorError(Exception):
    """Base of every user-facing error; ``code`` is the exit status the CLI returns for it."""

    code: int = exitcodes.ERROR

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UsageError(OrchestratorError):
    """A command-line value that cannot be used (an unknown point, ``--top 0``)."""

    code = exitcodes.USAGE


class NoExperiment(OrchestratorError):
    """The work directory or database holds no experiment yet."""

    code = exitcodes.NO_EXPERIMENT

    def __init__(self, where: object) -> None:
        super().__init__(f"no experiment in {where}: run `orchestrator start CONFIG` first")


class SchemaMismatch(OrchestratorError):
    """The state database was written by a version of orchestrator with other tables."""


class MasterRunning(OrchestratorError):
    """The command needs the experiment's master to be stopped, and a live one holds it."""

    code = exitcodes.ALREADY_RUNNING


class CannotWrite(OrchestratorError):
    """An output file or directory named on the command line cannot be written."""

    code = exitcodes.USAGE


class PlotUnavailable(OrchestratorError):
    """Plotting needs an optional package that is not installed."""


class SimulationError(OrchestratorError):
    """A simulated campaign could not run or did not finish; ``code`` is the master's."""
