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
writes its message into: its calls are made one at a time on one long-lived worker thread,
whichever adapter or thread asks for them (a thread per call cost 7.7 ms a call beside a busy
thread, see docs/drmaa.md).
"""
from __future__ import annotations

import ctypes
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from .base import SchedulerMisconfigured, SchedulerUnavailable

T = TypeVar("T")

LIBSTDCXX = "libstdc++.so.6"

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


@dataclass
class _Call:
    """One libdrmaa call handed to the worker, and what came of it."""

    call: Callable[..., Any]
    args: tuple[Any, ...]
    done: threading.Event = field(default_factory=threading.Event)
    claim: threading.Lock = field(default_factory=threading.Lock)   # started xor given up
    started: bool = False
    given_up: bool = False
    value: Any = None
    error: BaseException | None = None


class _Worker:
    """A daemon thread that makes the queued calls in turn. A call whose caller gave up before
    its turn is skipped."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="drmaa-worker", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            item = self.calls.get()
            with item.claim:
                if item.given_up:
                    continue
                item.started = True
            try:
                item.value = item.call(*item.args)
            except BaseException as exc:  # handed to the caller's thread
                item.error = exc
            item.done.set()


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def _the_worker() -> _Worker:
    """The process's worker, started on first use (and again in a forked child, where the
    parent's thread does not exist)."""
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.thread.is_alive():
            _worker = _Worker()
        return _worker


def _forget_worker_in_child() -> None:
    global _worker, _worker_lock
    _worker, _worker_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_worker_in_child)


def call_with_timeout(what: str, call: Callable[..., T], *args: Any, timeout_s: float) -> T:
    """``call(*args)`` (libdrmaa calls only) on the one libdrmaa worker thread, after the calls
    queued before it.

    libdrmaa has no timeout of its own: a hung qmaster would hang the caller. Past ``timeout_s``
    the caller gets SchedulerUnavailable. A call that has not started by then is never made:
    nobody waits for its answer any more (a submit queued behind a hung one would go in unseen,
    besides the one its caller retries). One that has started runs to its end on the worker,
    and the calls queued behind it wait for it, so calls stay one at a time.
    """
    item = _Call(call, args)
    _the_worker().calls.put(item)
    if not item.done.wait(timeout_s):
        with item.claim:
            item.given_up = not item.started
        if not item.done.is_set():
            raise SchedulerUnavailable(f"DRMAA {what} did not answer within {timeout_s:g} s")
    if item.error is not None:
        raise item.error
    value: T = item.value
    return value


def one_line(exc: BaseException) -> str:
    """A libdrmaa error's message on one line (SGE's run over several)."""
    return " ".join(str(exc).split()) or type(exc).__name__
