"""The scheduler registry: every ``[scheduler] kind``, the options it takes, and its factory.

``SCHEDULERS[kind]`` is a :class:`SchedulerKind`. Its ``options`` declare, for each name a
user may put under ``[scheduler.options]``, a one-line doc, the expected type and the default,
so a config can be checked before any adapter (or libdrmaa) is imported: adapters are imported
lazily, by the factory, when one is built.

    entry = SCHEDULERS["pjm"]
    problems = entry.check_options({"rscgrp": "cx-share", "gpu": 1})   # all problems, at once
    scheduler = entry.create({"rscgrp": "cx-share"}, state_dir=work_dir / "scheduler", cap=4)

``create`` raises :class:`SchedulerOptionError` (a ``ValueError`` and a
``SchedulerMisconfigured``) with one line naming the option: an unknown name with "did you
mean" and the valid names, a missing required one, a value of the wrong type or out of range.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import Scheduler, SchedulerOptionError


@dataclass(frozen=True)
class Option:
    """One adapter option. ``type`` is one of OPTION_TYPES; ``default`` is for the docs (the
    adapter applies its own); ``choices`` and ``minimum`` bound the value."""

    doc: str
    type: str = "str"
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    exclusive_minimum: bool = False

    def problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` does not fit this option, or None."""
        check = OPTION_TYPES[self.type]
        if not check(value):
            return f"option {name!r} must be {TYPE_WORDS[self.type]}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"option {name!r} must be one of {', '.join(map(repr, self.choices))}, " \
                   f"got {value!r}"
        if self.minimum is not None and (
                value < self.minimum or (self.exclusive_minimum and value == self.minimum)):
            bound = ">" if self.exclusive_minimum else ">="
            return f"option {name!r} must be {bound} {self.minimum:g}, got {value!r}"
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


OPTION_TYPES: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": _is_int,
    "float": _is_number,
    "bool": lambda v: isinstance(v, bool),
    "list[str]": lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v),
    "table[str]": lambda v: isinstance(v, Mapping) and all(
        isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
}
TYPE_WORDS = {"str": "a string", "int": "an integer", "float": "a finite number",
              "bool": "true or false", "list[str]": "a list of strings",
              "table[str]": "a table of strings"}


@dataclass(frozen=True)
class BuildContext:
    """What the orchestrator supplies beside the user's options."""

    state_dir: Path          # the experiment's private directory for adapter state
    cap: int                 # scheduler.cap: the most jobs in flight


Factory = Callable[[dict[str, Any], BuildContext], Scheduler]


