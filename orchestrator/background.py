"""Running a long step of the master (the search's tell and ask) so that the master stays alive.

A search step over a large space can take minutes (a d-Spline fit over many values, a replay
of thousands of rounds at start). Run in the master's own thread, it would stop the heartbeat,
so that another master takes the lease over as if this one were dead, and SIGTERM would wait
for it. So the step runs in a worker thread while the master's thread renews the lease and
watches for a stop. Asked to stop meanwhile, the master does not wait: it leaves the step
unfinished (``Interrupted``) and exits; every write is its own transaction and the search is
rebuilt by replay, so the next master simply does the step again.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from .faults import slow_point

WATCH_S = 0.05      # how often the waiting master looks for a stop request


class Interrupted(Exception):
    """The master was asked to stop while a step ran; the step is left to the next master."""


def run_keeping_lease(step: Callable[[], None], *, renew: Callable[[], None],
                      stopping: Callable[[], bool], renew_every: float) -> None:
    """Run ``step`` in a worker thread; meanwhile call ``renew`` every ``renew_every`` seconds.
    Re-raises what the step raised; Interrupted if ``stopping()`` turns true first."""
    done = threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            slow_point("search-step")
            step()
        except BaseException as exc:  # noqa: BLE001  (handed to the master's thread)
            failure.append(exc)
        finally:
            done.set()

    # A daemon: a master that stops while the step runs exits without waiting for it.
    threading.Thread(target=work, name="search-step", daemon=True).start()
    waited = 0.0
    while not done.wait(WATCH_S):
        if stopping():
            raise Interrupted
        waited += WATCH_S
        if waited >= renew_every:
            renew()
            waited = 0.0
    if failure:
        raise failure[0]
