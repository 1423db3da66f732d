"""Running scheduler commands (sbatch, pjstat, ...) safely: argv lists, timeouts, no shell."""
from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .base import SchedulerUnavailable

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return (self.stdout + "\n" + self.stderr).strip()


def run_command(argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S,
                input_text: str | None = None, env: Mapping[str, str] | None = None,
                cwd: str | None = None) -> CommandResult:
    """Run a scheduler command. A hang, a missing binary or a crash raises SchedulerUnavailable;
    a non-zero exit is returned to the caller, which knows what the command's codes mean."""
    try:
        proc = subprocess.run(list(argv), input=input_text, capture_output=True, text=True,
                              timeout=timeout, env=None if env is None else dict(env), cwd=cwd,
                              errors="replace")
    except subprocess.TimeoutExpired:
        raise SchedulerUnavailable(f"{argv[0]} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise SchedulerUnavailable(f"{argv[0]} could not run: {exc.strerror}") from None
    result = CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    if proc.returncode != 0:
        log.debug("%s exited %d: %s", argv[0], proc.returncode, result.output[:500])
    return result