@dataclass(frozen=True)
class SchedulerKind:
    kind: str
    summary: str
    options: Mapping[str, Option]
    factory: Factory = field(repr=False)
    # The adapter can count the user's jobs in its queue (``Scheduler.user_active_jobs``), so
    # ``[scheduler] cap_scope = "user"`` is allowed; known before the adapter is imported.
    counts_user_jobs: bool = False

    def check_options(self, options: Mapping[str, Any]) -> list[str]:
        """Every problem with these options, each one line naming the option."""
        return [message for _, message in self._problems(options)]

    def _problems(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = [(name, self._unknown(name)) for name in options if name not in self.options]
        problems += [(name, f"option {name!r} is required for kind {self.kind!r}: {opt.doc}")
                     for name, opt in self.options.items()
                     if opt.required and name not in options]
        problems += [(name, p) for name, value in options.items() if name in self.options
                     if (p := self.options[name].problem(name, value))]
        return problems

    def _unknown(self, name: str) -> str:
        hint = _did_you_mean(name, self.options)
        return (f"unknown option {name!r} for kind {self.kind!r}{hint}; "
                f"valid options: {', '.join(self.options)}")

    def create(self, options: Mapping[str, Any], *, state_dir: Path, cap: int) -> Scheduler:
        """The adapter for these options; SchedulerOptionError names any bad one."""
        problems = self._problems(options)
        if problems:
            raise SchedulerOptionError(problems[0][0], "; ".join(m for _, m in problems))
        return self.factory(dict(options), BuildContext(Path(state_dir), cap))


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest known name (by spelling, else by prefix)."""
    names = list(known)
    near = difflib.get_close_matches(name, names, n=1, cutoff=0.6) or [
        n for n in names if n.startswith(name) or name.startswith(n)][:1]
    return f" (did you mean {near[0]!r}?)" if near else ""


def lookup(kind: str) -> SchedulerKind:
    """The registry entry of ``kind``; SchedulerOptionError with "did you mean" if none."""
    try:
        return SCHEDULERS[kind]
    except KeyError:
        hint = _did_you_mean(kind, SCHEDULERS)
        raise SchedulerOptionError("kind", f"unknown scheduler kind {kind!r}{hint}; "
                                           f"known kinds: {', '.join(SCHEDULERS)}") from None


# --- the kinds: factories import their adapter only when one is built ------------------------

_TIMEOUT = Option("seconds a scheduler command may take before it counts as failed",
                  "float", 60.0, minimum=0, exclusive_minimum=True)
_COMMANDS_DIR = Option("directory holding the scheduler's commands (default: found on PATH)",
                       "str")
_ENV = Option("environment of the scheduler's commands, replacing the master's", "table[str]")


def _local(options: dict[str, Any], ctx: BuildContext) -> Scheduler:
    from .local import LocalScheduler
    return LocalScheduler(ctx.state_dir, **{"slots": ctx.cap, **options})


def _slurm(options: dict[str, Any], ctx: BuildContext) -> Scheduler:
    from .slurm import SlurmScheduler
    return SlurmScheduler(**options)


def _pjm(options: dict[str, Any], ctx: BuildContext) -> Scheduler:
    from .pjm import PJMScheduler
    return PJMScheduler(**options)


def _drmaa(options: dict[str, Any], ctx: BuildContext) -> Scheduler:
    from .drmaa_adapter import DRMAAScheduler
    return DRMAAScheduler(state_dir=ctx.state_dir, **options)


SCHEDULERS: dict[str, SchedulerKind] = {
    "local": SchedulerKind("local", "real processes on this machine, queued in slots", {
        "slots": Option("jobs run at once (default: scheduler.cap)", "int", None, minimum=1),
        "gpus": Option("GPU ids handed out to jobs through CUDA_VISIBLE_DEVICES", "list[str]",
                       []),
        "python": Option("interpreter that runs each job's supervisor", "str",
                         "the master's own"),
        "kill_grace_s": Option("seconds between SIGTERM and SIGKILL when a job is stopped",
                               "float", 5.0, minimum=0),
    }, _local, counts_user_jobs=True),
    "slurm": SchedulerKind("slurm", "Slurm through sbatch / squeue / sacct / scancel", {
        "partition": Option("partition (--partition)"),
        "account": Option("account charged (--account)"),
        "qos": Option("quality of service (--qos)"),
        "gpu_option": Option("how GPUs are asked for: --gres=gpu:N or --gpus=N", "str", "gres",
                             choices=("gres", "gpus")),
        "gpu_type": Option("GPU type in the GPU request (gpu:<type>:N)"),
        "requeue": Option("let Slurm requeue a job after a node failure", "bool", False),
        "extra_directives": Option("more '#SBATCH ...' lines for every job", "list[str]", []),
        "history": Option("where finished jobs are looked up", "str", "auto",
                          choices=("auto", "sacct", "jobcomp", "none")),
        "history_days": Option("how far back finished jobs are looked up by name", "int", 30,
                               minimum=1),
        "command_timeout_s": _TIMEOUT,
        "commands_dir": _COMMANDS_DIR,
        "env": _ENV,
    }, _slurm, counts_user_jobs=True),
    "pjm": SchedulerKind("pjm", "Fujitsu PJM through pjsub / pjstat / pjdel", {
        "rscgrp": Option("resource group (-L rscgrp=), e.g. cx-share", required=True),
        "rscunit": Option("resource unit (-L rscunit=), e.g. cx"),
        "gpus": Option("GPUs per job (-L gpu=), overriding the job's own count", "int",
                       minimum=0),
        "extra_directives": Option("more '#PJM ...' lines for every job", "list[str]", []),
        "merge_output": Option("write stderr into the stdout file (-j)", "bool", False),
        "history_days": Option("days of pjstat -H history searched for finished jobs", "int",
                               7, minimum=1),
        "command_timeout_s": _TIMEOUT,
        "commands_dir": _COMMANDS_DIR,
        "env": _ENV,
    }, _pjm, counts_user_jobs=True),
    "drmaa": SchedulerKind("drmaa", "Grid Engine through DRMAA, with qstat / qacct", {
        "native_specification": Option("Grid Engine options for every job, e.g. '-q all.q'",
                                       "str", ""),
        "parallel_environment": Option("parallel environment for jobs with several cpus",
                                       "str", "smp"),
        "gpu_resource": Option("consumable resource that counts GPUs (-l <name>=N)"),
        "user": Option("user whose jobs qstat and qacct list", "str", "the current user"),
        "command_timeout_s": _TIMEOUT,
    }, _drmaa),
}
