"""PJMScheduler under the emulator's faults in combination: a submit that got in although pjsub
failed, lookups and polls that fail, pjdel that fails, a job manager that is away for a while,
and policy refusals. The promise under test: a failed query is never taken as an answer, so a
caller that resubmits only after a lookup really answered "not there" runs every job once."""
from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from scheduler_adapters.base import (
    JobSpec,
    JobState,
    SchedulerMisconfigured,
    SchedulerUnavailable,
    SubmitLimitReached,
    Unanswered,
)
from scheduler_adapters.emulators import BIN_DIR
from scheduler_adapters.emulators.pjm import PJMEmulator
from scheduler_adapters.pjm import PJDEL_TRIES, PJMScheduler

from ..adapters.helpers import wait_until

Spec = Callable[..., JobSpec]
SLEEP = ("sleep", "30")


def submit_once(sched: PJMScheduler, spec: JobSpec, *, intent_recorded: bool = False,
                tries: int = 20) -> str:
    """The caller's side of the contract (the master's): once a submit may have happened, ask
    by name until the scheduler answers, and submit again only when it answered "not there"."""
    for attempt in range(tries):
        if intent_recorded or attempt > 0:
            found = answered_lookup(sched, spec.name, tries)
            if spec.name in found:
                return found[spec.name]
        try:
            return sched.submit(spec)
        except SchedulerUnavailable:
            continue
    raise AssertionError(f"{spec.name} was never submitted")


def answered_lookup(sched: PJMScheduler, name: str, tries: int) -> dict[str, str]:
    for _ in range(tries):
        try:
            return sched.find_by_name([name])
        except SchedulerUnavailable:
            time.sleep(0.1)
    raise AssertionError(f"no lookup of {name} answered")


def jobs_named(pjm: PJMEmulator, name: str) -> list[str]:
    return [jid for jid, job in pjm.jobs().items() if job["name"] == name]


def test_submit_that_got_in_then_failed_lookups_is_never_duplicated(
        sched: PJMScheduler, pjm: PJMEmulator, make_spec: Spec) -> None:
    spec = make_spec("exp1-p1-a1", *SLEEP)
    pjm.inject("pjsub_submit_then_fail")
    pjm.inject("pjstat_fail", 3)              # the next lookups fail too
    with pytest.raises(SchedulerUnavailable, match="Cannot connect"):
        sched.submit(spec)
    for _ in range(3):                        # a failed lookup is an error, never "not found"
        with pytest.raises(SchedulerUnavailable, match="pjstat failed"):
            sched.find_by_name([spec.name])
    [jid] = jobs_named(pjm, spec.name)
    assert sched.find_by_name([spec.name]) == {spec.name: jid}
    assert submit_once(sched, spec, intent_recorded=True) == jid   # found, not resubmitted
    assert jobs_named(pjm, spec.name) == [jid]


def test_history_lookup_failure_is_an_error_too(sched: PJMScheduler, pjm: PJMEmulator,
                                               make_spec: Spec) -> None:
    # the live list answers (the job is not live); the history query, which would settle it,
    # fails: the answer must be "unknown", not "not there"
    pjm.inject("pjstat_history_fail")
    with pytest.raises(SchedulerUnavailable):
        sched.find_by_name(["exp1-never-submitted"])
    assert sched.find_by_name(["exp1-never-submitted"]) == {}


def test_random_faults_in_combination_run_every_job_once(
        sched: PJMScheduler, pjm: PJMEmulator, make_spec: Spec) -> None:
    rng = random.Random(15)
    faults = ("pjsub_submit_then_fail", "pjsub_error_rc0", "pjstat_fail",
              "pjstat_history_fail", "pjdel_fail")
    names = [f"exp3-p{i:02d}-a1" for i in range(8)]
    ids = {}
    for name in names:
        for fault in rng.sample(faults, 2):
            if fault != "pjsub_error_rc0":    # a refusal of the job itself is another test
                pjm.inject(fault, rng.randint(1, 2))
        ids[name] = submit_once(sched, make_spec(name, "sh", "-c", "sleep 0.2"))
    with pjm.store.locked() as state:        # the rest of the test without faults
        state["faults"] = {}
    assert {name: jobs_named(pjm, name) for name in names} == {n: [ids[n]] for n in names}
    final = wait_until(sched, list(ids.values()))
    assert {s.state for s in final.values()} == {JobState.SUCCEEDED}


