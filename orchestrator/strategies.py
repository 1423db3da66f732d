"""Building the configured search strategy, with its constraint, and rebuilding it by replay."""
from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from search import GridSearch, RandomSearch, Strategy, make_dsice

from .config import Config, ConfigError
from .states import JournalKind

Index = tuple[int, ...]
Step = tuple[JournalKind, int | None, Sequence[Index]]   # kind, free, points (see JournalEntry)

_ALLOWED_NODES = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Name,
                  ast.Load, ast.Constant, ast.And, ast.Or, ast.Not, ast.Add, ast.Sub, ast.Mult,
                  ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Eq, ast.NotEq,
                  ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Call, ast.IfExp, ast.In, ast.NotIn,
                  ast.Tuple, ast.List)
_FUNCTIONS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max,
                                             "log2": math.log2, "sqrt": math.sqrt}


def compile_constraint(expression: str, names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], bool]:
    """A restriction like Kernel Tuner's: a Python expression over parameter values, limited to
    arithmetic, comparisons, boolean logic and a few functions; evaluated without builtins."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"search.constraint: not a valid expression ({exc.msg})") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ConfigError(f"search.constraint: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                               and node.func.id in _FUNCTIONS):
            raise ConfigError(f"search.constraint: only {', '.join(_FUNCTIONS)} may be called")
        if isinstance(node, ast.Name) and node.id not in names and node.id not in _FUNCTIONS:
            raise ConfigError(f"search.constraint: unknown name {node.id!r} "
                              f"(parameters: {', '.join(names)})")
    code = compile(tree, "<constraint>", "eval")

    def check(params: Mapping[str, Any]) -> bool:
        try:
            return bool(eval(code, {"__builtins__": {}}, {**_FUNCTIONS, **params}))  # noqa: S307
        except (ArithmeticError, TypeError, ValueError):
            return False
    return check


def build_strategy(config: Config, cap: int) -> Strategy:
    search = config.model.search
    valid = None
    if search.constraint:
        check = compile_constraint(search.constraint, config.parameter_names)
        valid = lambda index: check(config.params_of(index))  # noqa: E731
    options = dict(search.options)
    common: dict[str, Any] = {"minimize": config.minimize, "valid": valid}
    try:
        if search.strategy == "grid":
            return GridSearch(config.shape, cap=options.pop("cap", cap), **common, **options)
        if search.strategy == "random":
            return RandomSearch(config.shape, cap=options.pop("cap", cap),
                                seed=options.pop("seed", config.model.experiment.seed),
                                **common, **options)
        return make_dsice(config.shape, cap=options.pop("cap", cap), **common, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{config.path}: search.options: {exc}") from None


@dataclass
class Replay:
    """A strategy brought to the state it had, from the outcomes stored in the database."""

    strategy: Strategy
    rounds: int = 0
    current: list[tuple[int, ...]] = field(default_factory=list)   # the round in progress


def replay(strategy: Strategy, outcomes: Mapping[tuple[int, ...], float | None]) -> Replay:
    """Ask/tell rounds again with stored outcomes until a round has points without one.

    Deterministic strategies answer the same ask() to the same tell()s, so this reaches exactly
    the round the master was in when it stopped, with no job submitted again.
    """
    state = Replay(strategy)
    while not strategy.done:
        batch = strategy.ask()
        if not batch:
            break
        state.rounds += 1
        if all(p in outcomes for p in batch):
            strategy.tell({p: outcomes[p] for p in batch})
            continue
        state.current = batch
        break
    return state


class ReplayDiverged(Exception):
    """The strategy answered an ask of the journal differently than it did when it was run."""


def replay_journal(strategy: Strategy, steps: Sequence[Step],
                   outcomes: Mapping[Index, float | None]) -> Replay:
    """Refill mode: the journal's asks (with their ``free``) and tells (with their grouping and
    order) again, exactly. A deterministic strategy then answers every ask as it did, which this
    checks; ``current`` is what was asked and not yet told, in ask order."""
    state = Replay(strategy)
    for number, (kind, free, points) in enumerate(steps, 1):
        if kind is JournalKind.ASK:
            batch = strategy.ask(free)
            if batch != list(points):
                raise ReplayDiverged(f"step {number}: ask({free}) returned {batch}, the journal "
                                     f"has {list(points)}")
            if batch:
                state.rounds += 1
                state.current += batch
            continue
        missing = [p for p in points if p not in outcomes]
        if missing:
            raise ReplayDiverged(f"step {number}: told {missing[0]}, which has no stored outcome")
        strategy.tell({p: outcomes[p] for p in points})
        told = set(points)
        state.current = [p for p in state.current if p not in told]
    return state
