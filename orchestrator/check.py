"""Everything ``start`` would trip over, found before anything exists (``orchestrator check``).

``inspect_config`` reads a config and reports every problem at once: the config's own errors,
search and scheduler options against what each strategy and adapter declares (an unknown name
with "did you mean" and the valid ones), the scheduler's commands (``Scheduler.check``), the work
directory, and the trial command rendered for the first point. It creates nothing: the
adapter is built with a throw-away state directory and the job is described, not prepared.
``preflight`` is the part ``start`` runs before it creates or resumes the experiment.
"""
from __future__ import annotations

import difflib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scheduler_adapters import SCHEDULERS, JobSpec, Scheduler, SchedulerMisconfigured
from scheduler_adapters.base import Unanswered, render_script
from search.explore import DSICE_OPTIONS, EXPLORE_OPTIONS

from . import exitcodes, extend, queries
from .config import Config, ConfigError, describe_errors, read_toml, validate_config
from .config_model import SETUP_PREFIX, ConfigModel
from .errors import OrchestratorError
from .states import ExperimentState
from .store import sqlite_path
from .strategies import build_strategy
from .trials import job_name, job_spec, run_dir_for

# The options each strategy takes under [search.options] (``cap`` defaults to scheduler.cap).
SEARCH_OPTIONS: dict[str, tuple[str, ...]] = {
    "dsice": ("cap", *DSICE_OPTIONS, *EXPLORE_OPTIONS),
    "grid": ("cap",),
    "random": ("cap", "seed", "max_evaluations"),
}
DOLLAR_BRACE = re.compile(r"\$\{")
CHECK_INSTANCE = "check"          # stands in for the experiment instance in shown job names


class SchedulerNotReady(OrchestratorError):
    """The scheduler's commands are missing or do not answer: no job could run."""


@dataclass
class Inspection:
    """What ``check`` found: problems (each one line), warnings, and the first job."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    config: Config | None = None
    first_point: dict[str, Any] | None = None
    first_spec: JobSpec | None = None
    script: str | None = None


def inspect_config(path: Path, *, probe_scheduler: bool = True) -> Inspection:
    """Every problem of the config at ``path``, all at once; nothing is created."""
    found = Inspection()
    try:
        raw = read_toml(path)
    except ConfigError as exc:
        found.errors.append(str(exc))
        return found
    found.errors += [f"{path}: {p}" for p in option_problems(raw)]
    try:
        ConfigModel.model_validate(raw)
    except ValidationError as exc:
        found.errors += [f"{path}: {message}" for message in describe_errors(exc)]
        return found
    try:
        config = validate_config(raw, path)
    except ConfigError as exc:
        found.errors.append(str(exc))
        return found
    found.config = config
    found.warnings += template_warnings(config)
    if not found.errors:
        try:
            build_strategy(config, config.model.scheduler.cap)  # option values, constraint
        except ConfigError as exc:
            found.errors.append(str(exc))
    problem = work_dir_problem(config.work_dir)
    if problem:
        found.errors.append(problem)
    exists = existing_experiment(config, found)
    if found.errors:
        return found
    with throwaway_scheduler(config) as scheduler:
        if probe_scheduler:
            kind = config.model.scheduler.kind
            stops, waits = sort_answers(scheduler.check(work_dir=config.work_dir), new=not exists)
            found.errors += [f"scheduler {kind}: {p}" for p in stops]
            found.warnings += [f"scheduler {kind} does not answer now: {p}; start goes on and "
                               "its master re-attaches once it does" for p in waits]
        describe_first_job(config, scheduler, found)
    return found


def sort_answers(answers: list[str], *, new: bool) -> tuple[list[str], list[str]]:
    """The scheduler's ``check`` answers that stop ``start``, and those it only warns of: a
    scheduler that does not answer now (``Unanswered``) stops only a new experiment, as a
    restart's master waits for it to re-attach to the jobs in flight."""
    waits: list[str] = [] if new else [a for a in answers if isinstance(a, Unanswered)]
    return [a for a in answers if new or not isinstance(a, Unanswered)], waits


