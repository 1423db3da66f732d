"""Building the configured scheduler adapter from ``[scheduler]``."""
from __future__ import annotations

from typing import Any

from scheduler_adapters.base import Scheduler

from .config import Config, ConfigError


def build_scheduler(config: Config) -> Scheduler:
    sched = config.model.scheduler
    options: dict[str, Any] = dict(sched.options)
    state_dir = config.work_dir / "scheduler"
    try:
        if sched.kind == "local":
            from scheduler_adapters.local import LocalScheduler
            slots = int(options.pop("slots", sched.cap))
            return LocalScheduler(state_dir, slots=slots, **options)
        if sched.kind == "slurm":
            from scheduler_adapters.slurm import SlurmScheduler
            return SlurmScheduler(**options)
        if sched.kind == "pjm":
            from scheduler_adapters.pjm import PJMScheduler
            return PJMScheduler(**options)
        from scheduler_adapters.drmaa_adapter import DRMAAScheduler
        return DRMAAScheduler(state_dir=state_dir, **options)
    except TypeError as exc:
        raise ConfigError(f"{config.path}: scheduler.options: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{config.path}: scheduler.options: {exc}") from None
