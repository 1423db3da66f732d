"""DRMAAScheduler against a real Son of Grid Engine (scripts/sge-start.sh)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scheduler_adapters.base import JobRejected, JobState, SchedulerUnavailable, SubmitLimitReached
from scheduler_adapters.drmaa_adapter import CONTACT_FILE, SCRIPT_NAME, DRMAAScheduler
from scheduler_adapters.libdrmaa import call_with_timeout

from ..adapters.helpers import in_states, poll, wait_until

pytestmark = pytest.mark.drmaa


def test_completed_job_succeeds_in_its_workdir_with_its_environment(scheduler, make_spec):
    spec = make_spec('echo "$GREETING from $(pwd)"; echo oops >&2', env={"GREETING": "hello world"})
    job_id = scheduler.submit(spec)

    final = wait_until(scheduler, [job_id])[job_id]

    assert final.state == JobState.SUCCEEDED, final
    assert final.exit_code == 0
    assert final.node and final.ended_at and final.started_at
    assert spec.stdout_path.read_text() == f"hello world from {spec.workdir}\n"
    assert spec.stderr_path.read_text() == "oops\n"
    assert (spec.workdir / SCRIPT_NAME).stat().st_mode & 0o777 == 0o700


def test_nonzero_exit_is_failed_with_its_exit_code(scheduler, make_spec):
    job_id = scheduler.submit(make_spec("exit 3"))

    final = wait_until(scheduler, [job_id])[job_id]

    assert (final.state, final.exit_code, final.reason) == (JobState.FAILED, 3, "exit status 3")


def test_job_killed_by_a_signal_is_failed_not_cancelled(scheduler, make_spec):
    job_id = scheduler.submit(make_spec("kill -TERM $$"))

    final = wait_until(scheduler, [job_id])[job_id]

    assert (final.state, final.exit_code, final.reason) == (JobState.FAILED, 143, "killed by SIGTERM")


def test_cancelled_running_job_is_cancelled(scheduler, make_spec):
    job_id = scheduler.submit(make_spec("sleep 60"))
    wait_until(scheduler, [job_id], in_states(JobState.RUNNING))

    scheduler.cancel([job_id])
    final = wait_until(scheduler, [job_id])[job_id]
    scheduler.cancel([job_id])       # idempotent: the job is gone

    assert final.state == JobState.CANCELLED, final


def test_job_cancelled_while_pending_is_cancelled(grid_engine, state_dir, make_spec):
    # -a: start no earlier than 2099, so the job stays pending
    scheduler = DRMAAScheduler(state_dir=state_dir, native_specification="-a 209901010000")
    try:
        job_id = scheduler.submit(make_spec("true"))
        assert scheduler.status([job_id])[job_id].state == JobState.PENDING
        scheduler.cancel([job_id])
        final = wait_until(scheduler, [job_id])[job_id]
    finally:
        scheduler.close()

    assert (final.state, final.reason) == (JobState.CANCELLED, "cancelled before it ran")


def test_wall_clock_limit_exceeded_is_timeout(scheduler, make_spec):
    job_id = scheduler.submit(make_spec("sleep 60", time_limit_s=2))

    final = wait_until(scheduler, [job_id])[job_id]

    assert final.state == JobState.TIMEOUT, final
    assert "h_rt=2 s" in (final.reason or "")


def test_restarted_adapter_reattaches_and_finds_jobs_that_ended_meanwhile(grid_engine, state_dir, make_spec):
    first = DRMAAScheduler(state_dir=state_dir)
    running_id = first.submit(make_spec("sleep 60"))
    ended_id = first.submit(make_spec("sleep 1; exit 5"))
    contact = first.contact
    first.close()
    # the "master" is down: the short job ends while no DRMAA session is attached
    assert wait_until(DRMAAScheduler(), [ended_id])[ended_id].state == JobState.FAILED

    second = DRMAAScheduler(state_dir=state_dir)
    try:
        after_restart = second.status([running_id, ended_id])
        second.cancel([running_id])          # opens the session: re-attaches with the saved contact
        reattached_contact = second.contact
        cancelled = wait_until(second, [running_id])[running_id]
    finally:
        second.close()

    assert contact and (state_dir / CONTACT_FILE).read_text().strip() == contact
    assert reattached_contact == contact
    assert after_restart[running_id].state == JobState.RUNNING
    assert (after_restart[ended_id].state, after_restart[ended_id].exit_code) == (JobState.FAILED, 5)
    assert cancelled.state == JobState.CANCELLED


def test_unusable_saved_contact_opens_a_new_session(grid_engine, state_dir, make_spec):
    (state_dir / CONTACT_FILE).write_text("not a contact string\n")
    scheduler = DRMAAScheduler(state_dir=state_dir)
    try:
        job_id = scheduler.submit(make_spec("true"))
        final = wait_until(scheduler, [job_id])[job_id]
        contact = scheduler.contact
    finally:
        scheduler.close()

    assert final.state == JobState.SUCCEEDED
    assert contact and contact.startswith("session=")
    assert (state_dir / CONTACT_FILE).read_text().strip() == contact


def test_job_deleted_outside_the_adapter_before_it_ran_is_unknown(scheduler):
    held = subprocess.run(["qsub", "-terse", "-h", "-b", "y", "-o", "/dev/null", "-e", "/dev/null", "/bin/true"],
                          capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["qdel", held], capture_output=True, check=True)

    result = scheduler.status([held, "987654321"])

    assert result[held].state == JobState.UNKNOWN
    assert result["987654321"].state == JobState.UNKNOWN


def test_job_whose_output_file_cannot_be_opened_is_failed_with_the_reason(scheduler, make_spec, tmp_path):
    job_id = scheduler.submit(make_spec("true", stdout=tmp_path / "no-such-dir" / "out.txt"))

    final = wait_until(scheduler, [job_id])[job_id]

    assert (final.state, final.reason) == (JobState.FAILED, "Grid Engine failure 26: opening input/output file")


def test_job_in_error_state_is_failed_with_grid_engines_reason(scheduler, tmp_path):
    # DRMAA jobs fail at once; a qsub job with a bad working directory sits in Eqw instead
    job_id = subprocess.run(["qsub", "-terse", "-b", "y", "-wd", str(tmp_path / "gone"), "-o", "/dev/null",
                             "-e", "/dev/null", "/bin/true"],
                            capture_output=True, text=True, check=True).stdout.strip()

    in_error = wait_until(scheduler, [job_id], in_states(JobState.FAILED), timeout=30)[job_id]
    scheduler.cancel([job_id])          # an Eqw job stays in the queue until deleted
    after_delete = wait_until(scheduler, [job_id])[job_id]

    assert in_error.state == JobState.FAILED
    assert in_error.reason.startswith("Grid Engine error state Eqw: error: can't chdir to")
    assert after_delete.state == JobState.FAILED      # qacct: failed 28, not a cancellation
    assert after_delete.reason.startswith("Grid Engine failure 28")


def test_find_by_name_finds_live_and_finished_jobs(scheduler, make_spec):
    live_spec, done_spec = make_spec("sleep 60"), make_spec("true")
    live_id, done_id = scheduler.submit(live_spec), scheduler.submit(done_spec)
    wait_until(scheduler, [done_id])

    fresh = DRMAAScheduler()                       # a restarted master: no session, no memory
    found = fresh.find_by_name([live_spec.name, done_spec.name, "never-submitted-name"])
    found_one = fresh.find_by_name([done_spec.name])
    scheduler.cancel([live_id])

    assert found == {live_spec.name: live_id, done_spec.name: done_id}
    assert found_one == {done_spec.name: done_id}


def test_status_of_many_jobs_takes_one_queue_and_one_history_query(scheduler, make_spec):
    live_id = scheduler.submit(make_spec("sleep 60"))
    done_ids = [scheduler.submit(make_spec(f"exit {code}")) for code in (0, 4)]
    for job_id in done_ids:
        wait_until(scheduler, [job_id])

    before = scheduler.calls.copy()
    result = scheduler.status([live_id, *done_ids, "987654321"])
    calls = scheduler.calls - before
    scheduler.cancel([live_id])

    assert calls == {"qstat": 1, "qacct": 1}
    assert [result[job_id].state for job_id in (live_id, *done_ids, "987654321")] == [
        JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.UNKNOWN]
    assert result[done_ids[1]].exit_code == 4


def test_parallel_job_gets_its_slots(scheduler, make_spec):
    spec = make_spec('echo "$NSLOTS"', cpus=2)
    job_id = scheduler.submit(spec)

    assert wait_until(scheduler, [job_id])[job_id].state == JobState.SUCCEEDED
    assert spec.stdout_path.read_text() == "2\n"


@pytest.mark.parametrize("options, cpus", [("-q no_such_queue", 1), ("", 99)])
def test_impossible_request_is_rejected(grid_engine, state_dir, make_spec, options, cpus):
    scheduler = DRMAAScheduler(state_dir=state_dir, native_specification=options)
    try:
        with pytest.raises(JobRejected, match="Grid Engine refused the job"):
            scheduler.submit(make_spec("true", cpus=cpus))
    finally:
        scheduler.close()


@contextmanager
def per_user_job_limit(limit: int, config_dir: Path) -> Iterator[None]:
    """Set the cluster's max_u_jobs for the duration (qconf -Mconf wants a file named "global")."""
    (config_dir / "saved").mkdir(parents=True)
    (config_dir / "limited").mkdir()
    saved = subprocess.run(["qconf", "-sconf", "global"], capture_output=True, text=True, check=True).stdout
    (config_dir / "saved" / "global").write_text(saved)
    (config_dir / "limited" / "global").write_text(
        re.sub(r"^max_u_jobs .*$", f"max_u_jobs {limit}", saved, flags=re.MULTILINE))
    subprocess.run(["qconf", "-Mconf", str(config_dir / "limited" / "global")], capture_output=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["qconf", "-Mconf", str(config_dir / "saved" / "global")], capture_output=True, check=True)


