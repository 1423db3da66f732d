"""PJMScheduler against the PJM emulator: every ending, the faults, the polling budget."""
from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from scheduler_adapters.base import JobRejected, JobSpec, JobState, SchedulerUnavailable, SubmitLimitReached
from scheduler_adapters.emulators import BIN_DIR
from scheduler_adapters.emulators.pjm import PJMEmulator, process_alive
from scheduler_adapters.pjm import PJDEL_TRIES, PJMScheduler

from ..adapters.helpers import running, wait_until
from .pjm_helpers import wait_state

Spec = Callable[..., JobSpec]
SLEEP = ("sleep", "30")


def test_completed_job_ran_its_command_in_workdir(sched: PJMScheduler, make_spec: Spec) -> None:
    spec = make_spec("exp1-p1-a1", "sh", "-c", 'echo "$ORCH_TEST" > out.txt; echo to-stdout')
    jid = sched.submit(spec)
    status = wait_until(sched, [jid])[jid]
    assert (status.state, status.exit_code, status.reason) == (JobState.SUCCEEDED, 0, None)
    assert (spec.workdir / "out.txt").read_text() == "it's here\n"
    assert spec.stdout_path.read_text() == "to-stdout\n"
    assert sched.calls["pjsub"] == 1


def test_failed_exit_code(sched: PJMScheduler, make_spec: Spec) -> None:
    jid = sched.submit(make_spec("exp1-p2-a1", "sh", "-c", "echo bad >&2; exit 7"))
    status = wait_until(sched, [jid])[jid]
    assert (status.state, status.exit_code) == (JobState.FAILED, 7)
    assert "EC=7 PC=0" in (status.reason or "")


def test_cancel_running_job(sched: PJMScheduler, pjm: PJMEmulator, make_spec: Spec) -> None:
    jid = sched.submit(make_spec("exp1-p3-a1", *SLEEP))
    wait_until(sched, [jid], running)
    sched.cancel([jid])
    assert wait_until(sched, [jid])[jid].state is JobState.CANCELLED
    assert not process_alive(pjm.jobs()[jid]["pgid"])
    sched.cancel([jid])                       # idempotent: already gone is fine


def test_one_transient_pjdel_failure_is_retried(sched: PJMScheduler, pjm: PJMEmulator,
                                                 make_spec: Spec) -> None:
    jid = sched.submit(make_spec("exp1-p3-a3", *SLEEP))
    pjm.inject("pjdel_fail")
    sched.cancel([jid])
    assert sched.calls["pjdel"] == 2
    assert wait_until(sched, [jid])[jid].state is JobState.CANCELLED


def test_failing_pjdel_raises_unavailable(sched: PJMScheduler, pjm: PJMEmulator,
                                          make_spec: Spec) -> None:
    jid = sched.submit(make_spec("exp1-p3-a2", *SLEEP))
    pjm.inject("pjdel_fail", PJDEL_TRIES)
    with pytest.raises(SchedulerUnavailable, match="Cannot connect"):
        sched.cancel([jid, "4242"])
    assert sched.calls["pjdel"] == PJDEL_TRIES
    assert sched.status([jid])[jid].state in (JobState.PENDING, JobState.RUNNING)
    sched.cancel([jid, "4242"])               # the unknown id's [ERR.] line is no failure
    assert wait_until(sched, [jid])[jid].state is JobState.CANCELLED


def test_elapse_exceeded_is_timeout(sched: PJMScheduler, make_spec: Spec) -> None:
    jid = sched.submit(make_spec("exp1-p4-a1", *SLEEP, time_limit_s=1))
    status = wait_until(sched, [jid])[jid]
    assert status.state is JobState.TIMEOUT
    assert "PC=11" in (status.reason or "") and "ELAPSE LIMIT EXC" in (status.reason or "")


@pytest.mark.parametrize("end_state", ["EXT", "ERR"])
def test_node_failure(sched: PJMScheduler, pjm: PJMEmulator, make_spec: Spec,
                      end_state: str) -> None:
    pjm.configure(node_fail_state=end_state)
    jid = sched.submit(make_spec("exp1-p5-a1", *SLEEP))
    wait_state(pjm, jid, ("RUN",))
    pjm.node_fail(jid)
    status = wait_until(sched, [jid])[jid]
    assert status.state is JobState.NODE_FAIL and "PC=20" in (status.reason or "")
    if end_state == "ERR":                    # stays listed until deleted, then in history
        sched.cancel([jid])
        assert sched.status([jid])[jid].state is JobState.NODE_FAIL


def test_finished_job_is_found_in_history_then_expires(sched: PJMScheduler, pjm: PJMEmulator,
                                                        make_spec: Spec) -> None:
    jid = sched.submit(make_spec("exp1-p6-a1", "true"))
    wait_until(sched, [jid])
    sched.calls.clear()
    assert sched.status([jid])[jid].state is JobState.SUCCEEDED
    assert sched.calls["pjstat"] == 2           # live list, then history
    pjm.purge_history()
    status = sched.status([jid])[jid]
    assert status.state is JobState.UNKNOWN
    assert sched.status(["4242"])["4242"].state is JobState.UNKNOWN


def test_job_lingering_in_live_list_is_judged_there(sched: PJMScheduler, pjm: PJMEmulator,
                                                     make_spec: Spec) -> None:
    pjm.configure(linger_s=60)
    jid = sched.submit(make_spec("exp1-p7-a1", "sh", "-c", "exit 2"))
    wait_until(sched, [jid])
    sched.calls.clear()
    assert sched.status([jid])[jid].exit_code == 2
    assert sched.calls["pjstat"] == 1


