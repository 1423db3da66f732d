"""What every part of a running master shares: the config, the database, the lease, the clock."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from . import ledger
from .config import Config
from .errors import OrchestratorError
from .lease import LeaseHolder


class MasterError(OrchestratorError):
    """The master cannot go on; the message says why, in one line (``code``: exit status)."""


@dataclass(frozen=True)
class Context:
    """A claimed experiment: built once the master holds the lease, complete from then on."""

    config: Config
    sessions: sessionmaker[Session]
    experiment_id: int
    instance: str                      # part of every job name (see models.Experiment)
    lease: LeaseHolder
    clock: Callable[[], float]         # injected: the simulation runs on a virtual clock
    sleep: Callable[[float], None]

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """One write transaction, which first proves this process still holds the lease."""
        with self.sessions.begin() as s:
            self.lease.check(s)
            yield s

    def read(self) -> Session:
        """A session for reads (no lease check: reads change nothing)."""
        return self.sessions()

    def event(self, s: Session, kind: str, message: str,
              data: dict[str, Any] | None = None) -> None:
        ledger.add_event(s, self.experiment_id, kind, message, data, at=self.now())
