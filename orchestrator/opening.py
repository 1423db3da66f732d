"""Opening an experiment's state: the work directory, the database and the experiment row.

The first start creates the experiment (with the results of a warm start, if given). A later
start checks that the database is this experiment's and that the config may continue it: a
search definition whose candidate lists only grew extends the grid (``extend``), an equal one
in another form is rewritten, any other change is refused with the difference named; changed
settings are accepted unless they would orphan the jobs in flight (``guards``).
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from . import exitcodes, extend, ledger
from .config import Config
from .context import MasterError
from .guards import refuse_new_over_old_runs, refuse_unsafe_change
from .models import Experiment
from .states import ExperimentState
from .store import create_schema, make_engine, schema_problem
from .workdir import WorkDirUnsafe, check_work_dir, probe_writable

# A warm start: where the results come from, and the results by grid index.
Known = tuple[str, dict[tuple[int, ...], float | None]]


@dataclass(frozen=True)
class Opened:
    """The experiment as this start found (or made) it."""

    experiment_id: int
    state: ExperimentState
    instance: str                 # part of every job name (see models.Experiment)
    extended: str | None = None   # what a grid extension added, when this start extended it


class Opener:
    """Opens one config's experiment; every refusal is a MasterError naming what to do."""

    def __init__(self, config: Config, *, known: Known | None = None,
                 clock: Callable[[], float]) -> None:
        self.config = config
        self.known = known            # a warm start: only for a new experiment
        self.clock = clock
        self.fingerprint = config.fingerprint()

    def engine(self) -> Engine:
        """The database engine, once the work directory is safe and writable (made if new)."""
        cfg = self.config
        try:
            check_work_dir(cfg.work_dir)
        except WorkDirUnsafe as exc:
            raise MasterError(str(exc), exc.code) from None
        try:
            if not cfg.work_dir.exists():
                cfg.work_dir.mkdir(parents=True, mode=0o700)
                os.chmod(cfg.work_dir, 0o700)
            probe_writable(cfg.work_dir)
        except OSError as exc:
            raise MasterError(f"work directory {cfg.work_dir} is not writable: "
                              f"{exc.strerror or exc}", exitcodes.USAGE) from None
        return make_engine(cfg.database_url, journal=cfg.model.experiment.sqlite_journal)

    def open(self, engine: Engine, sessions: sessionmaker[Session]) -> Opened:
        """The experiment, created on the first start."""
        cfg = self.config
        for tries in range(3):
            try:
                create_schema(engine)
                problem = schema_problem(engine)
                if problem:
                    raise MasterError(f"the state database {cfg.database_url} was written by "
                                      f"another version of orchestrator ({problem}); finish or "
                                      "export it with that version, or start a new work_dir")
                return self._load(sessions)
            except MasterError:
                raise
            except (IntegrityError, ProgrammingError):
                # Two masters creating the schema or the experiment at the same instant (on
                # PostgreSQL; SQLite serialises them): the loser looks again.
                if tries == 2:
                    raise
            except Exception as exc:  # a corrupt file or an unreachable server, in the user's words
                raise MasterError(f"cannot open the state database {cfg.database_url}: "
                                  f"{str(exc).splitlines()[0]}") from None
        raise AssertionError("unreachable")

    def _load(self, sessions: sessionmaker[Session]) -> Opened:
        cfg = self.config
        definition = cfg.search_definition()
        settings = {k: v for k, v in cfg.model.model_dump(mode="json").items()
                    if k not in ("parameters", "objective")}
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        extended = None
        with sessions.begin() as s:
            exps = s.execute(select(Experiment)).scalars().all()
            if not exps:
                return self._create(s, now, definition, settings)
            exp = exps[0]
            if exp.name != cfg.name:
                raise MasterError(f"database {cfg.database_url} belongs to experiment "
                                  f"{exp.name!r}, not {cfg.name!r}", exitcodes.USAGE)
            if self.known is not None:
                raise MasterError(f"--warm-start: {cfg.name!r} already exists in "
                                  f"{cfg.database_url}; warm start a new experiment "
                                  "(`start --fresh --warm-start ...`)", exitcodes.USAGE)
            if exp.fingerprint != self.fingerprint:
                if cfg.search_changes(exp.definition):
                    extended = self._extend(s, exp, now)
                else:
                    # Equal as a search (1 and 1.0, a seed no strategy reads): keep the new form.
                    exp.fingerprint, exp.definition = self.fingerprint, definition
                    ledger.add_event(s, exp.id, "definition-rewritten", "search definition "
                                     "rewritten in an equal form; accepted", at=now)
            refuse_unsafe_change(s, exp, settings, cfg)
            if exp.settings != settings:
                exp.settings = settings
                ledger.add_event(s, exp.id, "config-changed",
                                 "settings changed (cap, scheduler, retries, ...); accepted", at=now)
            return Opened(exp.id, ExperimentState(exp.state), exp.instance, extended)

    def _create(self, s: Session, now: datetime, definition: dict[str, Any],
                settings: dict[str, Any]) -> Opened:
        cfg = self.config
        refuse_new_over_old_runs(cfg)
        exp = Experiment(name=cfg.name, fingerprint=self.fingerprint,
                         instance=uuid.uuid4().hex[:8],
                         definition=definition, settings=settings, created_at=now)
        s.add(exp)
        s.flush()
        ledger.add_event(s, exp.id, "created", f"experiment {cfg.name} created", at=now)
        if self.known is not None:
            self._record_known(s, exp.id, now)
        return Opened(exp.id, ExperimentState(exp.state), exp.instance)

    def _extend(self, s: Session, exp: Experiment, now: datetime) -> str:
        """Continue on a grid whose candidate lists grew; refuse any other change, named."""
        definition = self.config.search_definition()
        mapping = extend.plan(exp.definition, definition)
        if mapping is None:
            raise MasterError(extend.refusal(exp.definition, definition, self.config),
                              exitcodes.USAGE)
        try:
            return extend.apply(s, exp, mapping, self.config, self.fingerprint, at=now)
        except extend.ExtensionRefused as exc:
            raise MasterError(f"{self.config.path}: {exc}", exitcodes.USAGE) from None

    def _record_known(self, s: Session, experiment_id: int, now: datetime) -> None:
        assert self.known is not None
        source, results = self.known
        ledger.record_known(s, experiment_id, results, params_of=self.config.params_of,
                            source=source, at=now)
        ledger.add_event(s, experiment_id, "warm-start",
                         f"{len(results)} points known from {source}",
                         {"source": source, "points": len(results)}, at=now)
