"""A changed search definition: continue when candidate lists only grew, else name the change.

The best point often sits on the edge of the grid; adding candidates beyond it must not cost
what was measured. When every parameter keeps its old values in their order (values added
anywhere) and nothing else of the search changed, the experiment continues:

- each point is re-keyed to its index in the new grid; stages are re-indexed;
- every measured point becomes a known result (``Origin.KNOWN``) that the rebuilt search is
  told first (DSICE ``inform``), so none is measured again and the search goes on from them;
- the old run directories move to ``trials/before-extension-<n>/`` (their attempts follow),
  so a new point can never meet an old point's files under its new key;
- the experiment gets a new instance: new job names never match old jobs in the scheduler;
- the old stages stay in the stages table; the new search's stages are numbered on after them.

Any other change (a value removed or changed, a parameter added, another objective, strategy,
constraint or options) is refused with each difference named.
"""
from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import ledger, queries
from .config import Config
from .models import Attempt, Event, Experiment, Point, Stage, parse_point_key, point_key
from .states import AttemptState, ExperimentState, Origin, PointState

IndexMap = list[list[int]]      # per parameter: old index -> new index


class ExtensionRefused(Exception):
    """The definition changed in a way that is not a pure extension, or not now."""


def plan(old: dict[str, Any], new: dict[str, Any]) -> IndexMap | None:
    """The index mapping if ``new`` only adds candidate values to ``old``; None otherwise."""
    others = set(old) | set(new)
    others -= {"parameters"}
    if any(old.get(k) != new.get(k) for k in others):
        return None
    order = old["parameter_order"]
    mapping = []
    for name in order:
        positions = _subsequence(old["parameters"][name], new["parameters"][name])
        if positions is None:
            return None
        mapping.append(positions)
    if all(len(old["parameters"][n]) == len(new["parameters"][n]) for n in order):
        return None
    return mapping


def _subsequence(old: list[Any], new: list[Any]) -> list[int] | None:
    """Where each old value sits in ``new``, in order; None if one is missing or moved."""
    positions, start = [], 0
    for value in old:
        hit = next((j for j in range(start, len(new)) if same_value(new[j], value)), None)
        if hit is None:
            return None
        positions.append(hit)
        start = hit + 1
    return positions


def same_value(a: Any, b: Any) -> bool:
    """Two candidate values are the same: 1 and 1.0 are, True and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each change of the search definition, named."""
    found = []
    old_params, new_params = old["parameters"], new["parameters"]
    for name in sorted(set(old_params) - set(new_params)):
        found.append(f"parameter {name} removed")
    for name in sorted(set(new_params) - set(old_params)):
        found.append(f"parameter {name} added")
    for name in sorted(set(old_params) & set(new_params)):
        was, now = old_params[name], new_params[name]
        if was == now:
            continue
        gone = [v for v in was if not any(same_value(v, w) for w in now)]
        added = [v for v in now if not any(same_value(v, w) for w in was)]
        parts = [f"removed {_list(gone)}"] * bool(gone) + [f"added {_list(added)}"] * bool(added)
        found.append(f"{name}: " + ("; ".join(parts) if parts else
                                    f"values reordered {_list(was)} -> {_list(now)}"))
    if old.get("parameter_order") != new.get("parameter_order") and set(old_params) == set(
            new_params):
        found.append(f"parameter order {old['parameter_order']} -> {new['parameter_order']}")
    for key in sorted((set(old) | set(new)) - {"parameters", "parameter_order"}):
        if old.get(key) != new.get(key):
            found.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    return found


def _list(values: list[Any]) -> str:
    return ", ".join(map(str, values))


def refusal(old: dict[str, Any], new: dict[str, Any], config: Config) -> str:
    return (f"{config.path}: the search definition changed since the experiment started: "
            f"{'; '.join(differences(old, new))}; only adding candidate values continues an "
            f"experiment: give this one another experiment.name or work_dir, or "
            f"`start --fresh` (the old state is archived)")


