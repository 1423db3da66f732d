"""The optional setup job: run once before any trial, retried within its own budget.

Its outputs (the JSON object it wrote) are stored on the experiment and never change after it
succeeded; every trial can use them in its command and environment.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from . import ledger
from .context import Context
from .ledger import Budget
from .models import Attempt, Experiment
from .states import AttemptKind, AttemptState, ExperimentState, FailureKind
from .submit import Submitter

SETUP = "setup"              # the job-name and run-directory tag of the setup job


@dataclass(frozen=True)
class Continue:
    """The setup job is running, or was just submitted again."""


@dataclass(frozen=True)
class Failed:
    """The setup job's budget is spent; the experiment failed (the message says why)."""

    message: str


class SetupOutputs:
    """The setup job's outputs once it succeeded, read once and then kept."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._outputs: dict[str, Any] | None = None

    def get(self) -> dict[str, Any] | None:
        if self._outputs is None:
            with self.ctx.read() as s:
                exp = s.get(Experiment, self.ctx.experiment_id)
                self._outputs = exp.setup_outputs if exp is not None else None
        return self._outputs

    def ready(self) -> bool:
        """True when trials may run: no setup job is configured, or it succeeded."""
        return self.ctx.config.model.setup is None or self.get() is not None


class SetupJob:
    def __init__(self, ctx: Context, outputs: SetupOutputs, submitter: Submitter) -> None:
        setup = ctx.config.model.setup
        assert setup is not None
        self.ctx = ctx
        self.outputs = outputs
        self.submitter = submitter
        self.budget = Budget(setup.retries, setup.infra_retries)

    def advance(self) -> Continue | Failed:
        """Keep one setup attempt going until it succeeds or its budget is spent."""
        with self.ctx.read() as s:
            attempts = s.execute(select(Attempt).where(
                Attempt.experiment_id == self.ctx.experiment_id,
                Attempt.kind == AttemptKind.SETUP).order_by(Attempt.number)).scalars().all()
        if any(a.state in AttemptState.ACTIVE for a in attempts):
            return Continue()
        program = sum(a.failure_kind == FailureKind.PROGRAM for a in attempts)
        infra = sum(a.failure_kind == FailureKind.INFRA for a in attempts)
        if self.budget.spent(program, infra):
            reason = attempts[-1].reason if attempts else "unknown"
            where = attempts[-1].run_dir if attempts else self.ctx.config.work_dir
            message = (f"setup job failed {len(attempts)} times, budget spent; last failure: "
                       f"{reason}; see {where}")
            with self.ctx.tx() as s:
                ledger.set_experiment_state(s, self.ctx.experiment_id, ExperimentState.FAILED,
                                            at=self.ctx.now(), message=message)
                self.ctx.event(s, "experiment-failed", message)
            return Failed(message)
        self.submitter.launch([(None, SETUP, max((a.number for a in attempts), default=0) + 1)])
        return Continue()
