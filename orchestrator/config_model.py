"""What a config file may say: the pydantic models of its sections, strict and frozen.

Each model checks what one field, or one section, can check alone (types, ranges, patterns);
checks across fields run once the whole config validated (``config_checks``). ``config`` reads
the file, turns a validation error into one line naming the field, and wraps the model in
``Config``.
"""
from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .config_checks import check_work_dir_template, duplicate_value
from .notify import NotifySection

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
EXPERIMENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
RESERVED_PLACEHOLDERS = {"python", "run_dir", "attempt", "result_file", "config_dir",
                         "work_dir", "setup_dir", "cpus", "gpus"}
SETUP_PREFIX = "setup_"
# Candidate values per parameter, checked before a range is expanded: a grid this fine is already
# far beyond what an evaluation budget can explore, and expanding ``num = 10000000`` would cost
# seconds and hundreds of MB before any command answers.
MAX_VALUES = 10_000
DAY = 86_400.0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Finite = Annotated[float, Field(allow_inf_nan=False)]


class LinearRange(Strict):
    start: Finite
    stop: Finite
    num: int = Field(ge=1, le=MAX_VALUES)


class LogRange(Strict):
    start: Finite = Field(gt=0)
    stop: Finite = Field(gt=0)
    num: int = Field(ge=1, le=MAX_VALUES)


Scalar = int | float | str | bool


class ParameterSpec(Strict):
    """One parameter's ordered candidate values: an explicit list, or a range that expands to one."""

    values: list[Scalar] | None = None
    linear: LinearRange | None = None
    log: LogRange | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ParameterSpec:
        given = [k for k in ("values", "linear", "log") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'values', 'linear', 'log'")
        if self.values is not None:
            if not self.values:
                raise ValueError("the value list is empty")
            if len(self.values) > MAX_VALUES:
                raise ValueError(f"more than {MAX_VALUES} values")
            twice = duplicate_value(self.values)
            if twice is not None:
                raise ValueError(f"the value list has duplicates ({twice!r} equals an earlier value)")
            for v in self.values:
                if isinstance(v, float) and not math.isfinite(v):
                    raise ValueError("values must be finite")
                if isinstance(v, str) and not re.fullmatch(r"[A-Za-z0-9_.:+-]{1,64}", v):
                    raise ValueError(f"string value {v!r} may only use letters, digits and _.:+-")
        return self

    def expand(self) -> list[Scalar]:
        if self.values is not None:
            return list(self.values)
        if self.linear is not None:
            r = self.linear
            if r.num == 1:
                return [_tidy(r.start)]
            return [_tidy(r.start + (r.stop - r.start) * i / (r.num - 1)) for i in range(r.num)]
        g = self.log
        assert g is not None
        if g.num == 1:
            return [_tidy(g.start)]
        a, b = math.log10(g.start), math.log10(g.stop)
        return [_tidy(10 ** (a + (b - a) * i / (g.num - 1))) for i in range(g.num)]


def _tidy(x: float) -> float:
    """Round away float noise (1e-05 rather than 1.0000000000000003e-05)."""
    return float(f"{x:.12g}")


class ExperimentSection(Strict):
    name: Annotated[str, Field(pattern=EXPERIMENT_NAME_RE.pattern)]
    work_dir: str = "runs/{name}"
    database: str | None = None     # SQLAlchemy URL; default: SQLite file in the work directory
    sqlite_journal: Literal["delete", "wal"] = "delete"   # wal only on a local disk
    # Seconds without heartbeat = master dead (at most 30 days).
    lease_timeout: Finite = Field(default=300.0, gt=0, le=30 * DAY)
    # Stop when this many distinct points failed the same way before any trial succeeded (0: off).
    fail_fast: int = Field(default=3, ge=0)
    seed: int = 0

    _work_dir_template = field_validator("work_dir")(check_work_dir_template)


class ObjectiveSection(Strict):
    key: Annotated[str, Field(min_length=1, max_length=64)]
    direction: Literal["minimize", "maximize"] = "minimize"


class JobSection(Strict):
    command: Annotated[str, Field(min_length=1)]
    time_limit: Finite | None = Field(default=None, gt=0, le=366 * DAY)   # seconds
    retries: int = Field(default=2, ge=0)                  # program failures tolerated per point
    infra_retries: int = Field(default=5, ge=0)            # node failures, vanished jobs, ...
    continuations: int = Field(default=0, ge=0, le=1000)   # runs after the first, per attempt
    cpus: int = Field(default=1, ge=1)
    gpus: int = Field(default=0, ge=0)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _env_keys(cls, env: dict[str, str]) -> dict[str, str]:
        for key, value in env.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"environment variable name {key!r} is not an identifier")
            if "\n" in value or "\x00" in value:
                raise ValueError(f"environment value of {key} contains a newline")
        return env


