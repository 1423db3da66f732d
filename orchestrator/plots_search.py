"""PNG plots of the search space (``orchestrator plot``): a slice per parameter, the DSICE path
and parallel coordinates, drawn with matplotlib's Agg backend from ``search_view.search_data``.
Like ``plots``, matplotlib is optional and imported only when a plot is asked for."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from . import plots

FILES = ("slice.png", "dsice_path.png", "parallel.png")
BASE_COLOUR = "black"
LINE_SEARCH_COLOUR = "#1f77b4"
OTHER_POINT_COLOUR = "#b0b0b0"
MAX_TICKS = 9
PANELS_PER_ROW = 3


def write_all(data: dict[str, Any], out_dir: Path) -> list[Path]:
    return plots.save_figures(out_dir, [(name, plots.bound(draw, data))
                                        for name, draw in zip(FILES, (slices, dsice_path,
                                                                      parallel))])


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _wants_log(values: list[float]) -> bool:
    """Values spanning more than three decades read better on a log scale (a bowl's best end)."""
    positive = [v for v in values if v > 0]
    return bool(values) and len(positive) == len(values) and max(positive) / min(positive) > 1e3


def _log_candidates(values: list[float]) -> bool:
    """Candidates spanning two decades or more (a learning rate) are spread on a log axis."""
    return all(v > 0 for v in values) and max(values) / min(values) >= 100


def _thin(n: int) -> list[int]:
    """Which of n ticks to label so that at most MAX_TICKS show."""
    step = max(1, math.ceil(n / MAX_TICKS))
    return list(range(0, n, step))


def _label(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _value_axis(ax: Any, data: dict[str, Any], values: list[float], labelled: bool) -> None:
    if _wants_log(values):
        ax.set_yscale("log")
    if labelled:                 # the first panel of each row: the others share its meaning
        ax.set_ylabel(data["objective"])


def _failed_on_edge(ax: Any, xs: list[float]) -> None:
    """Failed points have no value: crosses on the lower edge, at their x (inside the axes)."""
    if xs:
        ax.scatter(xs, [0.03] * len(xs), transform=ax.get_xaxis_transform(), marker="x",
                   color=plots.FAILED_STATES_COLOUR, s=22, label="failed point", clip_on=False)


def _grid_of_axes(plt: Any, count: int, per_row: int = PANELS_PER_ROW, size: tuple[float, float] = (4.0, 3.3)
                  ) -> tuple[Any, list[Any]]:
    cols = min(per_row, max(1, count))
    rows = math.ceil(max(1, count) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols + 1.2, size[1] * rows + 0.6),
                             squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _slice_x(e: dict[str, Any], name: str, candidates: list[Any]) -> float:
    """Numbers at their value, anything else at its position in the candidate list."""
    value = e["params"][name]
    return float(value) if _numeric(candidates) else float(candidates.index(value))


def slices(plt: Any, data: dict[str, Any]) -> Any:
    """Objective against each parameter, coloured by the order in which values were recorded."""
    names = data["parameters"]
    fig, axes = _grid_of_axes(plt, len(names))
    evs = data["evaluations"]
    ok = [e for e in evs if e["value"] is not None]
    values = [e["value"] for e in ok]
    scatter = None
    per_row = min(PANELS_PER_ROW, len(names))
    for k, (ax, name) in enumerate(zip(axes, names)):
        candidates = data["candidates"][name]
        numeric = _numeric(candidates)
        if ok:
            scatter = ax.scatter([_slice_x(e, name, candidates) for e in ok], values,
                                 c=[e["order"] for e in ok], cmap="viridis", s=18, alpha=0.8,
                                 vmin=1, vmax=len(evs))
            _value_axis(ax, data, values, labelled=k % per_row == 0)
        _failed_on_edge(ax, [_slice_x(e, name, candidates) for e in evs if e["value"] is None])
        if numeric:
            if _log_candidates([float(c) for c in candidates]):
                ax.set_xscale("log")
            lo, hi = min(candidates), max(candidates)
            pad = (hi - lo) * 0.05 or 0.5
            if ax.get_xscale() == "log":
                ax.set_xlim(lo / 1.3, hi * 1.3)
            else:
                ax.set_xlim(lo - pad, hi + pad)
        else:
            ax.set_xticks(range(len(candidates)), [str(c) for c in candidates])
            ax.set_xlim(-0.5, len(candidates) - 0.5)
        ax.set_xlabel(name)
    if scatter is not None:
        fig.colorbar(scatter, ax=axes, label="evaluation (in the order recorded)", shrink=0.9)
    elif axes:
        axes[0].text(0.5, 0.5, "no value yet", ha="center", transform=axes[0].transAxes)
    fig.suptitle(f"{data['experiment']}: {data['objective']} against each parameter "
                 f"({len(ok)} values, {len(evs) - len(ok)} failed)")
    return fig


def _on_line(point: list[int], base: list[int], axis: int) -> bool:
    """A point of a line search along ``axis``: it differs from the base there and only there."""
    return all((p == b) != (k == axis) for k, (p, b) in enumerate(zip(point, base)))


def dsice_path(plt: Any, data: dict[str, Any]) -> Any:
    """Per parameter: the base point of each stage (line) and the points that stage measured
    (blue: its line search along this parameter; grey: the others)."""
    names = data["parameters"]
    stages = [st for st in data["stages"] if st["base"] is not None]
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 1.9 * len(names) + 1.2), sharex=True,
                             squeeze=False)
    numbers = [st["number"] for st in stages]
    for k, (ax, name) in enumerate(zip((row[0] for row in axes), names)):
        candidates = data["candidates"][name]
        line_x: list[Any] = []
        line_y: list[Any] = []
        other_x: list[Any] = []
        other_y: list[Any] = []
        for st in stages:
            for p in st["points"]:
                on = _on_line(p, st["base"], k)
                (line_x if on else other_x).append(st["number"])
                (line_y if on else other_y).append(p[k])
        ax.scatter(other_x, other_y, s=10, color=OTHER_POINT_COLOUR,
                   label="other points of the stage")
        ax.scatter(line_x, line_y, s=22, color=LINE_SEARCH_COLOUR,
                   label="line search along this parameter")
        ax.plot(numbers, [st["base"][k] for st in stages], marker="o", color=BASE_COLOUR,
                linewidth=1.6, label="base point")
        if stages and stages[-1]["best"] is not None:
            ax.scatter([numbers[-1]], [stages[-1]["best"][k]], marker="*", s=160,
                       color="#ffbf00", edgecolor="black", zorder=5, label="best")
        ticks = _thin(len(candidates))
        ax.set_yticks(ticks, [_label(candidates[i]) for i in ticks])
        ax.set_ylim(-0.5, len(candidates) - 0.5)
        ax.set_ylabel(name)
    last = axes[-1][0]
    last.set_xlabel("stage")
    if stages:
        last.set_xticks(numbers)
        last.set_xlim(numbers[0] - 0.5, numbers[-1] + 0.5)
        axes[0][0].legend(loc="upper center", bbox_to_anchor=(0.5, 1.45), ncol=4,
                          fontsize="small", frameon=False)
    else:
        axes[0][0].text(0.5, 0.5, "no stage finished yet (only DSICE records stages)",
                        ha="center", transform=axes[0][0].transAxes)
    fig.suptitle(f"{data['experiment']}: DSICE path ({len(stages)} stages)")
    fig.tight_layout()
    return fig


