"""The result-file protocol between a trial program and the master.

A trial finds its parameters in ``params.json`` in its run directory and in environment
variables ``ORCH_PARAM_<NAME>``; it writes one JSON object to the path in ``ORCH_RESULT_FILE``
atomically (temporary file in the same directory, then rename), so the master never reads half a
file. ``write_result`` does that for Python programs; ``read_result`` is the master's validator.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

RESULT_ENV = "ORCH_RESULT_FILE"
RUN_DIR_ENV = "ORCH_RUN_DIR"
ATTEMPT_ENV = "ORCH_ATTEMPT"
PARAM_ENV_PREFIX = "ORCH_PARAM_"
PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
MAX_RESULT_BYTES = 1 << 20   # a result is a handful of numbers; anything larger is a bug


class ResultError(Exception):
    """The result file is missing or unusable; the message is the failure reason."""


def load_params(run_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The trial's parameters, from ``params.json`` in the run directory."""
    directory = Path(run_dir or os.environ.get(RUN_DIR_ENV, "."))
    with open(directory / PARAMS_FILE, encoding="utf-8") as fh:
        return json.load(fh)


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


def read_result(path: str | os.PathLike[str], objective_key: str) -> tuple[float, dict[str, Any]]:
    """Validate a trial's result file; return (objective value, all values) or raise ResultError."""
    path = Path(path)
    values = read_result_object(path)
    if objective_key not in values:
        raise ResultError(f"result file {path} has no key {objective_key!r}")
    value = values[objective_key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultError(f"result file {path}: {objective_key!r} is not a number ({value!r:.40})")
    value = float(value)
    if not math.isfinite(value):
        raise ResultError(f"result file {path}: {objective_key!r} is {value} (not finite)")
    return value, values


def read_result_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Validate that a result file holds one JSON object (a setup job's outputs, say)."""
    path = Path(path)
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
    if not isinstance(values, dict):
        raise ResultError(f"result file {path} does not hold a JSON object")
    return values
