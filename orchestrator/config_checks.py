"""Checks of a config that need more than one field, or more than a type: run once the model
validated, before anything is created. Each problem is one line naming the file and the field.

What is refused here, and why it is not left to the run:
- a command that does not split into words (blank, an unbalanced quote), or a placeholder that is
  not a plain name (``{x.__class__}``, ``{setup_a[0]}``): every trial would fail the same way;
- parameter names that differ only in case: both would be the same ``ORCH_PARAM_<NAME>``;
- candidate values that are equal (``[1, 1.0]``, a range that rounds to repeated values): the
  search would measure one setting twice and treat it as two;
- a constraint that is not an allowed expression;
- a database URL that is not one, or whose driver is missing;
- search options of the wrong type, before the strategy turns them into a Python error.
"""
from __future__ import annotations

import inspect
import re
import shlex
import string
import types
import typing
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from jobs.result import Env
from scheduler_adapters.registry import SCHEDULERS

from .constraint import ConstraintError, compile_constraint

if TYPE_CHECKING:
    from .config import Config

IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigProblem(ValueError):
    """One problem: the field it concerns and what is wrong with it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


def check_config(config: Config, reserved: set[str], setup_prefix: str) -> None:
    """Raise ConfigProblem for the first problem found."""
    _check_name_case(config.parameter_names)
    _check_distinct_values(config)
    for section_name in ("trial", "setup"):
        section = getattr(config.model, section_name)
        if section is not None:
            _check_command(config, section_name, section.command, reserved, setup_prefix)
    if config.model.search.constraint is not None:
        try:
            compile_constraint(config.model.search.constraint, config.parameter_names)
        except ConstraintError as exc:
            raise ConfigProblem("search.constraint", str(exc)) from None
    if config.model.experiment.database:
        _check_database(config.model.experiment.database)
    _check_search_options(config.model.search.strategy, config.model.search.options)
    _check_cap_scope(config.model.scheduler.kind, config.model.scheduler.cap_scope)


def _check_cap_scope(kind: str, scope: str) -> None:
    if scope == "user" and not SCHEDULERS[kind].counts_user_jobs:
        raise ConfigProblem("scheduler.cap_scope", f"kind {kind!r} cannot count the user's "
                            f"other jobs; use cap_scope = \"experiment\" (the default)")


def _check_name_case(names: tuple[str, ...]) -> None:
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.upper(), name)
        if other != name:
            raise ConfigProblem("parameters", f"{other!r} and {name!r} differ only in case "
                                f"(both would be {Env.param(name)})")


def candidate_keys(value: Any) -> Iterator[tuple[str, Any]]:
    """What makes two candidate values the same for a trial: equal numbers (1 and 1.0), or the
    same text in its command line and environment ("1" and 1)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        yield "number", float(value)
    yield "text", str(value)


def duplicate_value(values: list[Any]) -> Any | None:
    """The first candidate value equal to an earlier one, or None."""
    seen: set[tuple[str, Any]] = set()
    for value in values:
        keys = set(candidate_keys(value))
        if keys & seen:
            return value
        seen |= keys
    return None


def _check_distinct_values(config: Config) -> None:
    for name, spec in config.model.parameters.items():
        if spec.values is not None:
            continue                      # checked with the list itself (ParameterSpec)
        twice = duplicate_value(config.values[name])
        if twice is not None:
            kind = "linear" if spec.linear is not None else "log"
            raise ConfigProblem(f"parameters.{name}", f"the {kind} range gives the value "
                                f"{twice!r} more than once (values are rounded to 12 significant "
                                "digits); use fewer points or a wider range")