def test_per_user_job_limit_is_submit_limit_reached(scheduler, make_spec, tmp_path):
    first = scheduler.submit(make_spec("sleep 60"))
    try:
        with per_user_job_limit(1, tmp_path / "config"):
            with pytest.raises(SubmitLimitReached, match="only 1 jobs are allowed per user"):
                scheduler.submit(make_spec("true"))
    finally:
        scheduler.cancel([first])


@contextmanager
def qmaster_frozen() -> Iterator[None]:
    """Stop sge_qmaster with SIGSTOP for the duration: every client call to it hangs."""
    pid = int(Path("/var/spool/gridengine/qmaster/qmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_hung_qmaster_is_unavailable_and_the_late_job_is_found_by_name(grid_engine, state_dir, make_spec):
    scheduler = DRMAAScheduler(state_dir=state_dir, command_timeout_s=30)
    try:
        scheduler.submit(make_spec("true"))          # the session is open before qmaster hangs
        scheduler.command_timeout_s = 2              # short only now: a loaded CI machine is slow
        late = make_spec("true")
        with qmaster_frozen():
            with pytest.raises(SchedulerUnavailable, match="DRMAA runJob did not answer within 2 s"):
                scheduler.submit(late)
            with pytest.raises(SchedulerUnavailable, match="qstat timed out"):
                scheduler.status(["1"])
        # runJob goes on once qmaster is back: the caller's reconciliation by name must see it
        job_id = poll(lambda: scheduler.find_by_name([late.name]).get(late.name), timeout=30,
                      interval=0.25, what=f"{late.name} to be found by name")
        final = wait_until(scheduler, [job_id])[job_id]
    finally:
        scheduler.close()

    assert final.state == JobState.SUCCEEDED


def test_initialize_that_timed_out_still_opens_the_session(grid_engine, state_dir, make_spec):
    """A qmaster that hangs while the session opens: the late initialize counts, so the next
    submit uses its session instead of failing for good on "already open"."""
    scheduler = DRMAAScheduler(state_dir=state_dir, command_timeout_s=1)
    try:
        with qmaster_frozen():
            with pytest.raises(SchedulerUnavailable, match="DRMAA initialize did not answer"):
                scheduler.submit(make_spec("true"))
        scheduler.command_timeout_s = 30
        job_id = scheduler.submit(make_spec("true"))
        final = wait_until(scheduler, [job_id])[job_id]
    finally:
        scheduler.close()

    assert final.state == JobState.SUCCEEDED


def test_a_submit_queued_behind_a_hung_call_is_never_made(grid_engine, state_dir, make_spec):
    """libdrmaa calls go one at a time: one that gave up while waiting for its turn is dropped,
    so nothing goes in that its caller was told had failed, beyond the call already in flight."""
    scheduler = DRMAAScheduler(state_dir=state_dir, command_timeout_s=30)
    try:
        scheduler.submit(make_spec("true"))          # the session is open before qmaster hangs
        scheduler.command_timeout_s = 1
        in_flight, queued = make_spec("true"), make_spec("true")
        with qmaster_frozen():
            for spec in (in_flight, queued):
                with pytest.raises(SchedulerUnavailable, match="DRMAA runJob did not answer"):
                    scheduler.submit(spec)
        scheduler.command_timeout_s = 30
        # a call queued now runs after the late runJob: once it answers, that one has ended
        call_with_timeout("barrier", lambda: None, timeout_s=30)
        found = scheduler.find_by_name([in_flight.name, queued.name])
    finally:
        scheduler.close()

    assert set(found) == {in_flight.name}


def _broken_command(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.mark.parametrize("command, body, timeout_s", [
    ("qstat", "echo 'error: commlib error: got select error (Connection refused)' >&2; exit 1", 30),
    ("qstat", "echo '<job_info><queue_info>'", 30),          # truncated XML
    ("qstat", "exec sleep 30", 1),                         # hangs past the command timeout
    ("qacct", "echo 'error: unable to read accounting file' >&2; exit 1", 30),
])
def test_failing_query_raises_scheduler_unavailable(grid_engine, tmp_path, monkeypatch, command, body,
                                                    timeout_s):
    bin_dir = tmp_path / "bin"
    _broken_command(bin_dir, command, body)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    scheduler = DRMAAScheduler(command_timeout_s=timeout_s)

    started = time.monotonic()
    with pytest.raises(SchedulerUnavailable, match=command):
        scheduler.status(["987654321"])
    with pytest.raises(SchedulerUnavailable, match=command):
        scheduler.find_by_name(["some-job-name"])

    assert time.monotonic() - started < 20


@pytest.mark.parametrize("body", [
    # a fresh cluster, before any job has ended (recorded after LOCAL_SGE_FRESH=1 sge-start.sh)
    "echo 'no jobs running since startup'; echo \"$SGE_ROOT/default/common/accounting: No such file or directory\" >&2; exit 1",
    "echo 'error: job id 987654321 not found' >&2; exit 1",
])
def test_qacct_without_records_means_unknown(grid_engine, tmp_path, monkeypatch, body):
    bin_dir = tmp_path / "bin"
    _broken_command(bin_dir, "qacct", body)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    scheduler = DRMAAScheduler()

    assert scheduler.status(["987654321"])["987654321"].state == JobState.UNKNOWN
    assert scheduler.find_by_name(["never-submitted-name"]) == {}
