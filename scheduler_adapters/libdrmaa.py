"""Loading libdrmaa (through the ``drmaa`` package) without breaking the rest of the process,
and calling it one call at a time, each with a time limit.

Son of Grid Engine's libdrmaa (Debian's ``gridengine-drmaa``) links libjemalloc, and jemalloc
defines C++ ``operator new``/``operator delete``. The ``drmaa`` package loads libdrmaa with
RTLD_GLOBAL, so jemalloc joins the global symbol scope. libstdc++ is not in that scope (Python
itself is C; extension modules load it RTLD_LOCAL), so from then on every C++ extension module
loaded later (scipy.optimize's HiGHS, imported by scipy.stats for the search's first step) and
a libstdc++ loaded for the first time bind ``operator new``/``delete`` to jemalloc, while
``malloc``/``free`` stay glibc's. Memory allocated by one and released by the other aborts the
process ("free(): invalid pointer", "double free or corruption").

Putting libstdc++ into the global scope first keeps its operators ahead of jemalloc's, so C++
code keeps using the allocator it was built with, and jemalloc, which libdrmaa itself never
calls (glibc's ``malloc`` comes first in the scope), stays idle.

libdrmaa is one per process, and so is the ``drmaa`` package's error buffer that every call
writes its message into: its calls are serialised on one lock, whichever adapter or thread
makes them.
"""
from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from .base import SchedulerMisconfigured, SchedulerUnavailable

T = TypeVar("T")

LIBSTDCXX = "libstdc++.so.6"

_ONE_CALL_AT_A_TIME = threading.Lock()


def load_drmaa() -> ModuleType:
    """The ``drmaa`` module, libdrmaa loaded; a clear SchedulerMisconfigured when it cannot be."""
    _pin_cxx_allocator()
    try:
        # loads libdrmaa, so only when a session is needed; the package ships no type hints
        import drmaa  # type: ignore[import-untyped]
    except ImportError as exc:
        raise SchedulerMisconfigured(f"the drmaa package is not installed: {exc}") from None
    except (OSError, RuntimeError) as exc:
        raise SchedulerMisconfigured(
            f"libdrmaa could not be loaded (set DRMAA_LIBRARY_PATH, SGE_ROOT and, for the static TLS "
            f"error, GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096): {one_line(exc)}") from None
    module: ModuleType = drmaa
    return module


def _pin_cxx_allocator() -> None:
    """Put libstdc++ in the global symbol scope (again: harmless) before libdrmaa can add
    jemalloc's C++ operators to it; dlopen promotes a library already loaded RTLD_LOCAL."""
    try:
        ctypes.CDLL(LIBSTDCXX, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        pass   # no GNU libstdc++ here (another C++ runtime): nothing of it to protect


def call_with_timeout(what: str, call: Callable[..., T], *args: Any, timeout_s: float) -> T:
    """``call(*args)`` (libdrmaa calls only), in a worker thread, when no other is running.

    libdrmaa has no timeout of its own: a hung qmaster would hang the caller. Past ``timeout_s``
    the caller gets SchedulerUnavailable and the worker is abandoned. An abandoned worker that
    has not started its call by then never makes it: nobody waits for its answer any more (a
    submit queued behind a hung one would go in unseen, besides the one its caller retries).
    """
    outcome: dict[str, Any] = {}
    given_up = threading.Event()

    def target() -> None:
        with _ONE_CALL_AT_A_TIME:
            if given_up.is_set():
                return
            try:
                outcome["value"] = call(*args)
            except BaseException as exc:  # handed to the caller's thread below
                outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"drmaa-{what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        given_up.set()
        raise SchedulerUnavailable(f"DRMAA {what} did not answer within {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def one_line(exc: BaseException) -> str:
    """A libdrmaa error's message on one line (SGE's run over several)."""
    return " ".join(str(exc).split()) or type(exc).__name__
