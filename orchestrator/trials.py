"""Turning a point (or the setup job) into a JobSpec: run directory, params.json, env, argv.

The command template is split with shlex first and each word filled in afterwards, so a value
can never add words or shell syntax to the command line; values reach job scripts only through
the adapters' quoting.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from jobs.result import CHECKPOINT_DIR, PARAMS_FILE, RESULT_FILE, Env
from scheduler_adapters.base import JobSpec

from .config import Config
from .config_model import SETUP_PREFIX, JobSection
from .workdir import make_private_dir_at, open_private_dir, set_aside_at, write_private_at

SAFE_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


MAX_JOB_NAME = 63


def job_name(config: Config, instance: str, what: str, attempt: int) -> str:
    """A name unique to experiment instance + point + attempt, so a restarted master finds its
    jobs. A point of many parameters is named by a hash of its indices (63 characters at most)."""
    name = f"{config.name[:24]}-{instance[:8]}-{what}-a{attempt}"
    if len(name) > MAX_JOB_NAME:
        digest = hashlib.sha256(what.encode()).hexdigest()[:16]
        name = f"{config.name[:24]}-{instance[:8]}-h{digest}-a{attempt}"
    return name


def continuation_name(first: str, continuation: int) -> str:
    """The job name of an attempt's ``continuation``-th continuation (first: its first run's)."""
    suffix = f"-c{continuation}"
    if len(first) + len(suffix) <= MAX_JOB_NAME:
        return first + suffix
    return first[:MAX_JOB_NAME - len(suffix) - 17] + "-" + hashlib.sha256(
        first.encode()).hexdigest()[:16] + suffix


def run_dir_for(config: Config, what: str, attempt: int) -> Path:
    return config.work_dir / "trials" / what / f"attempt-{attempt}"


def setup_values(outputs: dict[str, Any] | None) -> dict[str, str]:
    """Setup outputs usable in templates and env: scalar values under identifier keys."""
    values: dict[str, str] = {}
    for key, value in (outputs or {}).items():
        if SAFE_KEY_RE.fullmatch(key) and isinstance(value, (str, int, float, bool)):
            values[key] = str(value)
    return values


def build_spec(config: Config, section: JobSection, *, name: str, run_dir: Path, attempt: int,
               params: dict[str, Any], setup_outputs: dict[str, Any] | None,
               setup_dir: Path | None, continuation: int = 0) -> JobSpec:
    """Prepare the run directory and describe the job. Raises OSError if the disk refuses,
    ValueError if the job cannot be described (RunDirRedirected: a link where the run directory
    should be). A continuation runs in the same directory: the previous run's result file is
    kept aside as ``result.unfinished-N.json`` and the checkpoint directory stays."""
    spec = job_spec(config, section, name=name, run_dir=run_dir, attempt=attempt, params=params,
                    setup_outputs=setup_outputs, setup_dir=setup_dir, continuation=continuation)
    directory = open_private_dir(run_dir, config.work_dir)
    try:
        write_private_at(directory, PARAMS_FILE, params_text(params))
        make_private_dir_at(directory, CHECKPOINT_DIR)
        if continuation:
            set_aside_at(directory, RESULT_FILE, f"result.unfinished-{continuation - 1}.json")
    finally:
        os.close(directory)
    return spec


def params_text(params: dict[str, Any]) -> str:
    """The text of ``params.json``: the point, for the program."""
    return json.dumps(params, indent=2, sort_keys=True) + "\n"


def job_spec(config: Config, section: JobSection, *, name: str, run_dir: Path, attempt: int,
             params: dict[str, Any], setup_outputs: dict[str, Any] | None,
             setup_dir: Path | None, continuation: int = 0) -> JobSpec:
    """Describe the job without touching the disk (``check`` shows it before anything exists).
    Raises ValueError for a placeholder without a value."""
    result_file = run_dir / RESULT_FILE
    outputs = setup_values(setup_outputs)
    fill: dict[str, str] = {
        "python": sys.executable,
        "run_dir": str(run_dir),
        "attempt": str(attempt),
        "result_file": str(result_file),
        "config_dir": str(config.config_dir),
        "work_dir": str(config.work_dir),
        "setup_dir": str(setup_dir or ""),
        "cpus": str(section.cpus),
        "gpus": str(section.gpus),
        **{k: _format_value(v) for k, v in params.items()},
        **{SETUP_PREFIX + k: v for k, v in outputs.items()},
    }
    try:
        argv = tuple(word.format_map(fill) for word in shlex.split(section.command))
    except KeyError as exc:
        raise ValueError(f"command placeholder {exc} has no value (missing setup output?)") from None
    env = {
        **section.env,
        Env.RESULT_FILE: str(result_file),
        Env.RUN_DIR: str(run_dir),
        Env.ATTEMPT: str(attempt),
        Env.CHECKPOINT_DIR: str(run_dir / CHECKPOINT_DIR),
        Env.CONTINUATION: str(continuation),
        Env.EXPERIMENT: config.name,
        Env.CPUS: str(section.cpus),
        Env.GPUS: str(section.gpus),
        **{Env.param(k): _format_value(v) for k, v in params.items()},
        **{Env.setup_output(k): v for k, v in outputs.items()},
    }
    if setup_dir is not None:
        env[Env.SETUP_DIR] = str(setup_dir)
    time_limit = None if section.time_limit is None else max(1, int(round(section.time_limit)))
    return JobSpec(name=name, command=argv, workdir=run_dir, env=env, time_limit_s=time_limit,
                   cpus=section.cpus, gpus=section.gpus)


def _format_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)           # "3.0": keep it recognisably a float
    return str(value)
