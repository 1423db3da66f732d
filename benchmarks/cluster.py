"""A virtual batch cluster on a virtual clock that drives any ask/tell strategy.

``cap`` slots run one evaluation each. An evaluation runs attempts until one completes: each
attempt's duration is drawn from a normal distribution (default 9 h, sd 15 %, clipped at 10 % of
the mean, as in ``scheduler_adapters.simulated``); a seeded share of attempts (default 3 %) dies
part-way, at a uniform fraction of its duration, and is retried at once on the same slot, its
time paid. A configuration that cannot run (the objective answers None) fails after a quarter of
its drawn duration. Draws are keyed by (seed, point, attempt), so every strategy sees the same
durations for the same point in the same seed.

Two ways to drive a strategy (``strategy.ask(free)`` when its ``ask`` takes ``free``, else
``ask()``; ``strategy.tell({point: value or None})``; ``strategy.done``):

* ``sync``: synchronous rounds: ask once for the free slots, run the whole round, tell it in
  ask order when its last evaluation ends.
* ``refill``: refill on completion: evaluations ending at the same instant are told as one group
  in completion order, then the strategy is asked again with the number of free slots.

Duplicates: a peer may ask for a point that was already measured (it is told the known result at
once, at no cost) or that is still running (told when that evaluation ends). Either way it counts
as one of the peer's asks but not as an evaluation; ``max_asks`` bounds a peer that keeps asking
for known points.
"""
from __future__ import annotations

import heapq
import inspect
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Index = tuple[int, ...]
Mode = Literal["sync", "refill"]
MODES: tuple[Mode, ...] = ("sync", "refill")


class AskTell(Protocol):
    """What the cluster drives: the project's ``Strategy`` or a peer's adapter."""

    @property
    def done(self) -> bool: ...

    def ask(self, *args: Any, **kwargs: Any) -> Sequence[Index]: ...

    def tell(self, results: Mapping[Index, float | None]) -> None: ...


@dataclass(frozen=True)
class ClusterSpec:
    cap: int = 26
    mean_hours: float = 9.0
    spread: float = 0.15             # standard deviation / mean of an attempt's duration
    attempt_failure_rate: float = 0.03
    failed_share: float = 0.25       # a configuration that cannot run holds its slot this long
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cap < 1:
            raise ValueError(f"cap must be >= 1, got {self.cap}")
        if self.mean_hours <= 0 or self.spread < 0:
            raise ValueError("mean_hours must be > 0 and spread >= 0")
        if not 0 <= self.attempt_failure_rate < 1:
            raise ValueError(f"attempt_failure_rate must be in [0, 1), "
                             f"got {self.attempt_failure_rate}")

    def attempt(self, point: Index, number: int, runnable: bool) -> tuple[float, bool]:
        """(hours the slot is held, whether the attempt completed) for one attempt at ``point``."""
        rng = random.Random(f"{self.seed}:{point}:{number}")
        hours = max(0.1 * self.mean_hours, rng.gauss(self.mean_hours, self.spread * self.mean_hours))
        if not runnable:
            hours *= self.failed_share
        if rng.random() < self.attempt_failure_rate:
            return hours * rng.random(), False
        return hours, True


@dataclass(frozen=True)
class Evaluation:
    number: int                      # 1-based, in start order
    point: Index
    value: float | None              # None: the configuration could not run
    started: float                   # hours on the virtual clock
    ended: float
    attempts: int                    # 1 + retries of attempts that died part-way

    @property
    def busy_hours(self) -> float:
        return self.ended - self.started


@dataclass
class Campaign:
    """What one drive produced; evaluations in completion order (ties: start order)."""

    cap: int
    mode: Mode
    evaluations: list[Evaluation] = field(default_factory=list)
    asks: int = 0                    # points asked, duplicates included
    duplicates: int = 0
    stopped: bool = False            # the strategy said it was done
    stalled: bool = False            # it asked for nothing while nothing ran, yet was not done

    @property
    def makespan(self) -> float:
        return max((e.ended for e in self.evaluations), default=0.0)

    @property
    def busy_hours(self) -> float:
        """Slot-hours used: the GPU-hours bill, failed attempts and failed trials included."""
        return sum(e.busy_hours for e in self.evaluations)

    @property
    def utilisation(self) -> float:
        """Busy slot-hours / (cap x makespan): the share of the cap in use while work remained."""
        span = self.makespan
        return self.busy_hours / (self.cap * span) if span > 0 else 0.0


