"""Text for people: points, cells, aligned tables and key/value blocks cut to a width, durations.

A point (a dict of parameter values) is written the same way everywhere, by ``point``:
``x=1 lr=0.01 opt=true`` in the parameters' order, strings quoted only when they would be
ambiguous; a measured point by ``measured``: ``0.25 at x=1 lr=0.01``.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# A column is a row key, or a (heading, cell function) pair for a value derived from the row.
Column = str | tuple[str, Callable[[Mapping[str, Any]], Any]]
MIN_CUT_WIDTH = 8          # a column is never cut narrower than this
AMBIGUOUS = set(" \t=,\"'")


def number(value: float) -> str:
    return f"{value:.6g}"


def point_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"       # as written in the config (TOML)
    if isinstance(value, float):
        return number(value)
    if isinstance(value, str) and (not value or AMBIGUOUS & set(value)):
        return json.dumps(value)
    return str(value)


def point(params: Mapping[str, Any] | None) -> str:
    """``x=1 lr=0.01``: the one way a point is printed (status, best, history, progress)."""
    if params is None:
        return "-"
    return " ".join(f"{name}={point_value(v)}" for name, v in params.items())


def measured(params: Mapping[str, Any] | None, value: float | None) -> str:
    """``0.25 at x=1 lr=0.01``; ``x=1 lr=0.01 (not measured)`` before it has a value."""
    if params is None:
        return "-"
    if value is None:
        return f"{point(params)} (not measured)"
    return f"{number(value)} at {point(params)}"


def best(found: Mapping[str, Any] | None) -> str:
    """A summary's best point (``{"params": ..., "value": ...}``) as ``measured`` writes it;
    ``none`` before any success."""
    return "none" if found is None else measured(found["params"], found["value"])


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, dict):
        return point(value)
    if isinstance(value, (list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def fit(text: str, width: int | None) -> str:
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def heading(column: Column) -> str:
    return column if isinstance(column, str) else column[0]


def column_value(row: Mapping[str, Any], column: Column) -> Any:
    return row.get(column) if isinstance(column, str) else column[1](row)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *,
          width: int | None) -> str:
    """Columns as given; the widest column is cut with an ellipsis until the table fits
    ``width`` (None: nothing is cut)."""
    names = [heading(c) for c in columns]
    cells = [[cell(column_value(r, c)) for c in columns] for r in rows]
    widths = [max([len(n)] + [len(row[i]) for row in cells]) for i, n in enumerate(names)]
    if width is not None:
        while sum(widths) + 2 * (len(widths) - 1) > width and max(widths) > MIN_CUT_WIDTH:
            widths[widths.index(max(widths))] -= 1
    lines = ["  ".join(fit(n.upper(), w).ljust(w) for n, w in zip(names, widths)).rstrip()]
    for row in cells:
        lines.append("  ".join(fit(v, w).ljust(w) for v, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def block(pairs: Sequence[tuple[str, Any]], *, width: int | None) -> str:
    """``key  value`` lines, values cut with an ellipsis to fit ``width`` (None: not cut)."""
    key_width = max(len(k) for k, _ in pairs)
    value_width = None if width is None else max(MIN_CUT_WIDTH, width - key_width - 2)
    return "\n".join(f"{k.ljust(key_width)}  {fit(cell(v), value_width)}" for k, v in pairs)


def duration(seconds: float | None) -> str:
    """A span for people: ``42 s``, ``12 min 5 s``, ``3 h 20 min``."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def counts(by_state: Mapping[str, int]) -> str:
    """``done 140, active 4`` (largest first), or ``-``."""
    if not by_state:
        return "-"
    ranked = sorted(by_state.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {v}" for k, v in ranked)
