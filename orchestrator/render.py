"""Human output: aligned tables that fit 100 columns, and key/value blocks."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

WIDTH = 100


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return " ".join(f"{k}={cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, width: int = WIDTH) -> str:
    """Columns as given; the widest column is cut with an ellipsis until the table fits."""
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    while sum(widths) + 2 * (len(widths) - 1) > width and max(widths) > 8:
        widths[widths.index(max(widths))] -= 1
    def fit(text: str, w: int) -> str:
        return text if len(text) <= w else text[: w - 1] + "…"
    lines = ["  ".join(fit(c.upper(), w).ljust(w) for c, w in zip(columns, widths)).rstrip()]
    for row in cells:
        lines.append("  ".join(fit(v, w).ljust(w) for v, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def block(pairs: Sequence[tuple[str, Any]]) -> str:
    key_width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(key_width)}  {cell(v)}" for k, v in pairs)