def test_cancel_under_pjdel_and_pjstat_failures(sched: PJMScheduler, pjm: PJMEmulator,
                                               make_spec: Spec) -> None:
    jid = sched.submit(make_spec("exp1-p2-a1", *SLEEP))
    pjm.inject("pjdel_fail", PJDEL_TRIES - 1)    # retried inside cancel: it gets through
    pjm.inject("pjstat_fail")
    sched.cancel([jid])
    with pytest.raises(SchedulerUnavailable):    # the poll that follows fails: no verdict
        sched.status([jid])
    assert wait_until(sched, [jid])[jid].state is JobState.CANCELLED
    pjm.inject("pjdel_fail", PJDEL_TRIES)
    second = sched.submit(make_spec("exp1-p2-a2", *SLEEP))
    with pytest.raises(SchedulerUnavailable, match=f"pjdel failed {PJDEL_TRIES} times"):
        sched.cancel([second])                   # reported as a failure, not as done
    assert sched.status([second])[second].state in (JobState.PENDING, JobState.RUNNING)
    sched.cancel([second])
    assert wait_until(sched, [second])[second].state is JobState.CANCELLED


def test_outage_of_the_job_manager(sched: PJMScheduler, pjm: PJMEmulator,
                                   make_spec: Spec) -> None:
    jid = sched.submit(make_spec("exp1-p3-a1", "true"))
    pjm.outage(4)
    spec = make_spec("exp1-p3-a2", "true")
    for call in (lambda: sched.submit(spec), lambda: sched.status([jid]),
                 lambda: sched.find_by_name([spec.name])):
        with pytest.raises(SchedulerUnavailable, match="Cannot connect to the job manager"):
            call()
    with pytest.raises(SchedulerUnavailable, match="pjdel failed"):
        sched.cancel([jid])                      # retries do not outlast a long outage
    assert jobs_named(pjm, spec.name) == []
    second = submit_once(sched, spec, tries=50)  # lookups answer again once it is over
    assert jobs_named(pjm, spec.name) == [second]
    final = wait_until(sched, [jid, second])
    assert {s.state for s in final.values()} == {JobState.SUCCEEDED}


def test_slow_pjsub_times_out_without_a_job(pjm: PJMEmulator, make_spec: Spec) -> None:
    sched = PJMScheduler(rscgrp="cx-share", commands_dir=BIN_DIR, command_timeout_s=1.0)
    pjm.outage(5, commands=("pjsub",), mode="slow")
    spec = make_spec("exp1-p4-a1", "true")
    with pytest.raises(SchedulerUnavailable, match="timed out after 1 s"):
        sched.submit(spec)
    assert sched.find_by_name([spec.name]) == {}   # pjstat answers meanwhile
    assert jobs_named(pjm, spec.name) == []


def test_policy_refusal_is_a_limit_in_the_schedulers_words(sched: PJMScheduler,
                                                            pjm: PJMEmulator,
                                                            make_spec: Spec) -> None:
    pjm.inject("pjsub_refused")
    with pytest.raises(SubmitLimitReached) as refused:
        sched.submit(make_spec("exp1-p5-a1", "true"))
    assert str(refused.value) == ("[ERR.] PJM 0048 pjsub The number of jobs of the user exceeds "
                                  "the limit of resource group cx-share.")
    assert pjm.jobs() == {}
    jid = sched.submit(make_spec("exp1-p5-a2", "true"))     # the refusal was for a while only
    assert wait_until(sched, [jid])[jid].state is JobState.SUCCEEDED


def test_resource_group_typo_is_refused_up_front_and_at_submit(pjm: PJMEmulator,
                                                                make_spec: Spec) -> None:
    sched = PJMScheduler(rscgrp="cx-shared", commands_dir=BIN_DIR)
    [problem] = sched.check()
    assert problem.startswith("rscgrp 'cx-shared' is not a resource group of this system "
                              "(pjstat --rsc lists cx-debug, ")
    with pytest.raises(SchedulerMisconfigured, match=r"rscgrp=cx-shared.*check rscgrp"):
        sched.submit(make_spec("exp1-p6-a1", "true"))
    assert PJMScheduler(rscgrp="cx-share", commands_dir=BIN_DIR).check() == []


def test_check_tells_a_job_manager_that_does_not_answer_from_a_misconfigured_one(
        sched: PJMScheduler, pjm: PJMEmulator, tmp_path) -> None:
    pjm.inject("pjstat_fail")
    [away] = sched.check()
    assert isinstance(away, Unanswered) and "Cannot connect to the job manager" in away
    [missing] = PJMScheduler(rscgrp="cx-share", commands_dir=tmp_path / "nowhere").check()
    assert not isinstance(missing, Unanswered) and "is not a directory" in missing


def test_work_dir_with_a_space_is_refused_up_front_and_at_submit(sched: PJMScheduler,
                                                                  pjm: PJMEmulator,
                                                                  tmp_path) -> None:
    work_dir = tmp_path / "my runs"
    [problem] = sched.check(work_dir=work_dir)
    assert "'" + str(work_dir) + "' has characters a #PJM directive cannot carry" in problem
    run_dir = work_dir / "p1"
    run_dir.mkdir(parents=True)
    with pytest.raises(SchedulerMisconfigured, match="cannot carry"):
        sched.submit(JobSpec(name="exp1-p7-a1", command=("true",), workdir=run_dir))
    assert pjm.jobs() == {}
