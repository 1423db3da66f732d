"""``orchestrator.read``: an experiment's history for Python code (notebooks, analysis), from a
config file, a state database file or a SQLAlchemy URL, through the same short read-only read
as the CLI (safe while the master runs).

``History.records`` is a list of plain dicts, one per evaluated point in the order the outcomes
were recorded; ``History.to_dataframe()`` is the same as a pandas DataFrame, with a column per
parameter (``params_NAME``) and per metric (``metrics_KEY``) like Optuna's
``trials_dataframe``. pandas is optional: only ``to_dataframe`` needs it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import queries
from .errors import OrchestratorError
from .search_view import search_data

RECORD_FIELDS = ("number", "n", "value", "state", "params", "index", "stage", "level",
                 "job_id", "origin", "round", "failure", "metrics", "started_at", "recorded_at")


class PandasUnavailable(OrchestratorError):
    """``History.to_dataframe`` needs pandas."""


def _when(stamp: str | None) -> datetime | None:
    return None if stamp is None else datetime.fromisoformat(stamp)


@dataclass(frozen=True)
class History:
    """What an experiment has measured so far."""

    experiment: str
    state: str
    strategy: str | None
    objective: str
    direction: str
    parameters: tuple[str, ...]
    candidates: dict[str, list[Any]]
    records: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def best(self) -> dict[str, Any] | None:
        """The best measured record (the first recorded among equals), or None."""
        measured = [r for r in self.records if r["value"] is not None]
        if not measured:
            return None
        sign = 1.0 if self.direction == "minimize" else -1.0
        return min(measured, key=lambda r: (sign * r["value"], r["number"]))

    def to_dataframe(self) -> Any:
        try:
            import pandas
        except ImportError:
            raise PandasUnavailable("History.to_dataframe needs pandas: pip install pandas "
                                    "(History.records has the same data as dicts)") from None
        metric_keys = sorted({k for r in self.records for k in (r["metrics"] or {})})
        rows = []
        for r in self.records:
            row = {k: r[k] for k in RECORD_FIELDS if k not in ("params", "metrics", "index")}
            row["index"] = tuple(r["index"])
            row.update({f"params_{n}": r["params"][n] for n in self.parameters})
            row.update({f"metrics_{k}": (r["metrics"] or {}).get(k) for k in metric_keys})
            rows.append(row)
        columns = ["number", "n", "value", "state", *(f"params_{n}" for n in self.parameters),
                   "stage", "level", "job_id", "origin", "round", "failure", "index",
                   "started_at", "recorded_at", *(f"metrics_{k}" for k in metric_keys)]
        frame = pandas.DataFrame(rows, columns=columns)
        for column in ("started_at", "recorded_at"):
            frame[column] = pandas.to_datetime(frame[column], utc=True)
        return frame


def read(target: str | os.PathLike[str]) -> History:
    """The history of the experiment at ``target`` (config, state database file or URL)."""
    search = queries.query(os.fspath(target), search_data)
    records = [{"number": e["order"] - 1, "n": e["n"], "value": e["value"], "state": e["state"],
                "params": e["params"], "index": e["index"], "stage": e["stage"],
                "level": e["level"], "job_id": e["job_id"], "origin": e["origin"],
                "round": e["round"], "failure": e["failure"], "metrics": e["metrics"],
                "started_at": _when(e["started_at"]), "recorded_at": _when(e["recorded_at"])}
               for e in search["evaluations"]]
    return History(experiment=search["experiment"], state=search["state"],
                   strategy=search["strategy"], objective=search["objective"],
                   direction="minimize" if search["minimize"] else "maximize",
                   parameters=tuple(search["parameters"]), candidates=search["candidates"],
                   records=records)
