"""Read-only views of an experiment for the admin commands, the dashboard and the library.
Never writes, never blocks the master: reads go through a read-only connection, retry while
SQLite is busy, and each view is one short read whose result is plain data (formatting and
plotting happen after it closes).

``basics``: opening a read and the shared helpers; ``status``: what runs now; ``results``:
what was measured; ``timeline``: what the plots draw."""
from __future__ import annotations

from .basics import (
    ENDED,
    database_url_of,
    iso,
    master_info,
    minimizes,
    params_of,
    query,
)
from .results import best, export, history, stages, summary
from .status import events, progress, queue, status
from .timeline import plot_data

__all__ = ["ENDED", "best", "database_url_of", "events", "export", "history", "iso",
           "master_info", "minimizes", "params_of", "plot_data", "progress", "query", "queue",
           "stages", "status", "summary"]
