"""Driving the search from the database: rebuild by replay, advance round by round, speculate.

The strategy lives only in memory; what it decided is in the database (points with their round,
stages). After a restart the strategy is rebuilt by replaying the stored outcomes (see
``strategies.replay``), which lands it on the round the master was in, so nothing is asked twice.

Two ways to drive it (``[search] mode``): ``sync`` rounds (tell a round once every point of it
has an outcome, then ask), and ``refill``: tell each group of outcomes as soon as they are
recorded, then ``ask(free)`` with the number of free slots. Refill's groups depend on when jobs
end, so every tell and ask is journaled (``JournalEntry``) in the transaction that records what
it caused, and a restart replays the journal exactly (``strategies.replay_journal``).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from search import Strategy

from . import extend, ledger
from .context import Context, MasterError
from .models import (
    Attempt,
    Evaluation,
    Experiment,
    JournalEntry,
    Point,
    Stage,
    parse_point_key,
    point_key,
)
from .render import measured
from .states import AttemptState, JournalKind, Origin, PointState
from .strategies import (
    Replay,
    ReplayDiverged,
    Step,
    build_strategy,
    replay,
    replay_journal,
)

log = logging.getLogger("orchestrator.master")

Index = tuple[int, ...]


@dataclass(frozen=True)
class Snapshot:
    """Where the search stands, as the master decided it: stored as JSON on the experiment row
    (``Experiment.progress``) whenever the search is told results or asked for points."""

    strategy: str                  # search.strategy of the config
    stage: int | None              # the stage in progress (the last one once done); staged only
    level: int | None
    base: list[int] | None         # the current base point (index); staged only
    stages_done: int
    best: list[int] | None         # the search's best point (index): first told on ties
    best_value: float | None
    rounds: int                    # rounds asked so far
    evaluations: int               # results told (failures included)
    done: bool                     # the strategy will ask for nothing more

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class SearchDriver:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.cap = ctx.config.model.scheduler.cap
        self._replay: Replay | None = None   # built on the first advance (after the setup job)
        self._speculated = 0
        self._stage_offset = 0               # stages recorded before a grid extension
        self.refill = ctx.config.model.search.mode == "refill"
        self._journaled = 0                  # journal steps written (refill mode)
        # Refill: the last ask returned nothing with nothing outstanding; asking again before
        # anything is told would only journal the same empty answer every cycle.
        self._stalled = False

    @property
    def replayed(self) -> Replay:
        if self._replay is None:
            self.rebuild()
        assert self._replay is not None
        return self._replay

    def rebuild(self) -> None:
        """A fresh strategy brought to where the stored outcomes put it."""
        strategy = build_strategy(self.ctx.config, self.cap)
        with self.ctx.read() as s:
            self._speculated = s.execute(select(func.count()).select_from(Point).where(
                Point.experiment_id == self.ctx.experiment_id,
                Point.origin == Origin.SPECULATIVE)).scalar_one()
            self._stage_offset = extend.stages_before(s, self.ctx.experiment_id)
        known = self._known()
        inform = getattr(strategy, "inform", None)
        if known and callable(inform):
            inform(known)         # at the start, always the same: replay stays deterministic
        ask_now = False
        if self.refill:
            with self.ctx.read() as s:
                steps = JournalEntry.steps(s, self.ctx.experiment_id)
            self._replay = self._replay_journal(strategy, steps)
            # Every tell is followed by an ask: the first ask, or one a crash cut off, is due.
            ask_now = not steps or steps[-1][0] is JournalKind.TELL
        else:
            self._replay = replay(strategy, self._outcomes())
        self._record_told()
        if self._replay.current:
            self._ensure_points(self._replay.current, self._replay.rounds)
        if ask_now:
            self._ask_refill()

    def _replay_journal(self, strategy: Strategy, steps: Sequence[Step]) -> Replay:
        self._journaled = len(steps)
        try:
            return replay_journal(strategy, steps, self._outcomes())
        except ReplayDiverged as exc:
            raise MasterError(f"cannot replay the search journal of {self.ctx.config.name!r} "
                              f"({exc}); was the search code changed since the experiment "
                              "started?") from None

    def advance(self) -> None:
        """Tell the strategy what was measured and ask for more (by rounds, or refilling)."""
        if self.refill:
            self._advance_refill()
            return
        state = self.replayed
        outcomes = self._outcomes(state.current)
        while state.current and all(p in outcomes for p in state.current):
            state.strategy.tell({p: outcomes[p] for p in state.current})
            state.current = []
            self._record_told()
            if not self._ask():
                break
            outcomes = self._outcomes(state.current)   # speculation may have measured some
        if not state.current:
            self._ask()

    def finished(self) -> bool:
        """The strategy is done and no job it asked for is still in flight."""
        if not self.replayed.strategy.done:
            return False
        with self.ctx.read() as s:
            return not Attempt.count_active(s, self.ctx.experiment_id, search_only=True)

    def _ask(self) -> bool:
        """Start the next round; False if the strategy has none (done, or waiting)."""
        state = self.replayed
        if state.strategy.done:
            return False
        batch = state.strategy.ask()
        if not batch:
            return False
        state.rounds += 1
        state.current = batch
        self._ensure_points(batch, state.rounds)
        return True

    # ---- refill mode -----------------------------------------------------------------------------
    def _advance_refill(self) -> None:
        state = self.replayed
        outcomes = self._outcomes(state.current)            # in the order they were recorded
        group = list(outcomes)
        if group:
            state.strategy.tell(outcomes)
            told = set(group)
            state.current = [p for p in state.current if p not in told]
            self._record_told(group)
            self._ask_refill()
        elif not state.current and not self._stalled:
            self._ask_refill()

    def _ask_refill(self) -> None:
        state = self.replayed
        if state.strategy.done:
            return
        free = self._free_slots()
        batch = state.strategy.ask(free)
        if batch:
            state.rounds += 1
            state.current += batch
        self._stalled = not batch and not state.current
        with self.ctx.tx() as s:
            self._journal(s, JournalKind.ASK, batch, free)
            ledger.record_points(s, self.ctx.experiment_id, batch, round_number=state.rounds,
                                 params_of=self.ctx.config.params_of, at=self.ctx.now())
            self._store_snapshot(s)

    def _free_slots(self) -> int:
        """Slots neither running a job nor promised to a point waiting for one."""
        with self.ctx.read() as s:
            busy = Attempt.count_active(s, self.ctx.experiment_id)
            waiting = s.execute(select(func.count()).select_from(Point).where(
                Point.experiment_id == self.ctx.experiment_id,
                Point.state == PointState.PENDING)).scalar_one()
        return max(0, self.cap - busy - waiting)

    def _journal(self, s: Session, kind: JournalKind, points: list[Index],
                 free: int | None = None) -> None:
        self._journaled += 1
        s.add(JournalEntry(experiment_id=self.ctx.experiment_id, seq=self._journaled, kind=kind,
                           free=free, points=[list(p) for p in points], recorded_at=self.ctx.now()))

    # ---- speculation -----------------------------------------------------------------------------
    def speculate(self, free: int) -> None:
        """Fill slots the round leaves idle with points the search ranks as likely next."""
        config = self.ctx.config.model.search
        if config.speculation != "on":
            return
        state = self.replayed
        with self.ctx.read() as s:
            waiting = s.execute(select(func.count()).select_from(Point).where(
                Point.experiment_id == self.ctx.experiment_id,
                Point.state == PointState.PENDING)).scalar_one()
        room = free - waiting
        if config.speculation_budget is not None:
            room = min(room, config.speculation_budget - self._speculated)
        if room <= 0 or state.strategy.done:
            return
        candidates = state.strategy.speculate(room + len(state.current))
        with self.ctx.tx() as s:
            existing = Point.by_keys(s, self.ctx.experiment_id, [point_key(p) for p in candidates])
            wanted = [p for p in candidates if point_key(p) not in existing][:room]
            new = ledger.record_points(s, self.ctx.experiment_id, wanted, round_number=None,
                                       params_of=self.ctx.config.params_of, at=self.ctx.now())
            if new:
                self.ctx.event(s, "speculate", f"prefetching {len(new)} points into idle slots")
        self._speculated += len(new)

    def snapshot(self) -> Snapshot:
        state = self.replayed
        strategy = state.strategy
        best = strategy.best
        return Snapshot(
            strategy=self.ctx.config.model.search.strategy, stage=self._stage_number(strategy),
            level=strategy.level, base=None if strategy.base is None else list(strategy.base),
            stages_done=self._stage_offset + len(strategy.stages),
            best=None if best is None else list(best[0]),
            best_value=None if best is None else best[1], rounds=state.rounds,
            evaluations=len(strategy.history), done=strategy.done)

    def _stage_number(self, strategy: Strategy) -> int | None:
        """The stage in progress as the stages table numbers it (on after a grid extension)."""
        return None if strategy.stage is None else self._stage_offset + strategy.stage

    def _store_snapshot(self, s: Session) -> None:
        exp = s.get(Experiment, self.ctx.experiment_id)
        assert exp is not None
        exp.progress = self.snapshot().as_json()

    def progress(self) -> dict[str, Any]:
        """The line the progress display shows."""
        with self.ctx.read() as s:
            counts = dict(s.execute(select(Attempt.state, func.count()).where(
                Attempt.experiment_id == self.ctx.experiment_id,
                Attempt.state.in_(AttemptState.ACTIVE)).group_by(Attempt.state)).all())
            # A point is done or failed exactly when it has its evaluation (``ledger``): counted
            # in the points' state index, without joining the evaluations.
            done = s.execute(select(func.count()).select_from(Point).where(
                Point.experiment_id == self.ctx.experiment_id,
                Point.state.in_((PointState.DONE, PointState.FAILED)))).scalar_one()
        state = self._replay
        best = state.strategy.best if state is not None else None
        return {
            "stage": self._stage_number(state.strategy) if state is not None else None,
            "round": state.rounds if state is not None else 0,
            "running": counts.get(AttemptState.RUNNING, 0),
            "pending": sum(counts.get(k, 0) for k in (AttemptState.SUBMITTING,
                                                      AttemptState.SUBMITTED,
                                                      AttemptState.PENDING)),
            "done": done,
            "best": None if best is None else best[1],
        }

    def _outcomes(self, points: list[Index] | None = None) -> dict[Index, float | None]:
        """Stored outcomes: of the given points (an indexed lookup), or of all (at start)."""
        query = select(Point.key, Evaluation.value).join(
            Evaluation, Evaluation.point_id == Point.id).where(
            Point.experiment_id == self.ctx.experiment_id)
        if points is not None:
            query = query.where(Point.key.in_([point_key(p) for p in points]))
        query = query.order_by(Evaluation.id)
        with self.ctx.read() as s:
            rows = s.execute(query).all()
        return {parse_point_key(key): value for key, value in rows}

    def _known(self) -> dict[Index, float | None]:
        """Results known before the search began (a warm start), in grid order."""
        with self.ctx.read() as s:
            rows = s.execute(select(Point.key, Evaluation.value).join(
                Evaluation, Evaluation.point_id == Point.id).where(
                Point.experiment_id == self.ctx.experiment_id,
                Point.origin == Origin.KNOWN)).all()
        return dict(sorted((parse_point_key(key), value) for key, value in rows))

    def _ensure_points(self, batch: list[Index], round_number: int) -> None:
        with self.ctx.tx() as s:
            ledger.record_points(s, self.ctx.experiment_id, batch, round_number=round_number,
                                 params_of=self.ctx.config.params_of, at=self.ctx.now())
            self._store_snapshot(s)

    def _record_told(self, group: list[Index] | None = None) -> None:
        """Record stages the strategy finished and the snapshot in one transaction, with the
        journal entry of the tell (refill mode) that finished them."""
        stages = self.replayed.strategy.stages
        with self.ctx.tx() as s:
            if group is not None:
                self._journal(s, JournalKind.TELL, group)
            self._store_snapshot(s)
            recorded = s.execute(select(func.max(Stage.number)).where(
                Stage.experiment_id == self.ctx.experiment_id)).scalar() or 0
            for st in stages:
                number = self._stage_offset + st.number
                if number <= recorded:
                    continue
                s.add(Stage(experiment_id=self.ctx.experiment_id, number=number,
                            level=st.level, base=list(st.base), points=[list(p) for p in st.points],
                            best=None if st.best is None else list(st.best),
                            best_value=st.best_value, moved=st.moved, recorded_at=self.ctx.now()))
                best = ("none" if st.best is None or st.best_value is None else
                        measured(self.ctx.config.params_of(st.best), st.best_value))
                self.ctx.event(s, "stage", f"stage {number} (level {st.level}) done: "
                               f"{len(st.points)} points, best {best}")