def option_problems(raw: Mapping[str, Any]) -> list[str]:
    """Unknown search options and bad scheduler options, from the raw TOML table."""
    problems = []
    search = raw.get("search", {})
    if isinstance(search, Mapping) and isinstance(search.get("options", {}), Mapping):
        known = SEARCH_OPTIONS.get(search.get("strategy", "dsice"))
        if known is not None:
            problems += [f"search.options: unknown option {name!r} for strategy "
                         f"{search.get('strategy', 'dsice')!r}{did_you_mean(name, known)}; "
                         f"valid options: {', '.join(known)}"
                         for name in search.get("options", {}) if name not in known]
    scheduler = raw.get("scheduler", {})
    if isinstance(scheduler, Mapping) and isinstance(scheduler.get("options", {}), Mapping):
        entry = SCHEDULERS.get(scheduler.get("kind", "local"))
        if entry is not None:
            problems += [f"scheduler.options: {p}"
                         for p in entry.check_options(scheduler.get("options", {}))]
    return problems


def did_you_mean(name: str, known: tuple[str, ...] | list[str]) -> str:
    near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def template_warnings(config: Config) -> list[str]:
    """Likely mistakes in the command templates that are still valid syntax."""
    warnings = []
    for name in ("trial", "setup"):
        section = getattr(config.model, name)
        if section is not None and DOLLAR_BRACE.search(section.command):
            warnings.append(f"{name}.command has '${{' : placeholders are {{name}} (no shell "
                            "runs the command, so the '$' reaches the program as is)")
    return warnings


def existing_experiment(config: Config, found: Inspection) -> bool:
    """What ``start`` would say about the experiment already in the work directory; whether
    there is one."""
    db = sqlite_path(config.database_url)
    if db is not None and not db.exists():
        return False
    try:
        definition, state = queries.query(str(config.path),
                                          lambda s, exp: (exp.definition, exp.state))
    except OrchestratorError:        # none yet, or unreadable: `start` says which
        return False
    new = config.search_definition()
    if definition != new:
        if extend.plan(definition, new) is None:
            found.errors.append(extend.refusal(definition, new, config))
        else:
            found.warnings.append("start extends the grid of the existing experiment ("
                                  + "; ".join(extend.differences(definition, new))
                                  + "); every measured point is kept")
    if state in ExperimentState.FINAL:
        found.warnings.append(f"the experiment in {config.work_dir} is {state}: start refuses "
                              "it (`start --fresh` archives it; after a fail-fast stop, "
                              "`retry --all-failed` reopens it)")
    return True


def work_dir_problem(work_dir: Path) -> str | None:
    """Why the work directory could not be created or written, without creating it."""
    existing = work_dir
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"work_dir {work_dir}: {existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is not writable" if existing == work_dir else f"cannot be created in {existing}"
        return f"work_dir {work_dir} {what}"
    return None


@contextmanager
def throwaway_scheduler(config: Config) -> Iterator[Scheduler]:
    """The configured adapter with its state in a temporary directory (removed afterwards)."""
    sched = config.model.scheduler
    state_dir = Path(tempfile.mkdtemp(prefix="orchestrator-check-"))
    try:
        scheduler = SCHEDULERS[sched.kind].create(sched.options, state_dir=state_dir,
                                                  cap=sched.cap)
        try:
            yield scheduler
        finally:
            scheduler.close()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def first_point(config: Config) -> tuple[int, ...] | None:
    """The point the search proposes first (strategies are deterministic)."""
    batch = build_strategy(config, config.model.scheduler.cap).ask()
    return batch[0] if batch else None


