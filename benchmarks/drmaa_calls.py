"""What one libdrmaa call costs through ``call_with_timeout`` against the same call made in the
caller's thread (Grid Engine with DRMAA must be running: ``eval "$(cat /tmp/sge.env)"``).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/drmaa_calls.py [--calls 2000]``. A session is
opened, then ``--calls`` times ``Session.contact`` (a call into libdrmaa that does not reach
qmaster, so what is measured is the hand-over, not the cluster) both ways, once with the
process otherwise idle and once beside a thread that keeps the GIL busy (as the master's search
step does); printed: the median and the 95th percentile per call. Numbers go into docs/drmaa.md
("A hung qmaster").
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

from scheduler_adapters.libdrmaa import call_with_timeout, load_drmaa


def timed(call: Callable[[], object], calls: int) -> list[float]:
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def report(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return (f"{label:<28} median {statistics.median(ordered) * 1e3:.3f} ms, "
            f"p95 {p95 * 1e3:.3f} ms ({len(ordered)} calls)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    drmaa = load_drmaa()

    def contact() -> str:
        return str(drmaa.Session.contact)

    def through_worker() -> str:
        return call_with_timeout("contact", contact, timeout_s=60)

    call_with_timeout("initialize", drmaa.Session.initialize, timeout_s=60)
    try:
        for beside in ("idle", "busy"):
            with busy_thread(beside == "busy"):
                print(report(f"{beside}: same thread", timed(contact, args.calls)))
                print(report(f"{beside}: call_with_timeout", timed(through_worker, args.calls)))
    finally:
        call_with_timeout("exit", drmaa.Session.exit, timeout_s=60)
    return 0


class busy_thread:
    """A pure-Python loop in another thread while the block runs (when ``on``)."""

    def __init__(self, on: bool) -> None:
        self.on, self.stop = on, threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1

    def __enter__(self) -> None:
        if self.on:
            self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.on:
            self.thread.join()


if __name__ == "__main__":
    raise SystemExit(main())
