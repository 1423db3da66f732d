"""``simulate CONFIG``: run an experiment's real master, search and store against a simulated
cluster on a virtual clock, and report the campaign's wall-clock shape.

The jobs are not run: ``scheduler_adapters.simulated`` gives each a duration, a seeded chance of
failing, and its value from a Python function (or a CSV table) of its parameters. Everything else
is the production code path: the master's cycles, the strategy, SQLite, result files. Options come
from the config's ``[simulate]`` table, overridden by command-line flags. The state database lives
in a temporary directory (or ``--work-dir``), never in the experiment's own work directory.
"""
from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import io
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import exitcodes
from .config import Config, ConfigError, read_toml, validate_config
from .config_model import SimulateSection
from .errors import SimulationError
from .output import add_target, emit_json
from .render import best as best_text

if TYPE_CHECKING:   # the master (numpy, scipy, SQLAlchemy) loads only when a simulation runs,
    # so that registering this command costs the other commands nothing
    from scheduler_adapters.simulated import Objective, SimulatedScheduler

    from .master import Master

HOUR = 3600.0


@dataclass
class Simulation:
    """A finished simulated run: its report, and the objects behind it for benchmarks."""

    report: dict[str, Any]
    master: Master
    scheduler: SimulatedScheduler
    config: Config


