"""Running scheduler commands (sbatch, pjstat, ...) safely: argv lists, timeouts, no shell."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .base import SchedulerMisconfigured, SchedulerUnavailable, Unanswered

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0
CHECK_TIMEOUT_S = 10.0      # a "does it answer" probe: a login node slower than this is broken


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
    """Run a scheduler command. A hang or a crash raises SchedulerUnavailable; a command that
    does not exist or may not be executed raises SchedulerMisconfigured (no retry can help);
    a non-zero exit is returned to the caller, which knows what the command's codes mean."""
    try:
        proc = subprocess.run(list(argv), input=input_text, capture_output=True, text=True,
                              timeout=timeout, env=None if env is None else dict(env), cwd=cwd,
                              errors="replace")
    except subprocess.TimeoutExpired:
        raise SchedulerUnavailable(f"{argv[0]} timed out after {timeout:g} s") from None
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        if cwd is not None and exc.filename == cwd:
            # the job's run directory went away: a problem of this job, not of the command
            raise SchedulerUnavailable(f"{argv[0]} could not start in {cwd}: "
                                       f"{exc.strerror}") from None
        raise SchedulerMisconfigured(f"scheduler command {argv[0]} cannot be run: "
                                     f"{exc.strerror}") from None
    except OSError as exc:
        raise SchedulerUnavailable(f"{argv[0]} could not run: {exc.strerror}") from None
    result = CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    if proc.returncode != 0:
        log.debug("%s exited %d: %s", argv[0], proc.returncode, result.output[:500])
    return result


def command_problem(program: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why ``program`` (a name looked up on PATH, or a path) cannot be run; None if it can."""
    if os.sep in program:
        if not os.path.exists(program):
            return f"{program} does not exist"
        if os.path.isdir(program) or not os.access(program, os.X_OK):
            return f"{program} is not an executable file"
        return None
    search_path = (env or os.environ).get("PATH", os.defpath)
    if shutil.which(program, path=search_path) is None:
        return f"{program} is not on PATH"
    return None


def probe(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          timeout: float = CHECK_TIMEOUT_S, cwd: str | None = None,
          failure_is_outage: bool = False) -> str | None:
    """Run a harmless query; why it did not answer properly, or None when it did. A hang is
    ``Unanswered``, and so is a non-zero exit with ``failure_is_outage`` (a scheduler query
    whose command exists fails when its daemon is down, not because of the configuration)."""
    try:
        result = run_command(argv, timeout=timeout, env=env, cwd=cwd)
    except SchedulerUnavailable as exc:
        return Unanswered(str(exc))
    except SchedulerMisconfigured as exc:
        return str(exc)
    if result.returncode != 0:
        tail = " ".join(result.output.split())[:200] or "no output"
        answer = f"{' '.join(argv)} failed (exit {result.returncode}): {tail}"
        return Unanswered(answer) if failure_is_outage else answer
    return None