def apply(s: Session, exp: Experiment, mapping: IndexMap, config: Config, fingerprint: str, *,
          at: datetime) -> str:
    """Continue ``exp`` on the extended grid (see the module docstring); the event message."""
    master = queries.master_info(s, exp)
    if master is not None and master["alive"]:
        raise ExtensionRefused(f"a master (pid {master['pid']} on {master['host']}) runs the "
                               "experiment: stop it before extending the grid")
    active = s.execute(select(func.count()).select_from(Attempt).where(
        Attempt.experiment_id == exp.id, Attempt.state.in_(AttemptState.ACTIVE))).scalar_one()
    if active:
        raise ExtensionRefused(f"{active} jobs of the experiment are in flight: let them end "
                               "(start with the old config) before extending the grid")
    extensions = s.execute(select(func.count()).select_from(Event).where(
        Event.experiment_id == exp.id, Event.kind == "extended")).scalar_one()
    stages = s.execute(select(func.max(Stage.number)).where(
        Stage.experiment_id == exp.id)).scalar() or 0
    trials = config.work_dir / "trials"
    archive = trials / f"before-extension-{extensions + 1}"
    _move_run_dirs(trials, archive)
    for attempt in s.execute(select(Attempt).where(Attempt.experiment_id == exp.id,
                                                   Attempt.point_id.is_not(None))).scalars():
        attempt.run_dir = _moved(attempt.run_dir, trials, archive)
    _rekey(s, exp, mapping)
    ledger.rewind_journal(s, exp.id)      # a new grid: the search starts over, reusing points
    message = "grid extended: " + "; ".join(differences(exp.definition, config.search_definition()))
    exp.definition, exp.fingerprint = config.search_definition(), fingerprint
    exp.instance = uuid.uuid4().hex[:8]
    if exp.state == ExperimentState.FINISHED:
        ledger.set_experiment_state(s, exp.id, ExperimentState.RUNNING, at=at)
    ledger.add_event(s, exp.id, "extended", f"{message}; every measured point kept",
                     {"run_dirs": str(archive), "stages_before": stages}, at=at)
    return message


def stages_before(s: Session, experiment_id: int) -> int:
    """Stages recorded before the latest grid extension: the search, begun again on the new
    grid, numbers its stages on from there (0 without an extension)."""
    data = s.execute(select(Event.data).where(
        Event.experiment_id == experiment_id, Event.kind == "extended")
        .order_by(Event.id.desc()).limit(1)).scalar()
    return int((data or {}).get("stages_before", 0))


def _move_run_dirs(trials: Path, archive: Path) -> None:
    """Point run directories (``p*``) out of the way; a repeat after a crash moves the rest."""
    if not trials.is_dir():
        return
    for entry in sorted(trials.iterdir()):
        if entry.is_dir() and entry.name.startswith("p"):
            archive.mkdir(mode=0o700, exist_ok=True)
            shutil.move(str(entry), str(archive / entry.name))


def _moved(run_dir: str, trials: Path, archive: Path) -> str:
    path = Path(run_dir)
    try:
        relative = path.relative_to(trials)
    except ValueError:
        return run_dir                     # already moved (or outside): leave it
    if relative.parts and relative.parts[0].startswith("p"):
        return str(archive / relative)
    return run_dir


def _rekey(s: Session, exp: Experiment, mapping: IndexMap) -> None:
    def moved(index: Sequence[int]) -> list[int]:
        return [mapping[d][i] for d, i in enumerate(index)]

    def new_index(index: Sequence[int] | None) -> list[int] | None:
        return None if index is None else moved(index)
    points = s.execute(select(Point).where(Point.experiment_id == exp.id)).scalars().all()
    for point in points:                    # via temporary keys: old and new keys overlap
        point.key = "~" + point.key
    s.flush()
    for point in points:
        point.key = point_key(moved(parse_point_key(point.key[1:])))
        point.round = None
        if point.evaluation is not None:
            point.origin = Origin.KNOWN
        else:                               # revived if the rebuilt search asks for it
            point.state = PointState.CANCELLED
    for stage in s.execute(select(Stage).where(Stage.experiment_id == exp.id)).scalars():
        stage.base, stage.best = new_index(stage.base), new_index(stage.best)
        stage.points = [new_index(p) for p in stage.points]