def asker(strategy: AskTell) -> Callable[[int], Sequence[Index]]:
    """``ask(free)`` where the strategy takes the hint (``Strategy.ask(free=None)``), else ask()."""
    try:
        takes_free = "free" in inspect.signature(strategy.ask).parameters
    except (TypeError, ValueError):
        takes_free = False
    if takes_free:
        return lambda free: strategy.ask(free=free)
    return lambda free: strategy.ask()


class VirtualCluster:
    """Drives one strategy on one objective; see the module docstring."""

    def __init__(self, spec: ClusterSpec, objective: Callable[[Index], float | None], *,
                 budget: int, max_asks: int | None = None) -> None:
        if budget < 1:
            raise ValueError(f"budget must be >= 1, got {budget}")
        self.spec = spec
        self.objective = objective
        self.budget = budget
        self.max_asks = 2 * budget if max_asks is None else max_asks

    def run(self, strategy: AskTell, mode: Mode) -> Campaign:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        return _Drive(self, strategy, mode).campaign


class _Drive:
    """The event loop of one campaign (kept apart so VirtualCluster stays reusable)."""

    def __init__(self, cluster: VirtualCluster, strategy: AskTell, mode: Mode) -> None:
        self.spec, self.cluster, self.strategy, self.mode = cluster.spec, cluster, strategy, mode
        self.ask = asker(strategy)
        self.campaign = Campaign(cluster.spec.cap, mode)
        self.known: dict[Index, float | None] = {}
        self.running: list[tuple[float, int, Evaluation]] = []      # heap by end time
        self.queued: deque[Index] = deque()        # asked beyond the free slots: wait for one
        self.pending: set[Index] = set()           # running or queued
        self.round: list[Index] = []               # sync: the points of the current round
        self.started = 0                           # points given a slot or a place in the queue
        self.serial = 0                            # evaluations started
        self.now = 0.0
        self._loop()

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        self._fill()
        while self.running:
            ended = self._pop_simultaneous()
            for e in ended:
                self.known[e.point] = e.value
                self.pending.discard(e.point)
                self.campaign.evaluations.append(e)
            self._start_queued()
            if self.mode == "refill":
                self.strategy.tell({e.point: e.value for e in ended})
                self._fill()
            elif not self.running:                 # sync: the round is complete
                self.strategy.tell({p: self.known[p] for p in self.round})
                self.round = []
                self._fill()
        self.campaign.stopped = bool(self.strategy.done)
        self.campaign.stalled = not self.campaign.stopped and self._may_ask()

    def _may_ask(self) -> bool:
        return (self.started < self.cluster.budget
                and self.campaign.asks < self.cluster.max_asks)

    def _fill(self) -> None:
        """Ask while slots are free; known duplicates are told at once and asking goes on."""
        while not self.strategy.done and self._may_ask():
            free = self.spec.cap - len(self.running) - len(self.queued)
            if free <= 0:
                return
            points = [tuple(int(i) for i in p) for p in self.ask(free)]
            self.campaign.asks += len(points)
            instant: dict[Index, float | None] = {}
            fresh = 0
            for point in points:
                if point in self.known:
                    instant[point] = self.known[point]
                    self.campaign.duplicates += 1
                elif point in self.pending:        # running, queued, or twice in this batch
                    self.campaign.duplicates += 1
                elif self.started < self.cluster.budget:   # past the budget: never run
                    self.queued.append(point)
                    self.pending.add(point)
                    self.round.append(point)
                    self.started += 1
                    fresh += 1
            self._start_queued()
            if instant:
                self.strategy.tell(instant)
            elif fresh == 0 or self.mode == "sync":
                return                             # waiting, or the round is set

    def _start_queued(self) -> None:
        while self.queued and len(self.running) < self.spec.cap:
            point = self.queued.popleft()
            self._start(point)

    def _start(self, point: Index) -> None:
        value = self.cluster.objective(point)
        ended, attempts = self.now, 0
        while True:
            attempts += 1
            hours, completed = self.spec.attempt(point, attempts, value is not None)
            ended += hours
            if completed:
                break
        self.serial += 1
        e = Evaluation(self.serial, point, value, self.now, ended, attempts)
        heapq.heappush(self.running, (ended, self.serial, e))

    def _pop_simultaneous(self) -> list[Evaluation]:
        end, _, first = heapq.heappop(self.running)
        self.now = end
        ended = [first]
        while self.running and self.running[0][0] == end:
            ended.append(heapq.heappop(self.running)[2])
        return ended