# ---- loading ---------------------------------------------------------------------------------
def load_simulation(path: str | Path, overrides: Mapping[str, Any], work_dir: Path,
                    speculation: str | None = None, *,
                    scratch: bool = False) -> tuple[Config, SimulateSection]:
    """The config with its work directory, database, cap (and speculation) replaced for the
    simulation, and the ``[simulate]`` options with ``overrides`` (non-None values) applied.

    ``scratch``: the work directory is a private temporary one on a local (or memory) disk,
    where SQLite's WAL journal is safe and saves fsyncs (the figures are in virtual time)."""
    path = Path(path)
    raw = read_toml(path)
    table = raw.get("simulate", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: simulate: must be a table")
    if any(overrides.get(k) is not None for k in ("objective", "table")):
        # An objective named on the command line replaces the config's, whichever kind it is.
        table = {k: v for k, v in table.items() if k not in ("objective", "table")}
    raw["simulate"] = {**table, **{k: v for k, v in overrides.items() if v is not None}}
    experiment = raw.setdefault("experiment", {})
    experiment["work_dir"] = str(work_dir.resolve())
    experiment.pop("database", None)     # never write into the experiment's real database
    if scratch:
        experiment["sqlite_journal"] = "wal"
    if speculation is not None:
        raw.setdefault("search", {})["speculation"] = speculation
    config = validate_config(raw, path)
    options = config.model.simulate
    assert options is not None
    # The simulated cluster's cap and poll interval replace the scheduler's.
    scheduler = raw.setdefault("scheduler", {})
    if options.cap is not None or options.poll_interval is not None:
        scheduler["cap"] = options.cap or config.model.scheduler.cap
        scheduler["poll_interval"] = options.poll_interval or config.model.scheduler.poll_interval
        config = validate_config(raw, path)
    return config, options


def load_objective(spec: str, base_dir: Path) -> Objective:
    """``module:function`` (imported) or ``file.py:function`` (relative to ``base_dir``)."""
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise ConfigError(f"objective {spec!r}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    try:
        if target.endswith(".py"):
            file = (base_dir / target).resolve()
            module_spec = importlib.util.spec_from_file_location(f"_simulated_{file.stem}", file)
            if module_spec is None or module_spec.loader is None or not file.is_file():
                raise ConfigError(f"objective {spec!r}: no Python file {file}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ImportError as exc:
        raise ConfigError(f"objective {spec!r}: cannot import {target}: {exc}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"objective {spec!r}: {target} has no function {name!r}")
    return function


def load_table(file: Path, names: tuple[str, ...], key: str) -> Objective:
    """A CSV of measured values as the objective; a point without a row fails like a crashed job."""
    try:
        with open(file, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ConfigError(f"table {file}: cannot read: {exc.strerror or exc}") from None
    missing = [c for c in (*names, key) if not rows or c not in rows[0]]
    if missing:
        raise ConfigError(f"table {file}: no column {missing[0]!r} "
                          f"(needs {', '.join((*names, key))})")
    values: dict[tuple[Any, ...], float] = {}
    for number, row in enumerate(rows, start=2):
        try:
            values[tuple(_cell(row[n]) for n in names)] = float(row[key])
        except ValueError:
            raise ConfigError(f"table {file}: line {number}: {key} is not a number") from None

    def lookup(params: Mapping[str, Any]) -> float:
        point = tuple(_cell(params[n]) for n in names)
        if point not in values:
            raise KeyError(f"no row for {dict(zip(names, point))}")
        return values[point]
    return lookup


def _cell(value: Any) -> Any:
    """One spelling for a value from TOML or from CSV: numbers as floats, the rest as text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return str(value).strip().lower()


# ---- running ---------------------------------------------------------------------------------
def run_simulation(path: str | Path, overrides: Mapping[str, Any] | None = None, *,
                   work_dir: Path | None = None, speculation: str | None = None,
                   objective_base: Path | None = None) -> Simulation:
    """Run the master against the simulated cluster; ``work_dir`` None: a temporary directory.

    ``objective_base``: where a ``file.py`` objective given in ``overrides`` is found (the CLI
    passes the current directory); one from the config file is found relative to the config.
    """
    overrides = dict(overrides or {})
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="orchestrator-sim-", dir=scratch_root()) as tmp:
            return _simulate_in(path, overrides, Path(tmp), speculation, objective_base, True)
    if work_dir.exists() and any(work_dir.iterdir()):
        raise SimulationError(f"--work-dir {work_dir} is not empty; a simulation starts from "
                              "nothing", exitcodes.USAGE)
    return _simulate_in(path, overrides, work_dir, speculation, objective_base, False)


def scratch_root() -> str | None:
    """Memory-backed /dev/shm when there is one: the scratch database's fsyncs then cost nothing
    (a simulation's figures are in virtual time; its real time is the master's CPU)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _simulate_in(path: str | Path, overrides: Mapping[str, Any], work_dir: Path,
                 speculation: str | None, objective_base: Path | None,
                 scratch: bool) -> Simulation:
    from scheduler_adapters.simulated import SimulatedScheduler, VirtualClock

    from .master import Master, MasterError
    from .progress import Progress
    config, options = load_simulation(path, overrides, work_dir, speculation, scratch=scratch)
    from_cli = any(overrides.get(k) is not None for k in ("objective", "table"))
    base = (objective_base or Path.cwd()) if from_cli else config.config_dir
    if options.table is not None:
        objective = load_table(base / options.table, config.parameter_names, config.objective_key)
    else:
        assert options.objective is not None
        objective = load_objective(options.objective, base)
    clock = VirtualClock()
    scheduler = SimulatedScheduler(
        clock, objective, result_key=config.objective_key, cap=config.model.scheduler.cap,
        duration_mean_s=options.duration_mean_hours * HOUR, duration_spread=options.duration_spread,
        distribution=options.distribution, failure_rate=options.failure_rate, seed=options.seed)
    master = Master(config, scheduler=scheduler, clock=clock.now, sleep=clock.sleep,
                    progress=Progress(io.StringIO(), quiet=True))   # the report says it all
    try:
        code = master.run()
    except MasterError as exc:
        raise SimulationError(str(exc), exc.code) from None
    finally:
        _close_master_log(config.work_dir)
    if code != exitcodes.OK:
        raise SimulationError(f"the simulated experiment did not finish (exit code {code})", code)
    return Simulation(build_report(config, options, master, scheduler), master, scheduler, config)


def _close_master_log(work_dir: Path) -> None:
    """The master logs to WORK_DIR/master.log through a handler it leaves installed; a simulation
    in a temporary directory must not keep writing there after it is gone."""
    root = logging.getLogger("orchestrator")
    for handler in list(root.handlers):
        if str(getattr(handler, "baseFilename", "")).startswith(str(work_dir.resolve())):
            root.removeHandler(handler)
            handler.close()


# ---- the report ------------------------------------------------------------------------------
def build_report(config: Config, options: SimulateSection, master: Master,
                 scheduler: SimulatedScheduler) -> dict[str, Any]:
    from sqlalchemy import func, select

    from .models import Attempt, Evaluation, Experiment, Point, Stage
    from .states import AttemptKind
    from .store import make_engine, session_factory
    engine = make_engine(config.database_url)
    try:
        with session_factory(engine)() as s:
            exp = s.execute(select(Experiment)).scalar_one()
            stages = s.execute(select(Stage).order_by(Stage.number)).scalars().all()
            attempts = s.execute(select(func.count()).select_from(Attempt).where(
                Attempt.kind == AttemptKind.TRIAL)).scalar_one()
            reruns = s.execute(select(func.count()).select_from(Attempt).where(
                Attempt.kind == AttemptKind.TRIAL, Attempt.number > 1)).scalar_one()
            # Points measured that no round of the search asked for: speculation it never used.
            unasked = s.execute(select(func.count()).select_from(Point).join(
                Evaluation, Evaluation.point_id == Point.id).where(
                Point.round.is_(None))).scalar_one()
    finally:
        engine.dispose()
    summary = master.summary()
    assert exp.started_at is not None and exp.finished_at is not None
    start = exp.started_at
    makespan_s = (exp.finished_at - start).total_seconds()
    busy_s = scheduler.busy_seconds
    cap = config.model.scheduler.cap
    timeline = []
    previous = start
    for st in stages:
        timeline.append({"number": st.number, "level": st.level, "points": len(st.points),
                         "start_hours": _hours((previous - start).total_seconds()),
                         "end_hours": _hours((st.recorded_at - start).total_seconds())})
        previous = st.recorded_at
    return {
        "experiment": config.name,
        "cap": cap,
        "seed": options.seed,
        "duration_mean_hours": options.duration_mean_hours,
        "duration_spread": options.duration_spread,
        "failure_rate": options.failure_rate,
        "makespan_hours": _hours(makespan_s),
        "gpu_hours": _hours(busy_s),
        "ideal_makespan_hours": _hours(busy_s / cap),
        "utilisation": round(busy_s / (cap * makespan_s), 4) if makespan_s > 0 else None,
        "evaluations": summary["evaluations"],
        "failed_points": summary["failed_points"],
        "attempts": attempts,
        "reruns": reruns,
        "best": summary["best"],
        "stages": timeline,
        "speculation": {
            "mode": config.model.search.speculation,
            # Points measured that the search itself never asked for: the price of speculating.
            "extra_evaluations": unasked,
        },
        "master": {
            "cycles": master.cycles,
            "status_calls": scheduler.status_calls,
            "status_calls_per_cycle": round(scheduler.status_calls / max(master.cycles, 1), 3),
        },
    }


def _hours(seconds: float) -> float:
    return round(seconds / HOUR, 3)


def format_report(report: dict[str, Any]) -> str:
    best = report["best"]
    spec = report["speculation"]
    lines = [
        f"simulated {report['experiment']}: cap {report['cap']}, jobs "
        f"{report['duration_mean_hours']:g} h +- {report['duration_spread']:.0%}, "
        f"{report['failure_rate']:.1%} failures, seed {report['seed']}, speculation {spec['mode']}",
        f"makespan      {report['makespan_hours']:.1f} h  (GPU-hours / cap = "
        f"{report['ideal_makespan_hours']:.1f} h)",
        f"GPU-hours     {report['gpu_hours']:.1f}",
        f"utilisation   {report['utilisation']:.1%}",
        f"evaluations   {report['evaluations']} ({report['failed_points']} failed points, "
        f"{report['attempts']} attempts, {report['reruns']} reruns, "
        f"{spec['extra_evaluations']} speculative extra)",
        "best          " + best_text(best),
        "stages:",
    ]
    lines += [f"  {st['number']:>3}  level {st['level']}  {st['points']:>3} points  "
              f"{st['start_hours']:7.1f} h - {st['end_hours']:7.1f} h" for st in report["stages"]]
    return "\n".join(lines)


# ---- the command -----------------------------------------------------------------------------
def simulate_args(p: argparse.ArgumentParser) -> None:
    add_target(p, database_ok=False)
    p.add_argument("--duration-mean-hours", type=float, help="mean job duration, hours")
    p.add_argument("--duration-spread", type=float, help="standard deviation / mean of durations")
    p.add_argument("--failure-rate", type=float, help="probability that an attempt fails")
    p.add_argument("--cap", type=int, help="concurrent jobs (slots); default scheduler.cap")
    p.add_argument("--seed", type=int, help="seed of durations and failures")
    p.add_argument("--objective", metavar="MODULE:FUNCTION",
                   help="objective: a Python function of the params dict (or FILE.py:FUNCTION)")
    p.add_argument("--table", metavar="CSV", help="objective: a CSV of parameters and values")
    p.add_argument("--speculation", choices=("on", "off"), help="the master's speculative prefetch")
    p.add_argument("--work-dir", type=Path, help="keep the state database here (must be empty)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def simulate(args: argparse.Namespace) -> int:
    overrides = {"duration_mean_hours": args.duration_mean_hours,
                 "duration_spread": args.duration_spread, "failure_rate": args.failure_rate,
                 "cap": args.cap, "seed": args.seed, "objective": args.objective,
                 "table": args.table}
    result = run_simulation(args.target, overrides, work_dir=args.work_dir,
                            speculation=args.speculation)
    if args.json:
        emit_json(result.report)
    else:
        print(format_report(result.report), file=sys.stdout)
    return exitcodes.OK
