"""The result-file protocol between a trial program and the master.

A trial finds its parameters in ``params.json`` in its run directory and in environment
variables ``ORCH_PARAM_<NAME>``; it writes one JSON object to the path in ``ORCH_RESULT_FILE``
atomically (temporary file in the same directory, then rename), so the master never reads half a
file. ``write_result`` does that for Python programs; ``read_result`` is the master's validator.
Every environment variable of the protocol is named once, in ``Env``.

Trials longer than a job may run: a trial keeps what it needs to resume in ``ORCH_CHECKPOINT_DIR``
(``checkpoint/`` in its run directory). When its job ends at the walltime or is preempted with a
non-empty checkpoint directory, or when it writes the result ``{"_unfinished": true}``
(``write_unfinished``) to hand over before the walltime, the master submits the same attempt again
in the same run directory (``ORCH_CONTINUATION`` counts these runs), up to the configured number
of continuations, charging neither failure budget. The last run's result is the trial's.

A result file is input from a program the master does not control: whatever it holds (numbers
beyond float range, integers of thousands of digits, nesting a thousand levels deep) becomes a
``ResultError`` for that attempt, never an exception that escapes into the master.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


class Env:
    """The environment variables the master sets for every job (the protocol's names)."""

    RESULT_FILE = "ORCH_RESULT_FILE"      # where to write the result object
    RUN_DIR = "ORCH_RUN_DIR"              # the attempt's own directory (also the working directory)
    ATTEMPT = "ORCH_ATTEMPT"              # 1 for the first attempt of a point, 2 for its retry, ...
    EXPERIMENT = "ORCH_EXPERIMENT"        # the experiment's name
    CPUS = "ORCH_CPUS"                    # CPUs the job was given
    GPUS = "ORCH_GPUS"                    # GPUs the job was given
    PARAM_PREFIX = "ORCH_PARAM_"          # + the parameter's name in upper case: its value
    SETUP_PREFIX = "ORCH_SETUP_"          # + a setup output's key in upper case: its value
    SETUP_DIR = "ORCH_SETUP_DIR"          # the setup job's run directory (trials only)
    CHECKPOINT_DIR = "ORCH_CHECKPOINT_DIR"  # where to keep state that a continuation resumes from
    CONTINUATION = "ORCH_CONTINUATION"    # 0 for an attempt's first run, 1, 2, ... when continued

    @staticmethod
    def param(name: str) -> str:
        return Env.PARAM_PREFIX + name.upper()

    @staticmethod
    def setup_output(key: str) -> str:
        return Env.SETUP_PREFIX + key.upper()


# The older module-level names, kept for programs written against them.
RESULT_ENV = Env.RESULT_FILE
RUN_DIR_ENV = Env.RUN_DIR
ATTEMPT_ENV = Env.ATTEMPT
PARAM_ENV_PREFIX = Env.PARAM_PREFIX

PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
CHECKPOINT_DIR = "checkpoint"      # in the run directory; kept across continuations of an attempt
UNFINISHED_KEY = "_unfinished"     # a result {"_unfinished": true}: continue me from my checkpoint
MAX_RESULT_BYTES = 1 << 20   # a result is a handful of numbers; anything larger is a bug
MAX_RESULT_DEPTH = 32        # nesting of objects and lists; deeper is a bug (and deep recursion)


class ResultError(Exception):
    """The result file is missing or unusable; the message is the failure reason."""


def load_params(run_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The trial's parameters, from ``params.json`` in the run directory."""
    directory = Path(run_dir or os.environ.get(RUN_DIR_ENV, "."))
    with open(directory / PARAMS_FILE, encoding="utf-8") as fh:
        params: dict[str, Any] = json.load(fh)
    return params


def write_result(values: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``values`` as the trial's result, atomically."""
    target = Path(path or os.environ.get(RESULT_ENV) or RESULT_FILE)
    text = json.dumps(values, allow_nan=True, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=".result-", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def checkpoint_dir() -> Path:
    """The trial's checkpoint directory (created if missing): ``ORCH_CHECKPOINT_DIR``, else
    ``checkpoint`` in the working directory, for a program run by hand."""
    directory = Path(os.environ.get(Env.CHECKPOINT_DIR) or CHECKPOINT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def continuation() -> int:
    """How many times this attempt was continued before this run (0: its first run)."""
    return int(os.environ.get(Env.CONTINUATION) or 0)


def write_unfinished(path: str | os.PathLike[str] | None = None) -> Path:
    """Report that the trial stopped before finishing and wants to continue from its checkpoint."""
    return write_result({UNFINISHED_KEY: True}, path)


def is_unfinished(values: dict[str, Any]) -> bool:
    return values.get(UNFINISHED_KEY) is True


def read_result(path: str | os.PathLike[str], objective_key: str) -> tuple[float, dict[str, Any]]:
    """Validate a trial's result file; return (objective value, all values) or raise ResultError."""
    path = Path(path)
    values = _parse_object(path)
    if objective_key not in values:
        raise ResultError(f"result file {path} has no key {objective_key!r}")
    value = values[objective_key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultError(f"result file {path}: {objective_key!r} is not a number ({value!r:.40})")
    try:
        value = float(value)
    except OverflowError:                        # an integer beyond float range
        raise ResultError(f"result file {path}: {objective_key!r} is too large for a float"
                          ) from None
    if not math.isfinite(value):
        raise ResultError(f"result file {path}: {objective_key!r} is {value} (not finite)")
    return value, _storable(values)


def read_result_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Validate that a result file holds one JSON object (a setup job's outputs, say)."""
    return _storable(_parse_object(Path(path)))


def _parse_object(path: Path) -> dict[str, Any]:
    try:
        if path.is_dir():
            raise ResultError(f"result file {path} is a directory")
        size = path.stat().st_size
    except FileNotFoundError:
        raise ResultError(f"result file {path} is missing") from None
    except OSError as exc:
        raise ResultError(f"result file {path} cannot be read: {exc.strerror}") from None
    if size == 0:
        raise ResultError(f"result file {path} is empty")
    if size > MAX_RESULT_BYTES:
        raise ResultError(f"result file {path} is too large ({size} bytes > {MAX_RESULT_BYTES})")
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultError(f"result file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ResultError(f"result file {path} cannot be read: {exc.strerror}") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultError(f"result file {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError:                 # an integer of more digits than Python converts (4300)
        raise ResultError(f"result file {path} holds an integer with too many digits") from None
    except RecursionError:
        raise ResultError(f"result file {path} is nested too deeply") from None
    if not isinstance(values, dict):
        raise ResultError(f"result file {path} does not hold a JSON object")
    if _depth(values) > MAX_RESULT_DEPTH:
        raise ResultError(f"result file {path} is nested more than {MAX_RESULT_DEPTH} levels deep")
    return values


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _storable(values: dict[str, Any]) -> dict[str, Any]:
    """The values as the database can hold them in strict JSON (PostgreSQL refuses NaN):
    non-finite floats at the top level become the strings "nan", "inf", "-inf"."""
    return {key: str(v) if isinstance(v, float) and not math.isfinite(v) else v
            for key, v in values.items()}
