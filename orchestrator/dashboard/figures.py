"""The dashboard's charts as Plotly figure specifications (plain JSON-able dicts: ``data`` and
``layout``), built from the plain data of one read. The page hands them to plotly.js as they
are, so what is drawn is decided (and tested) here, not in JavaScript."""
from __future__ import annotations

from typing import Any

from .. import plots
from ..states import AttemptState

FAILED = plots.FAILED_STATES_COLOUR
RUNNING = plots.COLOURS[AttemptState.RUNNING]
OUTCOME_COLOURS: dict[str, str] = {**{str(k): v for k, v in plots.COLOURS.items()},
                                   AttemptState.FAILED: FAILED}
QUEUED = "queued"                 # a bar's part before the job started, not an attempt state
# A browser keeps up with a few thousand bars; older attempts are left out beyond that.
MAX_TIMELINE_BARS = 3000
MARGIN = {"l": 60, "r": 20, "t": 40, "b": 80}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    """Title at the left (the right holds plotly's tool bar), legend under the x axis title."""
    return {"title": {"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
            "margin": MARGIN, "height": 360,
            "legend": {"orientation": "h", "y": 0, "yref": "container", "yanchor": "bottom"},
            **extra}


def _wants_log(values: list[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(values) and len(positive) == len(values) and max(positive) / min(positive) > 1e3


def objective(plot: dict[str, Any]) -> dict[str, Any]:
    """Values in the order recorded, the best so far, failed points on the lower edge and the
    stage ends as dotted lines numbered by stage."""
    values = plot["values"]
    xs = list(range(1, len(values) + 1))
    ok = [(x, v) for x, v in zip(xs, values) if v is not None]
    failed = [x for x, v in zip(xs, values) if v is None]
    best_y: list[float] = []
    for _, v in ok:
        better = not best_y or (v < best_y[-1] if plot["minimize"] else v > best_y[-1])
        best_y.append(v if better else best_y[-1])
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "markers", "name": "evaluation", "x": [x for x, _ in ok],
         "y": [v for _, v in ok], "marker": {"size": 6, "opacity": 0.6}},
        {"type": "scatter", "mode": "lines", "name": "best so far", "x": [x for x, _ in ok],
         "y": best_y, "line": {"shape": "hv", "color": "black", "width": 2}},
        # On a second, hidden y axis from 0 to 1: always on the lower edge, whatever the values.
        {"type": "scatter", "mode": "markers", "name": "failed point", "x": failed,
         "y": [0.03] * len(failed), "yaxis": "y2",
         "marker": {"symbol": "x", "color": FAILED, "size": 8}}]
    shapes, notes = [], []
    for number, at in plot["stage_boundaries"]:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": at + 0.5,
                       "x1": at + 0.5, "y0": 0, "y1": 1,
                       "line": {"color": "grey", "dash": "dot", "width": 1}})
        notes.append({"xref": "x", "yref": "paper", "x": at + 0.5, "y": 1, "text": str(number),
                      "showarrow": False, "font": {"size": 9, "color": "grey"},
                      "xanchor": "left"})
    direction = "minimize" if plot["minimize"] else "maximize"
    return {"data": data, "layout": _layout(
        "objective per evaluation" + (" (dotted: stage ends)" if shapes else ""),
        xaxis={"title": {"text": "evaluation (in the order recorded)"},
               "range": [0.5, max(1, len(values)) + 0.5]},
        yaxis={"title": {"text": f"{plot['objective']} ({direction})"},
               "type": "log" if _wants_log([v for _, v in ok]) else "linear"},
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        shapes=shapes, annotations=notes)}


