"""What a master checks before it takes an experiment's state over, and while it owns it.

- A new ``scheduler.kind`` while jobs are in flight is refused: those jobs live in the old
  scheduler, and the new one would call them vanished and run their points again.
- A new, empty database over a work directory that already holds run directories is refused:
  the old database was deleted (or its URL changed), the jobs it tracked may still run, and
  starting anew would run their points again beside them.
- While the master runs, its SQLite file must stay the file it opened: deleting or replacing
  ``state.db`` under a running master would let it go on writing into a file nobody can open
  again. The master saves what it holds (``state.db.recovered``) and stops.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from . import exitcodes
from .config import Config
from .context import MasterError
from .models import Attempt, Experiment
from .store import sqlite_path

RECOVERED_SUFFIX = ".recovered"


def refuse_unsafe_change(s: Session, exp: Experiment, settings: dict[str, Any],
                         config: Config) -> None:
    """Refuse settings that would orphan the jobs in flight (a new scheduler kind)."""
    old_kind = (exp.settings or {}).get("scheduler", {}).get("kind", "local")
    new_kind = settings["scheduler"]["kind"]
    if old_kind == new_kind:
        return
    in_flight = Attempt.count_active(s, exp.id)
    if in_flight:
        raise MasterError(f"{config.path}: scheduler.kind changed from {old_kind!r} to "
                          f"{new_kind!r} while {in_flight} jobs of the experiment are in flight "
                          f"in {old_kind!r}; start again with kind = {old_kind!r} until they "
                          "have ended (`orchestrator status`), or `orchestrator cancel` them",
                          exitcodes.USAGE)


def refuse_new_over_old_runs(config: Config) -> None:
    """Refuse to create an experiment in a work directory that holds another's run directories."""
    trials = config.work_dir / "trials"
    if not (trials.is_dir() and any(trials.iterdir())):
        return
    saved = sorted(config.work_dir.glob("*" + RECOVERED_SUFFIX))
    hint = (f"move {saved[-1]} back to {config.work_dir / 'state.db'} and start again, or "
            if saved else "restore the state database, or ")
    raise MasterError(f"{config.work_dir} holds the run directories of an earlier run of "
                      f"{config.name!r} but its state database ({config.database_url}) has no "
                      f"experiment: its jobs may still be running; {hint}cancel those jobs and "
                      f"remove {trials} to start anew", exitcodes.USAGE)


class DatabaseWatch:
    """Notices when the SQLite file of a running master is deleted or replaced."""

    def __init__(self, config: Config) -> None:
        self.path = sqlite_path(config.database_url)
        self.identity = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return None
        return info.st_dev, info.st_ino

    def check(self, engine: Engine) -> None:
        """MasterError if the file is gone or another; what the master holds is saved first."""
        if self.path is None or self.identity is None or self._identity() == self.identity:
            return
        saved = self._save(engine)
        where = f"saved as {saved}" if saved else "could not be saved"
        raise MasterError(f"the state database {self.path} was deleted or replaced while the "
                          f"master ran; its last state is {where}: stop any other master, move "
                          f"it back to {self.path.name} and `start` again (jobs keep running)")

    def _save(self, engine: Engine) -> Path | None:
        """Write the open (deleted) database to a new file, next to where it was."""
        assert self.path is not None
        target = self.path.with_name(self.path.name + RECOVERED_SUFFIX)
        for n in range(1, 100):
            if not target.exists():
                break
            target = self.path.with_name(f"{self.path.name}{RECOVERED_SUFFIX}-{n}")
        raw = engine.raw_connection()   # outside SQLAlchemy: VACUUM refuses a transaction
        try:
            connection = raw.driver_connection
            assert connection is not None
            connection.execute("VACUUM INTO ?", (str(target),))
            os.chmod(target, 0o600)
        except Exception:  # noqa: BLE001  (the message says it could not be saved)
            return None
        finally:
            raw.close()
        return target