def _positions(data: dict[str, Any], e: dict[str, Any], low: float, high: float,
               log: bool) -> list[float]:
    """An evaluation's place on every axis, 0..1: a parameter by its candidate's position,
    the objective between the lowest and the highest value."""
    out = []
    for name in data["parameters"]:
        n = len(data["candidates"][name])
        out.append(0.5 if n == 1 else data["candidates"][name].index(e["params"][name]) / (n - 1))
    v = e["value"]
    if log:
        v, low, high = math.log10(v), math.log10(low), math.log10(high)
    out.append(0.5 if high == low else (v - low) / (high - low))
    return out


def parallel(plt: Any, data: dict[str, Any]) -> Any:
    """One line per measured point through every parameter axis and the objective; the better
    the value, the brighter the line and the later it is drawn (the best lie on top)."""
    from matplotlib.collections import LineCollection
    names = data["parameters"]
    ok = [e for e in data["evaluations"] if e["value"] is not None]
    fig, ax = plt.subplots(figsize=(max(7.0, 1.8 * (len(names) + 1)), 4.8))
    axis_x = list(range(len(names) + 1))
    if ok:
        values = [e["value"] for e in ok]
        low, high, log = min(values), max(values), _wants_log(values)
        worst_first = sorted(ok, key=lambda e: e["value"], reverse=data["minimize"])
        lines = [list(zip(axis_x, _positions(data, e, low, high, log))) for e in worst_first]
        ranks = [i / max(1, len(lines) - 1) for i in range(len(lines))]
        coll = LineCollection(lines, array=ranks, cmap="viridis", linewidths=1.1, alpha=0.7)
        ax.add_collection(coll)
        for x, name in enumerate(names):
            candidates = data["candidates"][name]
            n = len(candidates)
            for i in _thin(n):
                ax.text(x, 0.5 if n == 1 else i / (n - 1), " " + _label(candidates[i]),
                        fontsize=7, va="center")
        for frac in (0.0, 0.5, 1.0):
            value = (10 ** (math.log10(low) + frac * (math.log10(high) - math.log10(low)))
                     if log else low + frac * (high - low))
            ax.text(len(names), frac, f" {value:.4g}", fontsize=7, va="center")
    else:
        ax.text(0.5, 0.5, "no value yet", ha="center", transform=ax.transAxes)
    for x in axis_x:
        ax.axvline(x, color="black", linewidth=0.8)
    ax.set_xticks(axis_x, [*names, data["objective"]])
    ax.set_xlim(-0.2, len(names) + 0.5)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    failed = len(data["evaluations"]) - len(ok)
    note = f"; {failed} failed points have no line" if failed else ""
    ax.set_title(f"{data['experiment']}: parallel coordinates\n"
                 f"{len(ok)} values, the best brightest{note}", fontsize="medium")
    fig.tight_layout()
    return fig