def _tick_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def dsice_path(search: dict[str, Any]) -> dict[str, Any]:
    """One panel per parameter: the base point of every stage (a line) and the points each
    stage measured along that parameter (its line search); y is the grid position, labelled
    with the parameter's values."""
    names = search["parameters"]
    stages = [st for st in search["stages"] if st["base"] is not None]
    numbers = [st["number"] for st in stages]
    gap = 0.06
    height = (1 - gap * (len(names) - 1)) / max(1, len(names))
    data: list[dict[str, Any]] = []
    layout = _layout(f"DSICE path ({len(stages)} stages finished)",
                     height=max(300, 130 * len(names) + 130),
                     xaxis={"title": {"text": "stage"}, "dtick": 1,
                            "anchor": f"y{len(names) if len(names) > 1 else ''}"})
    for k, name in enumerate(names):
        axis = "" if k == 0 else str(k + 1)
        candidates = search["candidates"][name]
        line_x, line_y = [], []
        for st in stages:
            for p in st["points"]:
                if all((a == b) != (i == k) for i, (a, b) in enumerate(zip(p, st["base"]))):
                    line_x.append(st["number"])
                    line_y.append(p[k])
        data.append({"type": "scatter", "mode": "markers", "x": line_x, "y": line_y,
                     "yaxis": f"y{axis}", "name": "line search", "legendgroup": "line",
                     "showlegend": k == 0, "marker": {"color": RUNNING, "size": 7}})
        data.append({"type": "scatter", "mode": "lines+markers", "x": numbers,
                     "y": [st["base"][k] for st in stages], "yaxis": f"y{axis}",
                     "name": "base point", "legendgroup": "base", "showlegend": k == 0,
                     "line": {"color": "black"}, "marker": {"size": 8}})
        top = 1 - k * (height + gap)
        step = max(1, -(-len(candidates) // 8))
        layout[f"yaxis{axis}"] = {
            "domain": [max(0.0, top - height), top], "title": {"text": name},
            "tickvals": list(range(0, len(candidates), step)),
            "ticktext": [_tick_text(candidates[i]) for i in range(0, len(candidates), step)],
            "range": [-0.5, len(candidates) - 0.5], "zeroline": False}
    if not stages:
        layout["annotations"] = [{"text": "no stage finished yet (only DSICE records stages)",
                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
                                  "showarrow": False}]
    return {"data": data, "layout": layout}


def timeline(plot: dict[str, Any]) -> dict[str, Any]:
    """One bar per attempt (grey while queued, then coloured by outcome), packed into rows so
    that the rows read like slots."""
    now = plot["now_s"] or 0.0
    jobs = [a for a in plot["attempts"] if a["submitted"] is not None or a["started"] is not None]
    left_out = max(0, len(jobs) - MAX_TIMELINE_BARS)
    jobs = jobs[left_out:]
    spans = [((a["submitted"] if a["submitted"] is not None else a["started"]),
              (a["ended"] if a["ended"] is not None else now)) for a in jobs]
    lanes = plots.pack_lanes(spans)
    groups: dict[str, dict[str, list[Any]]] = {}

    def bar(key: str, lane: int, start: float, end: float, label: str) -> None:
        g = groups.setdefault(key, {"y": [], "base": [], "x": [], "hovertext": []})
        g["y"].append(lane)
        g["base"].append(round(start, 3))
        g["x"].append(round(max(end - start, 0.0), 3))
        g["hovertext"].append(label)

    for a, (start, end), lane in zip(jobs, spans, lanes):
        run_from = a["started"] if a["started"] is not None else end
        if run_from > start:
            bar(QUEUED, lane, start, run_from, a["label"])
        if a["started"] is not None:
            bar(AttemptState.FAILED if a["failure"] else a["state"], lane, run_from, end,
                a["label"])
    data = [{"type": "bar", "orientation": "h", "name": str(key), **g,
             "hoverinfo": "text+name", "textposition": "none",
             "marker": {"color": plots.QUEUED_COLOUR if key == QUEUED
                        else OUTCOME_COLOURS.get(key, "#9467bd")},
             "width": 0.4 if key == QUEUED else 0.8} for key, g in groups.items()]
    note = f", the {left_out} oldest left out" if left_out else ""
    return {"data": data, "layout": _layout(
        f"job timeline ({len(jobs)} attempts{note})", barmode="overlay",
        height=min(600, max(280, 14 * (max(lanes, default=0) + 1) + 120)),
        xaxis={"title": {"text": "seconds since start"}},
        yaxis={"title": {"text": "row"}, "autorange": "reversed"})}


def slot_use(plot: dict[str, Any]) -> dict[str, Any]:
    """Jobs running (area) against the cap, and jobs queued in a panel of their own below."""
    times, running, queued = plots.busy_steps(plot["attempts"], plot["now_s"] or 0.0)
    times = [round(t, 3) for t in times]
    cap = plot["cap"]
    data = [
        {"type": "scatter", "mode": "lines", "name": "running", "x": times, "y": running,
         "fill": "tozeroy", "line": {"shape": "hv", "color": RUNNING}},
        {"type": "scatter", "mode": "lines", "name": f"cap {cap}", "x": [times[0], times[-1]],
         "y": [cap, cap], "line": {"color": "black", "dash": "dash", "width": 1}},
        {"type": "scatter", "mode": "lines", "name": "queued", "x": times, "y": queued,
         "yaxis": "y2", "fill": "tozeroy",
         "line": {"shape": "hv", "color": "dimgrey"}, "fillcolor": plots.QUEUED_COLOUR}]
    return {"data": data, "layout": _layout(
        "slot use", xaxis={"title": {"text": "seconds since start"}, "anchor": "y2"},
        yaxis={"domain": [0.38, 1], "title": {"text": "running"},
               "range": [0, max([cap, *running]) * 1.15 + 0.5]},
        yaxis2={"domain": [0, 0.28], "title": {"text": "queued"},
                "range": [0, max(queued) * 1.2 + 0.5]})}


def all_figures(plot: dict[str, Any], search: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"objective": objective(plot), "path": dsice_path(search),
            "timeline": timeline(plot), "slots": slot_use(plot)}
