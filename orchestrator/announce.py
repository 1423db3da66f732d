"""The master's side of ``[notify]``: run the notifier once the experiment's end is recorded,
and record what became of it as an event (``notified`` or ``notify-failed``)."""
from __future__ import annotations

import logging

from . import exitcodes
from .config import Config
from .context import Context, MasterError
from .lease import LeaseLost
from .notify import notify, program_problem
from .states import ExperimentState

log = logging.getLogger(__name__)


def check_notifier(config: Config) -> None:
    """Before any work: a notifier that cannot run from here stops ``start`` (a config problem
    found now, not when the experiment ends days later)."""
    section = config.model.notify
    if section is not None and (problem := program_problem(section, config.config_dir)):
        raise MasterError(f"{config.path}: {problem}", exitcodes.USAGE)


def announce(ctx: Context, state: ExperimentState, best: float | None) -> None:
    """Run the notifier for an experiment that ended in ``state`` (its end is already stored,
    so whatever the notifier does, the outcome stands)."""
    section = ctx.config.model.notify
    if section is None:
        return
    outcome = notify(section, ctx.config.config_dir, ctx.config.name, state, best)
    (log.info if outcome.ok else log.warning)("%s", outcome.message)
    try:
        with ctx.tx() as s:
            ctx.event(s, "notified" if outcome.ok else "notify-failed", outcome.message,
                      {"state": str(state), "best": best})
    except LeaseLost:
        pass                  # a new master took over while the notifier ran: it owns the log