class SearchSection(Strict):
    strategy: Literal["dsice", "grid", "random"] = "dsice"
    # Which DSICE (docs/search.md, "Variants"): "eager" keeps every slot busy with points it
    # asks for itself; "paper" is the published search, stage by stage, unchanged.
    variant: Literal["eager", "paper"] = "eager"
    constraint: str | None = Field(default=None, max_length=1000)  # "block_x * block_y <= 1024"
    options: dict[str, Any] = Field(default_factory=dict)
    # Prefetch points the search will likely need into idle slots. It changes when results are
    # available, never which decisions the search makes, so it is not part of the fingerprint.
    speculation: Literal["off", "on"] = "off"
    speculation_budget: int | None = Field(default=None, ge=0)   # extra evaluations; None: no limit

    # How the master drives the strategy: "sync" rounds, or "refill": results are told as soon as
    # they are recorded and the strategy is asked again with the number of free slots. Refill's
    # sequence of asks and tells is journaled, so a restarted master replays it exactly.
    # Default: "refill" for the eager DSICE, which uses every free slot at once; "sync" for the
    # others, whose rounds it would not change (and for experiments begun before refill existed).
    mode: Literal["sync", "refill"] = "sync"

    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and "mode" not in data:
            eager = (data.get("strategy", "dsice") == "dsice"
                     and data.get("variant", "eager") == "eager")
            data = {**data, "mode": "refill" if eager else "sync"}
        return data

    @model_validator(mode="after")
    def _async_needs_refill(self) -> SearchSection:
        if self.options.get("mode") == "async" and self.mode != "refill":
            raise ValueError("options.mode 'async' needs mode = \"refill\" (the master tells "
                             "results as they arrive and refills free slots); in synchronous "
                             "rounds, speculation = \"on\" fills idle slots instead")
        return self


class SchedulerSection(Strict):
    kind: Literal["local", "slurm", "pjm", "drmaa"] = "local"
    cap: int = Field(default=4, ge=1)
    poll_interval: Finite = Field(default=5.0, gt=0, le=DAY)
    max_poll_interval: Finite | None = Field(default=None, gt=0, le=DAY)
    options: dict[str, Any] = Field(default_factory=dict)


class SimulateSection(Strict):
    """``[simulate]``: the virtual cluster of ``orchestrator simulate`` (see docs/config.md)."""

    duration_mean_hours: Finite = Field(default=1.0, gt=0)
    duration_spread: Finite = Field(default=0.0, ge=0)      # standard deviation / mean
    distribution: Literal["normal", "lognormal"] = "normal"  # normal is clipped at 10 % of the mean
    failure_rate: Finite = Field(default=0.0, ge=0, lt=1)     # per attempt: node failures
    cap: int | None = Field(default=None, ge=1)               # default: scheduler.cap
    poll_interval: Finite | None = Field(default=None, gt=0, le=DAY)  # default: scheduler's
    seed: int = 0
    objective: str | None = None     # "module:function" or "path/to/file.py:function"
    table: str | None = None         # CSV: one column per parameter and the objective key

    @model_validator(mode="after")
    def _one_objective(self) -> SimulateSection:
        if (self.objective is None) == (self.table is None):
            raise ValueError("give exactly one of 'objective' (MODULE:FUNCTION) and 'table' (CSV)")
        return self


class ConfigModel(Strict):
    experiment: ExperimentSection
    objective: ObjectiveSection
    parameters: dict[str, ParameterSpec]
    trial: JobSection
    setup: JobSection | None = None
    search: SearchSection = SearchSection()
    scheduler: SchedulerSection = SchedulerSection()
    simulate: SimulateSection | None = None
    notify: NotifySection | None = None

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, params: dict[str, ParameterSpec]) -> dict[str, ParameterSpec]:
        if not params:
            raise ValueError("at least one parameter is needed")
        for name in params:
            if not NAME_RE.fullmatch(name):
                raise ValueError(f"parameter name {name!r} must match {NAME_RE.pattern}")
            if name in RESERVED_PLACEHOLDERS or name.startswith(SETUP_PREFIX):
                raise ValueError(f"parameter name {name!r} is reserved")
        return params
