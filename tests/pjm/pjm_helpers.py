"""Helpers shared by the PJM tests."""
from __future__ import annotations

from typing import Any

from scheduler_adapters.emulators.pjm import PJMEmulator

from ..adapters.helpers import poll


def wait_state(pjm: PJMEmulator, jid: str, states: tuple[str, ...],
               timeout: float = 15.0) -> dict[str, Any]:
    """Wait until the emulator has the job in one of these PJM states; return its record."""
    def record() -> dict[str, Any] | None:
        job = pjm.jobs()[jid]
        return job if job["st"] in states else None
    return poll(record, timeout=timeout, what=f"job {jid} to reach {states}")
