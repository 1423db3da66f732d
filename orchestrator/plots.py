"""The three PNG plots of an experiment (``orchestrator plot``), drawn with matplotlib's Agg
backend from the plain data of ``queries.plot_data``. matplotlib is optional (``.[plot]``):
it is imported only here, when a plot is asked for."""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import CannotWrite, PlotUnavailable
from .states import AttemptState

FILES = ("objective.png", "timeline.png", "utilisation.png")
FAILED_STATES_COLOUR = "#d62728"
COLOURS = {AttemptState.SUCCEEDED: "#2ca02c", AttemptState.RUNNING: "#1f77b4",
           AttemptState.CANCELLED: "#ff7f0e"}
QUEUED_COLOUR = "#c7c7c7"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable("plot needs matplotlib, a dependency of dsice-orchestrator: "
                              "pip install matplotlib (or reinstall: pip install -e .)") from None
    matplotlib.use("Agg")          # files only: no display needed, safe under cron
    import matplotlib.pyplot as plt
    return plt


def write_all(data: dict[str, Any], out_dir: Path) -> list[Path]:
    return save_figures(out_dir, [(name, bound(draw, data))
                                  for name, draw in zip(FILES, (objective, timeline, utilisation))])


def bound(draw: Callable[[Any, dict[str, Any]], Any], data: dict[str, Any]
          ) -> Callable[[Any], Any]:
    """``draw`` with its data given: what ``save_figures`` calls with pyplot."""
    return lambda plt: draw(plt, data)


