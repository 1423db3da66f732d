"""How a claimed run ends: the search finished, the experiment failed (fast, or in its setup
job), or the master was stopped or the experiment cancelled.

Each end records what it decided, releases the lease, tells the user in one line and returns the
process exit code. The end of the experiment is stored before the notifier runs (``announce``),
so whatever the notifier does, the outcome stands.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from . import exitcodes, ledger, queries
from .announce import announce
from .context import Context
from .lease import LeaseLost
from .models import Experiment
from .progress import Progress
from .reconcile import CancelFailed, Reconciler
from .render import best
from .states import ExperimentState

CANCELLED = "experiment cancelled"      # the stop reason of a cancelled experiment


def summary(s: Session, experiment_id: int, now: datetime) -> dict[str, Any]:
    """The experiment's result so far: best point, counts, wall time (``queries.summary``)."""
    exp = s.get(Experiment, experiment_id)
    assert exp is not None
    return queries.summary(s, exp, now)


class Ending:
    """The ends of one claimed run; each method returns the process exit code."""

    def __init__(self, ctx: Context, reconciler: Reconciler, progress: Progress) -> None:
        self.ctx = ctx
        self.reconciler = reconciler
        self.progress = progress

    def release(self) -> None:
        """Give the lease back (a master that lost it has nothing to give)."""
        try:
            self.ctx.lease.release(self.ctx.sessions)
        except LeaseLost:
            pass

    def stopped(self, why: str) -> int:
        """A signal, ``stop`` or ``cancel`` (``why``): jobs keep running unless cancelled."""
        message = f"master stopped ({why}); jobs keep running; `start` resumes the experiment"
        code = exitcodes.OK
        if why == CANCELLED:
            cancel = self.reconciler.cancel_all(CANCELLED)
            if isinstance(cancel, CancelFailed):
                message = (f"experiment cancelled, but its jobs could not be cancelled at the "
                           f"scheduler ({cancel.reason}); they may still run: run "
                           f"`orchestrator cancel {self.ctx.config.path}` again")
                code = exitcodes.ERROR
        return self._end(message, code)

    def setup_failed(self, message: str) -> int:
        """The setup job failed for good (its failure is recorded): nothing was measured."""
        announce(self.ctx, ExperimentState.FAILED, None)
        return self._end(f"experiment failed: {message}", exitcodes.ERROR)

    def fail_fast(self, reason: str) -> int:
        """Stop the experiment: its trials fail alike and none succeeded (see ``fail_fast``)."""
        ctx = self.ctx
        self.reconciler.cancel_all("experiment failed fast")
        message = (f"{reason}; fix the trial (`orchestrator check CONFIG --run-one`), then "
                   "`orchestrator retry CONFIG --all-failed`")
        with ctx.tx() as s:
            ledger.set_experiment_state(s, ctx.experiment_id, ExperimentState.FAILED,
                                        at=ctx.now(), message=message)
            ctx.event(s, "experiment-failed", message, {"fail_fast": True})
        return self._end(f"experiment failed: {message}", exitcodes.ERROR)

    def finish(self) -> int:
        """Record the end of the search; non-zero when nothing was measured."""
        ctx = self.ctx
        cancel = self.reconciler.cancel_all("search finished; speculative job no longer needed")
        if isinstance(cancel, CancelFailed):
            self.progress.message(f"speculative jobs the search no longer needs could not be "
                                  f"cancelled ({cancel.reason}); they may still run")
        with ctx.read() as s:
            result = summary(s, ctx.experiment_id, ctx.now())
        with ctx.tx() as s:
            ledger.cancel_pending_points(s, ctx.experiment_id)
            ledger.set_experiment_state(s, ctx.experiment_id, ExperimentState.FINISHED,
                                        at=ctx.now())
            ctx.event(s, "finished", f"experiment finished: best {best(result['best'])}", result)
        announce(ctx, ExperimentState.FINISHED,
                 result["best"]["value"] if result["best"] else None)
        self.release()
        self.progress.finish(result)
        return exitcodes.OK if result["best"] is not None else exitcodes.ERROR

    def _end(self, message: str, code: int) -> int:
        self.release()
        self.progress.message(message)
        return code
