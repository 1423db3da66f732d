"""Building the configured search strategy, with its constraint, and rebuilding it by replay."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from search import GridSearch, RandomSearch, Strategy, make_dsice, make_eager

from .config import Config, ConfigError
from .constraint import ConstraintError, compile_constraint
from .states import JournalKind

Index = tuple[int, ...]
Step = tuple[JournalKind, int | None, Sequence[Index]]   # kind, free, points (see JournalEntry)


def build_strategy(config: Config, cap: int) -> Strategy:
    search = config.model.search
    valid = None
    if search.constraint:
        try:
            check = compile_constraint(search.constraint, config.parameter_names)
        except ConstraintError as exc:
            raise ConfigError(f"{config.path}: search.constraint: {exc}") from None
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
        if search.variant == "paper":
            return make_dsice(config.shape, cap=options.pop("cap", cap), **common, **options)
        options.setdefault("seed", config.model.experiment.seed)
        return make_eager(config.shape, cap=options.pop("cap", cap), **common, **options)
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
