"""orchestrator: auto-tune expensive programs on batch clusters with the DSICE search.

For Python code: ``orchestrator.read(CONFIG_OR_DB)`` returns an experiment's history
(``History.records``; ``History.to_dataframe()`` with pandas). See ``orchestrator.reader``.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .reader import History


def read(target: str | os.PathLike[str]) -> History:
    """The history of the experiment at ``target``: a config file, a state database file or a
    SQLAlchemy URL (read-only, safe while the master runs)."""
    # Loaded on use, so that `import orchestrator` (and every submodule import) stays light.
    from .reader import read as read_history
    return read_history(target)
