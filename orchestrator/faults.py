"""Crash points for the chaos tests: the master kills itself with SIGKILL at a named place.

``ORCH_CRASH_AT=NAME:N`` makes the N-th passage through ``crash_point(NAME)`` fatal (or, with
``ORCH_CRASH_SIGNAL=SIGSTOP``, freezes the master there, as on a hung node). Unset (as in every
real deployment) it costs one environment lookup. ``slow_point`` makes a named place slow instead.
"""
from __future__ import annotations

import os
import signal
import time

_passages: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get("ORCH_CRASH_AT")
    if not spec:
        return
    target, _, count = spec.partition(":")
    if target != name:
        return
    _passages[name] = _passages.get(name, 0) + 1
    if _passages[name] == int(count or 1):
        os.kill(os.getpid(), signal.Signals[os.environ.get("ORCH_CRASH_SIGNAL", "SIGKILL")])


def slow_point(name: str) -> None:
    """``ORCH_SLOW_AT=NAME:SECONDS`` makes every passage through ``slow_point(NAME)`` take that
    long, as a search step over a large space would (for the tests of a master that keeps its
    lease and honours signals meanwhile)."""
    spec = os.environ.get("ORCH_SLOW_AT")
    if not spec:
        return
    target, _, seconds = spec.partition(":")
    if target == name:
        time.sleep(float(seconds))
