"""``orchestrator check CONFIG [--run-one]`` (also ``start --dry-run``): what start would do.

Without ``--run-one`` nothing is created. With it, the first point's trial runs once on the
configured scheduler in ``WORK_DIR/check-runs/`` (not an attempt of the experiment: no state
database is written) and its result file is validated as the master would.
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from jobs.result import PARAMS_FILE
from scheduler_adapters import (
    SCHEDULERS,
    JobSpec,
    JobState,
    JobStatus,
    Scheduler,
    SchedulerError,
)

from . import exitcodes
from .check import Inspection, first_point, first_trial_spec, inspect_config
from .config import Config
from .errors import OrchestratorError
from .files import private_mkdir, write_atomic
from .outcomes import judge, output_tail
from .output import add_target, emit_json
from .render import point
from .trials import params_text

CHECK_RUNS = "check-runs"
UNKNOWN_POLLS = 3          # a job the scheduler has not listed yet is not gone at once
RUN_ONE_GRACE_S = 300      # beyond the time limit: queueing, start-up


def check_args(p: argparse.ArgumentParser) -> None:
    add_target(p, database_ok=False)
    p.add_argument("--run-one", action="store_true",
                   help="also run the first point's trial once on the scheduler and validate "
                        "its result file")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def check(args: argparse.Namespace) -> int:
    found = inspect_config(Path(args.target))
    if args.json:
        emit_json(_as_data(found))
    else:
        _print_inspection(found)
    if found.errors:
        return exitcodes.USAGE
    if args.run_one:
        assert found.config is not None
        return run_one(found.config)
    return exitcodes.OK


def _as_data(found: Inspection) -> dict[str, Any]:
    return {"ok": not found.errors, "errors": found.errors, "warnings": found.warnings,
            "first_point": found.first_point, "script": found.script,
            "command": list(found.first_spec.command) if found.first_spec else None}


def _print_inspection(found: Inspection) -> None:
    config = found.config
    for message in found.errors:
        print(f"error: {message}")
    for message in found.warnings:
        print(f"warning: {message}")
    if found.errors:
        print(f"{len(found.errors)} problem{'s' if len(found.errors) != 1 else ''}; "
              "nothing was created")
        return
    assert config is not None and found.first_spec is not None
    kind = config.model.scheduler.kind
    print(f"config ok: {config.name}, {len(config.shape)} parameters, "
          f"{_grid_size(config)} points, {config.model.search.strategy} search, "
          f"scheduler {kind} ({SCHEDULERS[kind].summary}) answers")
    print(f"work dir: {config.work_dir}")
    print(f"first point: {point(found.first_point)}")
    print(f"run dir: {found.first_spec.workdir}")
    print(f"job script ({kind}):")
    print(found.script.rstrip("\n") if found.script else "")


def _grid_size(config: Config) -> int:
    size = 1
    for n in config.shape:
        size *= n
    return size


def run_one(config: Config) -> int:
    """Run the first point's trial once and validate its result; 0 when it measured."""
    if config.model.setup is not None:
        raise OrchestratorError("--run-one: the trials need the [setup] job's outputs; run "
                                "`start` (the setup job runs first) or check without --run-one",
                                exitcodes.USAGE)
    index = first_point(config)
    assert index is not None
    tag = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:4]
    root = config.work_dir / CHECK_RUNS / tag
    if not config.work_dir.exists():
        config.work_dir.mkdir(parents=True, mode=0o700)
    private_mkdir(root / "run", config.work_dir)
    spec = first_trial_spec(config, index, run_dir=root / "run",
                            instance="c" + uuid.uuid4().hex[:7])
    write_atomic(root / "run" / PARAMS_FILE, params_text(config.params_of(index)))
    sched = config.model.scheduler
    scheduler = SCHEDULERS[sched.kind].create(sched.options, state_dir=root / "scheduler",
                                              cap=sched.cap)
    try:
        status = _submit_and_wait(scheduler, spec, config)
    finally:
        scheduler.close()
    outcome = judge(status, spec.workdir, config.objective_key)
    if outcome.ok:
        print(f"run-one: {point(config.params_of(index))}: {config.objective_key} = "
              f"{outcome.value:.6g} (result file ok: {point(outcome.values)})")
        print(f"run dir: {spec.workdir}")
        return exitcodes.OK
    print(f"run-one failed: {outcome.reason}", file=sys.stderr)
    stderr = spec.stderr_path
    if stderr.is_file():
        print(f"last lines of {stderr}:", file=sys.stderr)
        print("  " + output_tail(stderr, lines=20, chars=4000).replace(" | ", "\n  "),
              file=sys.stderr)
    print(f"run dir: {spec.workdir}", file=sys.stderr)
    return exitcodes.ERROR


def _submit_and_wait(scheduler: Scheduler, spec: JobSpec, config: Config) -> JobStatus:
    limit = (config.model.trial.time_limit or 3600.0) + RUN_ONE_GRACE_S
    poll = config.model.scheduler.poll_interval
    try:
        job_id = scheduler.submit(spec)
    except SchedulerError as exc:
        raise OrchestratorError(f"run-one: the scheduler refused the job: {exc}") from None
    print(f"run-one: submitted {spec.name} as job {job_id}; waiting (Ctrl-C cancels it)",
          file=sys.stderr)
    deadline = time.monotonic() + limit
    unknown = 0
    try:
        while True:
            status = _status_of(scheduler, job_id)
            unknown = unknown + 1 if status.state is JobState.UNKNOWN else 0
            if status.state.terminal and (status.state is not JobState.UNKNOWN
                                          or unknown >= UNKNOWN_POLLS):
                return status
            if time.monotonic() > deadline:
                scheduler.cancel([job_id])
                raise OrchestratorError(f"run-one: job {job_id} did not end within {limit:.0f} s;"
                                        " cancelled")
            time.sleep(poll)
    except KeyboardInterrupt:
        scheduler.cancel([job_id])
        raise


def _status_of(scheduler: Scheduler, job_id: str) -> JobStatus:
    try:
        return scheduler.status([job_id]).get(job_id) or JobStatus(job_id, JobState.UNKNOWN)
    except SchedulerError:
        return JobStatus(job_id, JobState.PENDING)     # a failed query says nothing: ask again

