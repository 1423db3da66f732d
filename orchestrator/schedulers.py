"""Building the configured scheduler adapter from ``[scheduler]`` (a registry lookup)."""
from __future__ import annotations

from scheduler_adapters import Scheduler, SchedulerMisconfigured, lookup

from .config import Config, ConfigError


def build_scheduler(config: Config) -> Scheduler:
    """The adapter of ``scheduler.kind``; a bad option is a one-line ConfigError naming it."""
    sched = config.model.scheduler
    try:
        return lookup(sched.kind).create(sched.options, state_dir=config.work_dir / "scheduler",
                                         cap=sched.cap)
    except (SchedulerMisconfigured, ValueError) as exc:
        raise ConfigError(f"{config.path}: scheduler.options: {exc}") from None
