"""The scheduler contract, run against every adapter (see contract.py for the backends):
submit -> status -> terminal, UNKNOWN for ids never seen, idempotent cancel, find_by_name from a
fresh instance, no verdict when a query fails, and the user's jobs in the queue counted."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler_adapters.base import JobState, SchedulerMisconfigured, SchedulerUnavailable

from .contract import BACKENDS, Backend, open_backend
from .helpers import in_states

MARKS = {"slurm": [pytest.mark.slurm], "sge": [pytest.mark.drmaa]}
NEVER_SEEN = "987654321"


@pytest.fixture(params=[pytest.param(name, marks=MARKS.get(name, [])) for name in BACKENDS])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened = open_backend(request.param, tmp_path)
    yield opened
    opened.close()


def test_jobs_end_in_their_terminal_states(backend: Backend) -> None:
    sched = backend.scheduler()
    ok = sched.submit(backend.spec("ok", "succeed"))
    bad = sched.submit(backend.spec("bad", "fail"))
    assert ok != bad
    final = backend.wait(sched, [ok, bad])
    assert (final[ok].state, final[ok].exit_code) == (JobState.SUCCEEDED, 0)
    assert final[bad].state is JobState.FAILED
    assert final[bad].exit_code != 0 and final[bad].reason


def test_ids_never_seen_are_unknown(backend: Backend) -> None:
    sched = backend.scheduler()
    assert sched.status([NEVER_SEEN])[NEVER_SEEN].state is JobState.UNKNOWN
    assert sched.status([]) == {}


def test_cancel_is_idempotent(backend: Backend) -> None:
    sched = backend.scheduler()
    job = sched.submit(backend.spec("long", "long"))
    backend.wait(sched, [job], in_states(JobState.PENDING, JobState.RUNNING))
    sched.cancel([job])
    sched.cancel([job])                                   # twice while it ends
    assert backend.wait(sched, [job])[job].state is JobState.CANCELLED
    sched.cancel([job, NEVER_SEEN])                       # ended and never-seen ids: fine
    sched.cancel([])


def test_a_fresh_instance_finds_jobs_by_name(backend: Backend) -> None:
    first = backend.scheduler()
    done_spec, live_spec = backend.spec("done", "succeed"), backend.spec("live", "long")
    done = first.submit(done_spec)
    backend.wait(first, [done])
    live = first.submit(live_spec)
    # as after a restart: the first instance is gone (DRMAA allows one session a process);
    # the simulated cluster lives in its instance, so there the same one answers
    if backend.restartable:
        first.close()
    fresh = backend.scheduler() if backend.restartable else first
    unknown = backend.prefix + "never-submitted"
    found = fresh.find_by_name([done_spec.name, live_spec.name, unknown])
    assert found == {done_spec.name: done, live_spec.name: live}   # history and live queue
    assert fresh.status([done])[done].state is JobState.SUCCEEDED
    fresh.cancel([live])
    assert backend.wait(fresh, [live])[live].state is JobState.CANCELLED


def test_a_failed_query_is_no_verdict(backend: Backend) -> None:
    if backend.name == "simulated":
        pytest.skip("the simulated cluster's queries cannot fail")
    sched = backend.scheduler()
    spec = backend.spec("watched", "long")
    job = sched.submit(spec)
    backend.wait(sched, [job], in_states(JobState.PENDING, JobState.RUNNING))
    with backend.queries_failing(sched, [job]) as broken:
        with pytest.raises(SchedulerUnavailable):
            broken.status([job, NEVER_SEEN])          # neither FAILED nor UNKNOWN
        with pytest.raises(SchedulerUnavailable):
            broken.find_by_name([spec.name])          # never "not there"
    assert sched.status([job])[job].state in (JobState.PENDING, JobState.RUNNING)
    assert sched.find_by_name([spec.name]) == {spec.name: job}
    sched.cancel([job])
    backend.wait(sched, [job])


def test_the_users_jobs_in_the_queue_are_counted(backend: Backend) -> None:
    """``user_active_jobs`` (``cap_scope = "user"``): a queued or running job counts, an ended
    one does not. On a shared Slurm other jobs of the user may come and go meanwhile."""
    sched = backend.scheduler()
    if backend.name == "sge":
        with pytest.raises(SchedulerMisconfigured):
            sched.user_active_jobs()
        return
    before = sched.user_active_jobs()
    job = sched.submit(backend.spec("counted", "long"))
    backend.wait(sched, [job], in_states(JobState.PENDING, JobState.RUNNING))
    during = sched.user_active_jobs()
    sched.cancel([job])
    backend.wait(sched, [job])
    after = sched.user_active_jobs()
    if backend.name == "slurm":
        assert during >= 1
    else:
        assert (before, during, after) == (0, 1, 0)