def save_figures(out_dir: Path, drawers: list[tuple[str, Callable[[Any], Any]]]) -> list[Path]:
    """Draw each figure (a function of pyplot) and save it as ``out_dir/name``."""
    plt = _pyplot()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CannotWrite(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    paths = []
    for name, draw in drawers:
        fig = draw(plt)
        path = out_dir / name
        try:
            fig.savefig(path, dpi=110)
        except OSError as exc:
            raise CannotWrite(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            plt.close(fig)
        paths.append(path)
    return paths


def _time_unit(span_s: float) -> tuple[float, str]:
    if span_s > 3 * 3600:
        return 3600.0, "h"
    if span_s > 600:
        return 60.0, "min"
    return 1.0, "s"


def objective(plt: Any, data: dict[str, Any]) -> Any:
    """Each evaluation's value in the order recorded, the best so far, stage boundaries;
    failed points as red crosses on the lower edge."""
    from matplotlib.ticker import MaxNLocator
    fig, ax = plt.subplots(figsize=(9, 4.8))
    values = data["values"]
    xs = list(range(1, len(values) + 1))
    ok = [(x, v) for x, v in zip(xs, values) if v is not None]
    failed = [x for x, v in zip(xs, values) if v is None]
    better = (lambda a, b: a < b) if data["minimize"] else (lambda a, b: a > b)
    best_x, best_y, best = [], [], None
    for x, v in ok:
        if best is None or better(v, best):
            best = v
        best_x.append(x)
        best_y.append(best)
    if ok:
        ax.scatter([x for x, _ in ok], [v for _, v in ok], s=14, alpha=0.6, label="evaluation")
        ax.step(best_x, best_y, where="post", color="black", linewidth=1.6, label="best so far")
        positive = [v for _, v in ok if v > 0]
        if len(positive) == len(ok) and max(positive) / min(positive) > 1e3:
            ax.set_yscale("log")    # a bowl's values span decades; linear hides the good end
    if failed:
        ax.scatter(failed, [0.02] * len(failed), transform=ax.get_xaxis_transform(), marker="x",
                   color=FAILED_STATES_COLOUR, label="failed point")
    # Points drawn in axes coordinates do not take part in autoscaling: fix the x range to
    # every evaluation, or failures before the first value would fall outside the axes.
    ax.set_xlim(0.5 - 0.02 * len(values), len(values) + 0.5 + 0.02 * len(values))
    for i, (number, at) in enumerate(data["stage_boundaries"]):
        ax.axvline(at + 0.5, color="grey", linestyle=":", linewidth=1,
                   label="stage end" if i == 0 else None)
        ax.text(at + 0.5, 0.98, f" {number}", transform=ax.get_xaxis_transform(),
                fontsize=7, color="grey", va="top")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluation (in the order recorded)")
    ax.set_ylabel(data["objective"] + (" (minimize)" if data["minimize"] else " (maximize)"))
    ax.set_title(f"{data['experiment']}: objective per evaluation")
    if ok or failed:
        ax.legend(loc="best", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no evaluation yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def pack_lanes(spans: list[tuple[float, float]]) -> list[int]:
    """Pack intervals into as few rows as possible (greedy by start), so the chart reads like
    slots; returns each interval's row."""
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    ends: list[float] = []
    lane = [0] * len(spans)
    for i in order:
        start, end = spans[i]
        free = next((k for k, e in enumerate(ends) if e <= start), None)
        if free is None:
            ends.append(end)
            free = len(ends) - 1
        else:
            ends[free] = end
        lane[i] = free
    return lane


def timeline(plt: Any, data: dict[str, Any]) -> Any:
    """One bar per attempt from submission (grey: queued) through start to end (coloured by
    outcome); failed attempts red with a cross at their end."""
    now = data["now_s"] or 0.0
    jobs = [a for a in data["attempts"] if a["submitted"] is not None or a["started"] is not None]
    spans = [((a["submitted"] if a["submitted"] is not None else a["started"]),
              (a["ended"] if a["ended"] is not None else now)) for a in jobs]
    lanes = pack_lanes(spans)
    span = max([e for _, e in spans], default=now) or 1.0
    scale, unit = _time_unit(span)
    height = min(9.0, max(3.8, 0.18 * (max(lanes, default=0) + 1) + 1.8))
    from matplotlib.ticker import MaxNLocator
    fig, ax = plt.subplots(figsize=(9, height))
    seen: set[str] = set()
    for a, (start, end), lane in zip(jobs, spans, lanes):
        run_from = a["started"] if a["started"] is not None else end
        if run_from > start:
            ax.barh(lane, (run_from - start) / scale, left=start / scale, height=0.35,
                    color=QUEUED_COLOUR, label=None if "queued" in seen else "queued")
            seen.add("queued")
        if a["started"] is None:
            continue
        key = AttemptState.FAILED if a["failure"] else a["state"]
        colour = FAILED_STATES_COLOUR if a["failure"] else COLOURS.get(a["state"], "#9467bd")
        ax.barh(lane, max(end - run_from, 0.0) / scale, left=run_from / scale, height=0.7,
                color=colour, label=None if key in seen else key)
        seen.add(key)
        if a["failure"]:
            ax.plot(end / scale, lane, marker="x", color="black", markersize=5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"time since start ({unit})")
    ax.set_ylabel("row (attempts packed, one bar each)")
    ax.set_title(f"{data['experiment']}: job timeline ({len(jobs)} attempts)")
    if jobs:
        # Below the axes: every part of the chart may hold bars.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=5, fontsize="small",
                  frameon=False)
        ax.invert_yaxis()
    else:
        ax.text(0.5, 0.5, "no job submitted yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def busy_steps(attempts: list[dict[str, Any]], now: float
               ) -> tuple[list[float], list[int], list[int]]:
    """Times and the number of jobs running and queued (submitted, not started) from then on."""
    changes: list[tuple[float, int, int]] = []
    for a in attempts:
        end = a["ended"] if a["ended"] is not None else now
        if a["started"] is not None:
            changes += [(a["started"], 1, 0), (end, -1, 0)]
        if a["submitted"] is not None:
            queued_until = a["started"] if a["started"] is not None else end
            changes += [(a["submitted"], 0, 1), (queued_until, 0, -1)]
    changes.sort(key=lambda c: (c[0], c[1] + c[2]))
    times, running, queued = [0.0], [0], [0]
    r = q = 0
    for t, dr, dq in changes:
        r, q = r + dr, q + dq
        times.append(t)
        running.append(r)
        queued.append(q)
    times.append(max(now, times[-1]))
    running.append(r)
    queued.append(q)
    return times, running, queued


def utilisation(plt: Any, data: dict[str, Any]) -> Any:
    """Jobs running (area, against the cap) over time, and below it, on the same time axis,
    jobs queued at the scheduler; the title has the mean utilisation."""
    now = data["now_s"] or 0.0
    times, running, queued = busy_steps(data["attempts"], now)
    scale, unit = _time_unit(times[-1])
    fig, (ax, below) = plt.subplots(2, 1, figsize=(9, 5.2), sharex=True,
                                    gridspec_kw={"height_ratios": [3, 1.2]})
    xs = [t / scale for t in times]
    ax.fill_between(xs, running, step="post", alpha=0.55, color=COLOURS[AttemptState.RUNNING],
                    label="running")
    ax.axhline(data["cap"], color="black", linestyle="--", linewidth=1,
               label=f"cap {data['cap']}")
    busy = sum((t1 - t0) * r for t0, t1, r in zip(times, times[1:], running))
    mean = busy / (data["cap"] * now) if now > 0 else math.nan
    ax.set_ylim(0, max([data["cap"], *running]) * 1.15 + 0.5)
    ax.set_ylabel("jobs running")
    title = f"{data['experiment']}: slot utilisation"
    ax.set_title(title + ("" if math.isnan(mean) else f" (mean {mean:.0%} of the cap)"))
    ax.legend(loc="upper right", fontsize="small")
    below.fill_between(xs, queued, step="post", color=QUEUED_COLOUR, label="queued")
    below.step(xs, queued, where="post", color="dimgrey", linewidth=1)
    below.set_ylim(0, max(queued) * 1.2 + 0.5)
    below.set_ylabel("queued")
    below.set_xlabel(f"time since start ({unit})")
    fig.tight_layout()
    return fig