@pytest.mark.parametrize("name_width", [10, None])
def test_flaky_submit_is_found_by_name(sched: PJMScheduler, pjm: PJMEmulator, make_spec: Spec,
                                       name_width: int | None) -> None:
    pjm.configure(choose_name_width=name_width)
    spec = make_spec("exp1-p0008-attempt1", *SLEEP)
    sibling = sched.submit(make_spec("exp1-p0008-attempt2", *SLEEP))   # same 10-char prefix
    pjm.inject("pjsub_submit_then_fail")
    with pytest.raises(SchedulerUnavailable, match="Cannot connect"):
        sched.submit(spec)
    sched.calls.clear()
    found = sched.find_by_name([spec.name, "exp1-p0008-attempt2", "never-submitted"])
    [jid] = [j for j, job in pjm.jobs().items() if job["name"] == spec.name]
    assert found == {spec.name: jid, "exp1-p0008-attempt2": sibling}
    # untruncated names need the two listings only; cut ones are confirmed by --filter
    assert sched.calls["pjstat"] == (2 if name_width is None else 4)
    assert sched.status([jid])[jid].state in (JobState.PENDING, JobState.RUNNING)
    assert sum(job["name"] == spec.name for job in pjm.jobs().values()) == 1


def test_failing_pjstat_raises_unavailable(sched: PJMScheduler, pjm: PJMEmulator,
                                           make_spec: Spec) -> None:
    jid = sched.submit(make_spec("exp1-p9-a1", "true"))
    pjm.inject("pjstat_fail")
    with pytest.raises(SchedulerUnavailable, match="PJM 0300"):
        sched.status([jid])
    assert wait_until(sched, [jid])[jid].state is JobState.SUCCEEDED


def test_failing_history_query_raises_unavailable(sched: PJMScheduler, pjm: PJMEmulator,
                                                  make_spec: Spec) -> None:
    jid = sched.submit(make_spec("exp1-p10-a1", "true"))
    wait_until(sched, [jid])
    pjm.inject("pjstat_history_fail")         # the live call works; no UNKNOWN is invented
    sched.calls.clear()
    with pytest.raises(SchedulerUnavailable):
        sched.status([jid])
    assert sched.calls["pjstat"] == 2


def test_submit_limit_reached(sched: PJMScheduler, pjm: PJMEmulator, make_spec: Spec) -> None:
    pjm.configure(submit_limit=2)
    for i in range(2):
        sched.submit(make_spec(f"exp1-p11-a{i}", *SLEEP))
    with pytest.raises(SubmitLimitReached, match="upper limit"):
        sched.submit(make_spec("exp1-p11-a9", *SLEEP))


def test_error_text_with_exit_zero_is_an_error(sched: PJMScheduler, pjm: PJMEmulator,
                                               make_spec: Spec) -> None:
    pjm.inject("pjsub_error_rc0")
    with pytest.raises(JobRejected, match=r"rc 0\).*Staging option error"):
        sched.submit(make_spec("exp1-p12-a1", "true"))
    assert pjm.jobs() == {}


def test_rejected_resources(pjm: PJMEmulator, make_spec: Spec) -> None:
    sched = PJMScheduler(rscgrp="cx-share", gpus=4, commands_dir=BIN_DIR)
    with pytest.raises(JobRejected, match="gpu=4 is greater than the upper limit"):
        sched.submit(make_spec("exp1-p13-a1", "true"))


def test_fifty_jobs_polled_with_two_calls(sched: PJMScheduler, pjm: PJMEmulator,
                                          make_spec: Spec) -> None:
    pjm.configure(run_limit=10)
    ids = [sched.submit(make_spec(f"exp2-p{i:04d}-a1", *SLEEP)) for i in range(50)]
    sched.calls.clear()
    statuses = wait_until(sched, ids, lambda s: s.state is not JobState.UNKNOWN)
    polls = sched.calls["pjstat"]
    statuses = sched.status(ids)
    assert sched.calls["pjstat"] - polls <= 2
    states = [statuses[i].state for i in ids]
    assert states.count(JobState.PENDING) >= 40
    assert all(statuses[i].reason == "RUNLIMIT EXCEED"
               for i in ids if statuses[i].state is JobState.PENDING)
    sched.cancel(ids)
    assert sched.calls["pjdel"] == 1
    sched.calls.clear()
    final = sched.status(ids)
    assert sched.calls["pjstat"] <= 2
    assert {s.state for s in final.values()} <= {JobState.CANCELLED, JobState.RUNNING}
    assert {s.state for s in wait_until(sched, ids).values()} == {JobState.CANCELLED}


def test_run_limit_keeps_extra_jobs_queued_until_a_slot_frees(
        sched: PJMScheduler, pjm: PJMEmulator, make_spec: Spec) -> None:
    pjm.configure(run_limit=1)
    first = sched.submit(make_spec("exp1-p14-a1", "sleep", "1"))
    second = sched.submit(make_spec("exp1-p15-a1", "true"))
    statuses = sched.status([first, second])
    assert statuses[first].state is JobState.RUNNING
    assert (statuses[second].state, statuses[second].reason) == (JobState.PENDING,
                                                                 "RUNLIMIT EXCEED")
    seen = set()
    deadline = time.monotonic() + 15
    while not (status := sched.status([second])[second]).state.terminal:
        seen.add(status.state)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status.state is JobState.SUCCEEDED and JobState.PENDING in seen
