"""The state of an experiment, as typed SQLAlchemy 2 ORM models.

One experiment per database. Every state change of the master is one transaction, so a SIGKILL
at any instant leaves the database at a consistent point between two changes.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from .states import (
    AttemptKind,
    AttemptState,
    ExperimentState,
    JournalKind,
    Origin,
    PointState,
)

SCHEMA_VERSION = 2      # 2: experiments.progress and experiments.scheduler_note


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every back end (SQLite forgets the zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    # Random per experiment instance: part of every job name, so that the jobs of an earlier
    # experiment with the same name and space (still in the scheduler's history) never match.
    instance: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any]]                  # the search-defining part of the config
    settings: Mapped[dict[str, Any]]                    # the rest, as last started
    schema_version: Mapped[int] = mapped_column(default=SCHEMA_VERSION)
    state: Mapped[str] = mapped_column(String(16), default=ExperimentState.NOT_STARTED)
    message: Mapped[str | None] = mapped_column(Text)
    setup_outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The search's progress as the master last recorded it (search_driver.Snapshot), written in
    # the transaction that records the search's decisions: the read side shows it as it is.
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # While the scheduler refuses or cannot take submissions: its own words (None: it takes them).
    scheduler_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Lease(Base):
    """Who is the master. Changed only by compare-and-swap on ``token``."""

    __tablename__ = "lease"

    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    pid_started: Mapped[float | None] = mapped_column(Float)   # process start time, against pid reuse
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    released: Mapped[bool] = mapped_column(default=False)
    stop_requested: Mapped[bool] = mapped_column(default=False)


class Point(Base):
    """A point of the grid that the search (or speculation) wants measured."""

    __tablename__ = "points"
    __table_args__ = (UniqueConstraint("experiment_id", "key"),
                      Index("ix_points_state", "experiment_id", "state"))

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    key: Mapped[str] = mapped_column(String(128))       # "3,5,5,5": the index tuple
    params: Mapped[dict[str, Any]]
    origin: Mapped[str] = mapped_column(String(16), default=Origin.SEARCH)     # states.Origin
    round: Mapped[int | None]                           # the search round that asked for it
    state: Mapped[str] = mapped_column(String(16), default=PointState.PENDING)  # states.PointState
    program_failures: Mapped[int] = mapped_column(default=0)
    infra_failures: Mapped[int] = mapped_column(default=0)
    budget_resets: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    attempts: Mapped[list[Attempt]] = relationship(back_populates="point", order_by="Attempt.number")
    evaluation: Mapped[Evaluation | None] = relationship(back_populates="point")

    @property
    def index(self) -> tuple[int, ...]:
        return parse_point_key(self.key)

    @classmethod
    def by_keys(cls, s: Session, experiment_id: int, keys: Sequence[str]) -> dict[str, Point]:
        """The experiment's points with these keys (an indexed lookup), by key."""
        return {p.key: p for p in s.execute(select(cls).where(
            cls.experiment_id == experiment_id, cls.key.in_(keys))).scalars()}

    @classmethod
    def in_state(cls, s: Session, experiment_id: int, state: PointState) -> Sequence[Point]:
        return s.execute(select(cls).where(cls.experiment_id == experiment_id,
                                           cls.state == state)).scalars().all()


def point_key(index: Sequence[int]) -> str:
    """The stored key of a grid index: "3,5,5,5"."""
    return ",".join(str(i) for i in index)


def parse_point_key(key: str) -> tuple[int, ...]:
    """The grid index of a stored key (the inverse of ``point_key``)."""
    return tuple(int(i) for i in key.split(","))


class Evaluation(Base):
    """The outcome of a point: a value, or a failure once its budget is spent."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)     # order in which outcomes were recorded
    point_id: Mapped[int] = mapped_column(ForeignKey("points.id"), unique=True)
    value: Mapped[float | None]                           # None: the point failed
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    failure: Mapped[str | None] = mapped_column(Text)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    point: Mapped[Point] = relationship(back_populates="evaluation")


class Attempt(Base):
    """One job submitted (or about to be) for a point or for the setup job."""

    __tablename__ = "attempts"
    # By state: the attempts in flight, every cycle. By point: a point's attempts and an
    # attempt's continuations (without it each such lookup scans every attempt).
    __table_args__ = (Index("ix_attempts_state", "experiment_id", "state"),
                      Index("ix_attempts_point", "point_id", "number"))

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    point_id: Mapped[int | None] = mapped_column(ForeignKey("points.id"))   # None: setup job
    kind: Mapped[str] = mapped_column(String(8), default=AttemptKind.TRIAL)   # states.AttemptKind
    number: Mapped[int]
    name: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=AttemptState.SUBMITTING)  # AttemptState
    failure_kind: Mapped[str | None] = mapped_column(String(8))            # states.FailureKind
    reason: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None]
    node: Mapped[str | None] = mapped_column(String(255))
    run_dir: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    point: Mapped[Point | None] = relationship(back_populates="attempts")

    @classmethod
    def active(cls, s: Session, experiment_id: int) -> Sequence[Attempt]:
        """The experiment's attempts in flight, oldest first."""
        return s.execute(select(cls).where(cls.experiment_id == experiment_id,
                                           cls.state.in_(AttemptState.ACTIVE))
                         .order_by(cls.id)).scalars().all()

    @classmethod
    def count_active(cls, s: Session, experiment_id: int, *, search_only: bool = False) -> int:
        """Attempts in flight; ``search_only``: leave out those of unneeded speculation."""
        query = select(func.count()).select_from(cls).where(
            cls.experiment_id == experiment_id, cls.state.in_(AttemptState.ACTIVE))
        if search_only:
            query = query.join(Point, cls.point_id == Point.id, isouter=True).where(
                (Point.round.is_not(None)) | (cls.point_id.is_(None)))
        return s.execute(query).scalar_one()


class Stage(Base):
    """A finished stage of the search (DSICE: a base point and what was measured around it)."""

    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("experiment_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    number: Mapped[int]
    level: Mapped[int | None]
    base: Mapped[list[Any] | None] = mapped_column(JSON)   # None for strategies without a base
    points: Mapped[list[Any]]
    best: Mapped[list[Any] | None] = mapped_column(JSON)
    best_value: Mapped[float | None]
    moved: Mapped[bool | None]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class JournalEntry(Base):
    """One step of the search in refill mode, in order (``seq``): every ask with its ``free``
    hint and the points it returned, every tell with the points told in their order. Each is
    written in the transaction that records what it caused, so a restarted master replays the
    identical sequence (``strategies.replay_journal``)."""

    __tablename__ = "search_journal"
    __table_args__ = (UniqueConstraint("experiment_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(8))          # states.JournalKind
    free: Mapped[int | None]                              # ask: the free-slot hint given
    points: Mapped[list[Any]]                             # index lists, in order
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def steps(cls, s: Session, experiment_id: int) -> list[tuple[JournalKind, int | None,
                                                                 list[tuple[int, ...]]]]:
        """The journal in order, as (kind, free, points)."""
        return [(JournalKind(e.kind), e.free, [tuple(p) for p in e.points])
                for e in s.execute(select(cls).where(cls.experiment_id == experiment_id)
                                   .order_by(cls.seq)).scalars()]


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
