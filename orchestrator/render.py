"""Human output: aligned tables that fit 100 columns, key/value blocks, durations."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

WIDTH = 100


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return " ".join(f"{k}={cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, width: int = WIDTH) -> str:
    """Columns as given; the widest column is cut with an ellipsis until the table fits."""
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    while sum(widths) + 2 * (len(widths) - 1) > width and max(widths) > 8:
        widths[widths.index(max(widths))] -= 1
    lines = ["  ".join(fit(c.upper(), w).ljust(w) for c, w in zip(columns, widths)).rstrip()]
    for row in cells:
        lines.append("  ".join(fit(v, w).ljust(w) for v, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def block(pairs: Sequence[tuple[str, Any]], *, width: int = WIDTH) -> str:
    """``key  value`` lines, values cut with an ellipsis to fit the width."""
    key_width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(key_width)}  {fit(cell(v), width - key_width - 2)}"
                     for k, v in pairs)


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


def counts(by_state: dict[str, int]) -> str:
    """``done 140, active 4`` (largest first), or ``-``."""
    if not by_state:
        return "-"
    ranked = sorted(by_state.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {v}" for k, v in ranked)