def first_trial_spec(config: Config, index: tuple[int, ...], *, run_dir: Path | None = None,
                     instance: str = CHECK_INSTANCE) -> JobSpec:
    """The trial job of ``index``, attempt 1; setup outputs it uses are shown as placeholders."""
    what = "p" + "-".join(map(str, index))
    wanted = {f[len(SETUP_PREFIX):] for f in re.findall(r"\{(\w+)\}", config.model.trial.command)
              if f.startswith(SETUP_PREFIX)}
    outputs = {key: f"<{key} from the setup job>" for key in wanted} if wanted else None
    return job_spec(config, config.model.trial, name=job_name(config, instance, what, 1),
                    run_dir=run_dir or run_dir_for(config, what, 1), attempt=1,
                    params=config.params_of(index), setup_outputs=outputs,
                    setup_dir=config.work_dir / "setup" / "attempt-1" if outputs else None)


def describe_first_job(config: Config, scheduler: Scheduler, found: Inspection) -> None:
    index = first_point(config)
    if index is None:
        found.errors.append(f"{config.path}: the search proposes no point (is the constraint "
                            "false everywhere?)")
        return
    found.first_point = config.params_of(index)
    try:
        spec = first_trial_spec(config, index)
    except ValueError as exc:
        found.errors.append(f"{config.path}: trial.command: {exc}")
        return
    found.first_spec = spec
    found.warnings += program_warnings(config, spec)
    found.script = job_script(scheduler, spec)


def program_warnings(config: Config, spec: JobSpec) -> list[str]:
    """A program or script named relative to the run directory, where commands run."""
    warnings = []
    program = spec.command[0]
    if os.sep not in program and shutil.which(program) is None:
        warnings.append(f"trial.command: {program!r} is not on PATH here")
    relative = [word for word in spec.command[:2] if word.endswith((".py", ".sh"))
                and not os.path.isabs(word) and (config.config_dir / word).exists()]
    warnings += [f"trial.command: {word!r} is relative, and commands run in the run directory "
                 f"({spec.workdir}) without a shell; write {{config_dir}}/{word}"
                 for word in relative]
    return warnings


def job_script(scheduler: Scheduler, spec: JobSpec) -> str:
    """The batch script the adapter would submit (the shared template with a comment line, for
    adapters that hand their directives to a library instead of writing them in the script)."""
    render = getattr(scheduler, "render", None)
    if callable(render):
        return str(render(spec))
    return render_script(directives=f"# {scheduler.kind} job {spec.name}", spec=spec)


def preflight(config: Config, *, new: bool) -> list[str]:
    """What ``start`` checks before it creates or resumes anything: option names and values (a
    ConfigError, exit 2, all named in one line) and the scheduler's commands (SchedulerNotReady,
    exit 2). A scheduler that does not answer now stops only a ``new`` experiment: a restart
    goes on with a warning, as its master waits for the scheduler to re-attach to the jobs in
    flight. Returns the warnings to show."""
    raw = config.model.model_dump(mode="python")
    problems = option_problems(raw)
    if problems:
        more = "" if len(problems) == 1 else f" (and {len(problems) - 1} more; `orchestrator " \
                                              f"check {config.path}` lists them)"
        raise ConfigError(f"{config.path}: {problems[0]}{more}")
    build_strategy(config, config.model.scheduler.cap)      # option values, the constraint
    try:
        with throwaway_scheduler(config) as scheduler:
            answers = scheduler.check(work_dir=config.work_dir)
    except SchedulerMisconfigured as exc:
        raise ConfigError(f"{config.path}: scheduler.options: {exc}") from None
    kind = config.model.scheduler.kind
    answers, waits = sort_answers(answers, new=new)
    if answers:
        hint = (" (scheduler.options.commands_dir names their directory)"
                if "commands_dir" in SCHEDULERS[kind].options
                and any("not on PATH" in a for a in answers) else "")
        raise SchedulerNotReady(f"scheduler {kind} is not ready: {'; '.join(answers)}{hint}; "
                                "nothing was started", exitcodes.USAGE)
    warnings = [f"scheduler {kind} does not answer now ({'; '.join(waits)}); the master waits "
                "for it, then re-attaches to the jobs in flight"] if waits else []
    return warnings + template_warnings(config)
