"""The libdrmaa call worker without Grid Engine: plain Python callables stand in for the calls
(what is tested is the hand-over: one long-lived thread, one call at a time, a call given up
before its turn never made, a caller timed out by a hung call). The hung qmaster itself is in
test_drmaa_sge.py."""
from __future__ import annotations

import os
import threading
import time

import pytest

from scheduler_adapters.base import SchedulerUnavailable
from scheduler_adapters.libdrmaa import call_with_timeout


def on_worker(what: str = "call") -> threading.Thread:
    return call_with_timeout(what, threading.current_thread, timeout_s=10)


def test_every_call_runs_on_one_long_lived_worker_thread():
    threads = {on_worker() for _ in range(50)}
    assert len(threads) == 1
    [worker] = threads
    assert worker is not threading.current_thread() and worker.daemon and worker.is_alive()


def test_an_error_of_the_call_reaches_the_caller():
    def fails() -> None:
        raise ValueError("from libdrmaa")
    with pytest.raises(ValueError, match="from libdrmaa"):
        call_with_timeout("fails", fails, timeout_s=10)
    on_worker()                                        # the worker lives on


def test_a_hung_call_times_out_its_caller_and_a_call_given_up_behind_it_is_never_made():
    release, made, running = threading.Event(), [], []

    def hangs() -> str:
        running.append(time.monotonic())
        release.wait(30)
        made.append("hung")
        return "late"

    started = time.monotonic()
    with pytest.raises(SchedulerUnavailable, match="DRMAA runJob did not answer within 0.3 s"):
        call_with_timeout("runJob", hangs, timeout_s=0.3)
    with pytest.raises(SchedulerUnavailable, match="DRMAA queued did not answer"):
        call_with_timeout("queued", made.append, "queued", timeout_s=0.3)
    assert time.monotonic() - started < 5 and running
    release.set()
    assert on_worker("after") is not threading.current_thread()    # runs after the hung one
    assert made == ["hung"]                            # the given-up call was never made


def test_calls_from_many_threads_go_one_at_a_time():
    inside, most = [0], [0]
    lock = threading.Lock()

    def one() -> None:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.002)
        with lock:
            inside[0] -= 1

    callers = [threading.Thread(target=lambda: [call_with_timeout("one", one, timeout_s=30)
                                                for _ in range(10)]) for _ in range(8)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(60)
    assert most == [1]


def test_a_forked_child_gets_a_worker_of_its_own():
    on_worker()                                        # the parent's worker exists
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:                                       # the child: the parent's thread is gone
        try:
            worker = on_worker()
            os.write(write_end, b"ok" if worker.is_alive() else b"dead")
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    assert answer == b"ok"
