"""``[notify]``: a command run once when an experiment finishes or fails, for mail or chat from
the cluster (``command = "/usr/local/bin/tell-team --channel tuning"``).

The command is split like a shell would split it (``shlex``) but never run through a shell; the
experiment's name, its state and the best value (``-`` when there is none) are appended as
three more arguments, so nothing from the experiment is ever parsed as shell syntax. It runs
without standard input, in the config's directory, in a session of its own, and is killed
(with everything it started) after ``timeout`` seconds. A notifier that fails is reported,
never fatal: the experiment's outcome is already recorded when it runs.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

OUTPUT_KEPT = 300                 # characters of the notifier's output kept in the report


class NotifySection(BaseModel):
    """The ``[notify]`` table of a config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | list[str]
    timeout: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("command")
    @classmethod
    def _splits_into_words(cls, command: str | list[str]) -> str | list[str]:
        words = argv_of(command)
        if not words or not words[0]:
            raise ValueError("the notify command is empty")
        if any("\x00" in w or "\n" in w for w in words):
            raise ValueError("the notify command contains a NUL byte or a newline")
        return command


def argv_of(command: str | list[str]) -> list[str]:
    """The command's words: a list as given, a string split like a shell would (no shell)."""
    if isinstance(command, list):
        return list(command)
    try:
        return shlex.split(command)
    except ValueError as exc:           # an unclosed quote
        raise ValueError(f"the notify command cannot be split into words: {exc}") from None


def program_problem(section: NotifySection, config_dir: Path) -> str | None:
    """Why the notifier's program cannot be run from here (None: it can)."""
    program = argv_of(section.command)[0]
    if "/" in program:
        path = config_dir / program
        ok = path.is_file() and os.access(path, os.X_OK)
    else:
        ok = shutil.which(program) is not None
    return None if ok else f"notify.command: {program} is not an executable program"


@dataclass(frozen=True)
class NotifyOutcome:
    ok: bool
    message: str           # one line: what happened, with the start of the program's output


def notify(section: NotifySection, config_dir: Path, experiment: str, state: str,
           best: float | None) -> NotifyOutcome:
    """Run the notifier for an experiment that ended in ``state``."""
    argv = [*argv_of(section.command), experiment, state, "-" if best is None else repr(best)]
    program = argv[0]
    if "/" in program:
        argv[0] = str(config_dir / program)
    try:
        proc = subprocess.Popen(argv, cwd=config_dir, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        return NotifyOutcome(False, f"notify command {program} could not start: "
                                    f"{exc.strerror or exc}")
    try:
        output, _ = proc.communicate(timeout=section.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)      # the notifier and whatever it started
        proc.communicate()
        return NotifyOutcome(False, f"notify command {program} killed after "
                                    f"{section.timeout:g} s")
    text = " ".join(output.decode(errors="replace").split())[:OUTPUT_KEPT]
    said = f": {text}" if text else ""
    if proc.returncode != 0:
        return NotifyOutcome(False, f"notify command {program} exited with {proc.returncode}"
                                    f"{said}")
    return NotifyOutcome(True, f"notify command {program} ran{said}")
