"""Experiment configuration: a TOML file validated with pydantic v2 (``config_model``).

Paths in a config are relative to the config file. Errors are turned into one-line messages that
name the file and the field (``ConfigError``), which the CLI prints before exiting with code 2.
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from . import exitcodes
from .config_checks import ConfigProblem, check_config, definition_changes
from .config_model import RESERVED_PLACEHOLDERS, SETUP_PREFIX, ConfigModel, ParameterSpec, Scalar
from .errors import OrchestratorError


class ConfigError(OrchestratorError):
    """A config problem, worded as one line naming the file and field."""

    code = exitcodes.USAGE


class Config:
    """A validated config with its paths resolved and its parameter values expanded."""

    def __init__(self, model: ConfigModel, path: Path) -> None:
        self.model = model
        self.path = path.resolve()
        self.config_dir = self.path.parent
        self.name = model.experiment.name
        self.work_dir = (self.config_dir / model.experiment.work_dir.format(name=self.name)).resolve()
        self.parameter_names: tuple[str, ...] = tuple(model.parameters)
        self.values: dict[str, list[Scalar]] = {n: s.expand() for n, s in model.parameters.items()}
        self.shape: tuple[int, ...] = tuple(len(v) for v in self.values.values())
        self.minimize = model.objective.direction == "minimize"
        self.objective_key = model.objective.key

    @property
    def database_url(self) -> str:
        url = self.model.experiment.database
        if url:
            return url
        return f"sqlite:///{self.work_dir / 'state.db'}"

    def params_of(self, index: tuple[int, ...]) -> dict[str, Scalar]:
        return {n: self.values[n][i] for n, i in zip(self.parameter_names, index)}

    def fingerprint(self) -> str:
        """What defines the search: a changed space, objective or strategy is a new experiment."""
        return hashlib.sha256(json.dumps(self.search_definition(), sort_keys=True).encode()).hexdigest()[:16]

    def search_definition(self) -> dict[str, Any]:
        m = self.model
        return {
            "parameters": {n: v for n, v in self.values.items()},
            "parameter_order": list(self.parameter_names),
            "objective": {"key": m.objective.key, "direction": m.objective.direction},
            "strategy": m.search.strategy,
            # Only named when not "paper": experiments begun before variants existed ran the
            # paper's DSICE and keep their definition with variant = "paper".
            **({"variant": m.search.variant}
               if m.search.strategy == "dsice" and m.search.variant != "paper" else {}),
            "constraint": m.search.constraint,
            "search_options": m.search.options,
            # Only random search draws from experiment.seed; elsewhere it changes nothing.
            **({"seed": m.experiment.seed} if m.search.strategy == "random" else {}),
            # Refill mode changes the search's decisions; sync (the default) is left out, so
            # the fingerprints of experiments made before refill existed stay the same.
            **({"mode": m.search.mode} if m.search.mode != "sync" else {}),
        }

    def search_changes(self, stored: dict[str, Any]) -> list[str]:
        """The keys of the search definition that differ from a stored one, equal grids counting
        as equal (``[1, 2, 3]`` and the ``linear`` range of the same numbers)."""
        return definition_changes(stored, self.search_definition())


def load_config(path: str | Path) -> Config:
    """Read and validate a config file, or raise ConfigError with a one-line message."""
    return validate_config(read_toml(Path(path)), Path(path))


def read_toml(path: Path) -> dict[str, Any]:
    """The raw TOML table of a config file, or ConfigError."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        dupes = _duplicate_parameter_names(path)
        if dupes:
            raise ConfigError(f"{path}: parameters: duplicate parameter name {dupes[0]!r}") from None
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return raw


def validate_config(raw: dict[str, Any], path: Path) -> Config:
    """Validate a raw config table (as read from ``path``), or raise ConfigError."""
    try:
        model = ConfigModel.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None
    config = Config(model, path)
    try:
        check_config(config, RESERVED_PLACEHOLDERS, SETUP_PREFIX)
    except ConfigProblem as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def _duplicate_parameter_names(path: Path) -> list[str]:
    """Parameter names defined twice. TOML rejects these too, but with a message about
    'overwriting a value' at some line; a user deserves to be told which parameter it is."""
    seen: set[str] = set()
    dupes: list[str] = []
    table = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        header = re.match(r"\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]\s*(#.*)?$", line)
        if header:
            table = header.group(1).replace(" ", "")
            if table.startswith("parameters."):
                name = table.split(".")[1]
                dupes += [name] if name in seen else []
                seen.add(name)
            continue
        key = re.match(r"\s*([A-Za-z0-9_]+)\s*=", line)
        if key and table == "parameters":
            dupes += [key.group(1)] if key.group(1) in seen else []
            seen.add(key.group(1))
    return dupes


def _describe(exc: ValidationError) -> str:
    errors = describe_errors(exc)
    return errors[0] + ("" if len(errors) == 1 else f" (and {len(errors) - 1} more errors)")


def describe_errors(exc: ValidationError) -> list[str]:
    """Every validation error, one line each naming the field (``check`` lists them all)."""
    return [_describe_one(err) for err in exc.errors()]


def _describe_one(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = err["loc"][:-1]
        valid = _valid_keys(parent)
        hint = f" (valid keys: {', '.join(valid)})" if valid else ""
        return f"unknown key {where!r}{hint}"
    if err["type"] == "missing":
        return f"missing required key {where!r}"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}"


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` (a pydantic error location), for 'unknown key' messages."""
    model: type[BaseModel] | None = ConfigModel
    parts = list(loc)
    while parts and model is not None:
        part = str(parts.pop(0))
        if model is ConfigModel and part == "parameters":
            if not parts:
                return []
            parts.pop(0)           # the parameter's own name
            model = ParameterSpec
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        args = getattr(field.annotation, "__args__", ()) or (field.annotation,)
        model = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return sorted(model.model_fields) if model else []