def _check_command(config: Config, section_name: str, command: str, reserved: set[str],
                   setup_prefix: str) -> None:
    where = f"{section_name}.command"
    try:
        words = shlex.split(command)
    except ValueError as exc:                 # "No closing quotation", "No escaped character"
        raise ConfigProblem(where, f"cannot be split into words ({exc}); "
                            "check the quotes") from None
    if not words:
        raise ConfigProblem(where, "is blank")
    allowed = set(config.parameter_names) | reserved
    fields: list[str] = []
    for word in words:
        try:
            fields += [f for _, f, _, _ in string.Formatter().parse(word) if f is not None]
        except ValueError as exc:
            raise ConfigProblem(where, f"bad placeholder syntax ({exc}); "
                                "write {{ and }} for literal braces") from None
    for field in fields:
        if not IDENTIFIER_RE.fullmatch(field):
            raise ConfigProblem(where, f"placeholder {{{field}}} is not a plain name "
                                "(no attributes, indexes or empty braces)")
        is_setup_output = field.startswith(setup_prefix) and field != "setup_dir"
        ok = field in allowed or (section_name == "trial" and is_setup_output)
        if section_name == "setup" and (field in config.parameter_names or field == "setup_dir"):
            ok = False
        if not ok:
            raise ConfigProblem(where, f"unknown placeholder {{{field}}} "
                                f"(known: {', '.join(sorted(allowed))}, setup_<key>)")
    if (any(f.startswith(setup_prefix) and f != "setup_dir" for f in fields)
            and config.model.setup is None):
        raise ConfigProblem("trial.command", "uses setup outputs but there is no [setup]")


def _check_database(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    example = "for example postgresql+psycopg://user@host/name or sqlite:////path/state.db"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigProblem("experiment.database",
                            f"{url!r} is not a database URL ({example})") from None
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigProblem("experiment.database", f"unknown database kind "
                            f"{parsed.drivername!r} ({example})") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ConfigProblem("experiment.database", f"the driver for {parsed.drivername!r} is not "
                            f"installed ({exc.name or exc})") from None


def _strategy_classes(strategy: str) -> list[type]:
    import search
    from search.explore import ExploringDSICE
    classes: dict[str, list[type]] = {
        "grid": [search.GridSearch], "random": [search.RandomSearch],
        "dsice": [search.DSICE, ExploringDSICE, search.EagerDSICE]}
    return classes[strategy]


def _check_search_options(strategy: str, options: dict[str, Any]) -> None:
    """Each option given has the type of the strategy's default for it (an int where an int is
    expected, a number for a float, true/false for a flag), so no Python error reaches the user."""
    expected_types: dict[str, type | None] = {}
    for cls in _strategy_classes(strategy):
        signature = inspect.signature(cls, eval_str=True)   # __init__ without self
        for name, parameter in signature.parameters.items():
            expected_types.setdefault(name, _expected_type(parameter))
    for name, value in options.items():
        expected = expected_types.get(name)   # unknown options: the strategy names the known ones
        if expected is not None and not _has_type(value, expected):
            raise ConfigProblem(f"search.options.{name}",
                                f"must be {_TYPE_WORDS[expected]}, got {value!r:.40}")


_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _expected_type(parameter: inspect.Parameter) -> type | None:
    """bool, int, float or str when the annotation (or else the default) says so."""
    annotation = parameter.annotation
    candidates = typing.get_args(annotation) if typing.get_origin(annotation) in (
        typing.Union, types.UnionType) else (annotation,)
    for t in (bool, int, float, str):
        if t in candidates:
            return t
    default = parameter.default
    return next((t for t in (bool, int, float, str) if isinstance(default, t)), None)


def _has_type(value: Any, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def check_work_dir_template(template: str) -> str:
    """``experiment.work_dir`` may use ``{name}`` and nothing else (no other placeholder, no
    attribute access, no stray brace, no control character)."""
    if any(ord(c) < 32 or c == "\x7f" for c in template):
        raise ValueError("contains a control character (a newline?)")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad placeholder syntax ({exc}); write {{{{ and }}}} for literal "
                         "braces") from None
    for _, field, spec, conversion in parts:
        if field is not None and (field != "name" or spec or conversion):
            raise ValueError(f"only the placeholder {{name}} may be used, not {{{field}}}")
    return template


def definition_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys whose values differ between two search definitions, numbers compared by value (a
    stored ``1`` equals a new ``1.0``) and true/false kept apart from 1/0. A seed stored for a
    strategy that does not use it (older versions stored it always) is no difference."""
    if new.get("strategy") != "random" and "seed" not in new:
        old = {k: v for k, v in old.items() if k != "seed"}
    return [k for k in sorted(set(old) | set(new))
            if _canonical(old.get(k)) != _canonical(new.get(k))]


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value
