"""The local scheduler with real supervisor processes and real jobs."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import sys
import time
from pathlib import Path

import pytest

from scheduler_adapters import local_processes
from scheduler_adapters.base import (
    JobRejected,
    JobSpec,
    JobState,
    SchedulerMisconfigured,
    SchedulerUnavailable,
)
from scheduler_adapters.local import LOST_REASON, LocalScheduler
from scheduler_adapters.local_processes import process_identity

from ..adapters.helpers import in_states, poll, wait_until
from .local_helpers import pid_alive


def read_state_file(state_dir: Path, job_id: str) -> dict:
    return json.loads((state_dir / "jobs" / job_id / "state.json").read_text())


def read_pid(path: Path) -> int:
    return int(poll(lambda: path.exists() and path.read_text().strip(), what=str(path)))


def test_success_records_exit_code_times_node_and_output(make_scheduler, shell_job):
    sched = make_scheduler()
    spec = shell_job("ok", "echo out; echo err >&2")
    submitted = time.time()
    job_id = sched.submit(spec)
    status = wait_until(sched, [job_id])[job_id]
    assert status.state is JobState.SUCCEEDED
    assert status.exit_code == 0
    assert submitted <= status.started_at <= status.ended_at <= time.time()
    assert status.node == socket.gethostname()
    assert spec.stdout_path.read_text() == "out\n"
    assert spec.stderr_path.read_text() == "err\n"


def test_non_zero_exit_and_signal_death_are_failures(make_scheduler, shell_job):
    sched = make_scheduler(slots=2)
    exits = sched.submit(shell_job("exits", "exit 3"))
    killed = sched.submit(shell_job("killed", "kill -KILL $$"))
    exited = wait_until(sched, [exits])[exits]
    assert (exited.state, exited.exit_code, exited.reason) == (JobState.FAILED, 3, "exit code 3")
    died = wait_until(sched, [killed])[killed]
    assert (died.state, died.exit_code) == (JobState.FAILED, 128 + signal.SIGKILL)
    assert died.reason == "killed by signal SIGKILL"


def test_time_limit_kills_the_whole_job_then_times_out(make_scheduler, shell_job):
    sched = make_scheduler(kill_grace_s=0.5)
    # The job ignores SIGTERM, so only the SIGKILL after the grace period ends it; one child
    # stays in the job's process group, another leaves it for a session of its own.
    spec = shell_job("slow", 'trap "" TERM; sleep 30 & echo $! > bg.pid; '
                             'setsid sleep 30 & echo $! > escaped.pid; wait', time_limit_s=1)
    job_id = sched.submit(spec)
    background = read_pid(spec.workdir / "bg.pid")
    escaped = read_pid(spec.workdir / "escaped.pid")
    status = wait_until(sched, [job_id])[job_id]
    assert status.state is JobState.TIMEOUT
    assert status.exit_code == 128 + signal.SIGKILL
    assert status.reason == "time limit of 1 s exceeded"
    assert 1.5 <= status.ended_at - status.started_at < 5
    assert not pid_alive(background)
    assert not pid_alive(escaped)


def test_cancel_a_running_job_kills_it_and_is_idempotent(make_scheduler, shell_job):
    sched = make_scheduler()
    spec = shell_job("long", "echo $$ > pid; exec sleep 30")
    job_id = sched.submit(spec)
    wait_until(sched, [job_id], in_states(JobState.RUNNING))
    pid = read_pid(spec.workdir / "pid")
    sched.cancel([job_id])
    status = wait_until(sched, [job_id])[job_id]
    assert status.state is JobState.CANCELLED
    assert status.exit_code == 128 + signal.SIGTERM
    assert not pid_alive(pid)
    sched.cancel([job_id, job_id])
    assert sched.status([job_id])[job_id] == status


def test_cancel_a_pending_job_never_starts_it(make_scheduler, shell_job):
    sched = make_scheduler(slots=1)
    blocker = sched.submit(shell_job("blocker", "sleep 30"))
    wait_until(sched, [blocker], in_states(JobState.RUNNING))
    queued_spec = shell_job("queued", "touch started")
    queued = sched.submit(queued_spec)
    assert sched.status([queued])[queued].state is JobState.PENDING
    sched.cancel([queued])
    status = wait_until(sched, [queued])[queued]
    assert (status.state, status.started_at) == (JobState.CANCELLED, None)
    assert sched.status([blocker])[blocker].state is JobState.RUNNING
    sched.cancel([blocker])
    assert wait_until(sched, [blocker])[blocker].state is JobState.CANCELLED
    time.sleep(0.3)   # a slot is free now: a cancelled job must still not run
    assert not (queued_spec.workdir / "started").exists()


def test_queued_jobs_start_first_in_first_out(make_scheduler, shell_job, tmp_path):
    sched = make_scheduler(slots=1)
    blocker = sched.submit(shell_job("blocker", "sleep 30"))
    wait_until(sched, [blocker], in_states(JobState.RUNNING))
    order = tmp_path / "order.log"
    queued = {name: sched.submit(shell_job(name, f"echo {name} >> {order}"))
              for name in ("q1", "q2", "q3", "q4", "q5")}
    sched.cancel([queued["q3"]])          # leaving the middle of the queue keeps the order
    wait_until(sched, [queued["q3"]])
    sched.cancel([blocker])
    for job_id in queued.values():
        wait_until(sched, [job_id])
    assert order.read_text().split() == ["q1", "q2", "q4", "q5"]


def test_no_more_jobs_run_at_once_than_slots(make_scheduler, shell_job, tmp_path):
    slots = 2
    sched = make_scheduler(slots=slots)
    log = tmp_path / "intervals.log"
    script = (f'echo "$(date +%s.%N) 1" >> {log}; sleep 0.3; '
              f'echo "$(date +%s.%N) -1" >> {log}')
    job_ids = [sched.submit(shell_job(f"cap{i}", script)) for i in range(6)]
    most_running = 0
    while not all(s.state.terminal for s in sched.status(job_ids).values()):
        running = [s for s in sched.status(job_ids).values() if s.state is JobState.RUNNING]
        most_running = max(most_running, len(running))
        time.sleep(0.02)
    assert all(s.state is JobState.SUCCEEDED for s in sched.status(job_ids).values())
    events = sorted((float(t), int(d)) for t, d in (line.split() for line in log.read_text()
                                                    .splitlines()))
    concurrent = peak = 0
    for _, delta in events:
        concurrent += delta
        peak = max(peak, concurrent)
    assert len(events) == 12
    assert peak == slots          # the jobs did overlap, and never more than the slots allow
    assert most_running <= slots


def test_gpus_are_handed_out_round_robin_by_slot(make_scheduler, shell_job):
    sched = make_scheduler(slots=2, gpus=("0", "1", "2"))
    record = 'echo -n "${CUDA_VISIBLE_DEVICES-unset}" > gpus; sleep 0.5'
    specs = [shell_job(f"gpu{i}", record, gpus=2) for i in range(2)]
    job_ids = [sched.submit(spec) for spec in specs]
    for job_id in job_ids:
        assert wait_until(sched, [job_id])[job_id].state is JobState.SUCCEEDED
    # slot 0 gets devices 0,1; slot 1 gets devices 2,3 modulo the three configured
    assert sorted((s.workdir / "gpus").read_text() for s in specs) == ["0,1", "2,0"]
    by_slot = {read_state_file(sched.state_dir, j)["slot"]: (s.workdir / "gpus").read_text()
               for j, s in zip(job_ids, specs)}
    assert by_slot == {0: "0,1", 1: "2,0"}

    cpu_only = shell_job("cpu", record)
    assert wait_until(sched, [job := sched.submit(cpu_only)])[job].state is JobState.SUCCEEDED
    assert (cpu_only.workdir / "gpus").read_text() == ""    # managed GPUs are hidden from it

    with pytest.raises(JobRejected, match="asks for 4 GPUs, only 3 configured"):
        sched.submit(shell_job("greedy", "true", gpus=4))


def test_a_restarted_master_finds_running_and_ended_jobs(make_scheduler, shell_job, state_dir):
    first = make_scheduler(slots=2)
    long_id = first.submit(shell_job("long", "sleep 30"))
    short_id = first.submit(shell_job("short", "sleep 0.5; exit 4"))
    wait_until(first, [long_id], in_states(JobState.RUNNING))
    first.close()
    del first

    second = LocalScheduler(state_dir, slots=2)
    assert second.find_by_name(["long", "short"]) == {"long": long_id, "short": short_id}
    assert second.status([long_id])[long_id].state is JobState.RUNNING
    second.close()
    del second

    time.sleep(1.0)   # the short job ends while no master watches
    third = make_scheduler(slots=2)
    ended = third.status([short_id])[short_id]
    assert (ended.state, ended.exit_code) == (JobState.FAILED, 4)
    assert third.status([long_id])[long_id].state is JobState.RUNNING
    later = third.submit(shell_job("later", "true"))
    assert int(later) > int(short_id)
    third.cancel([long_id])
    assert wait_until(third, [long_id])[long_id].state is JobState.CANCELLED


def test_killed_supervisor_is_a_node_failure_and_leaves_nothing(make_scheduler, shell_job,
                                                                 state_dir):
    sched = make_scheduler()
    spec = shell_job("orphaned", "sleep 30 & echo $! > bg.pid; echo $$ > pid; wait")
    job_id = sched.submit(spec)
    wait_until(sched, [job_id], in_states(JobState.RUNNING))
    background = read_pid(spec.workdir / "bg.pid")
    leader = read_pid(spec.workdir / "pid")
    kill_supervisor(state_dir, job_id)

    status = wait_until(sched, [job_id], in_states(JobState.NODE_FAIL))[job_id]
    assert status.reason == LOST_REASON
    poll(lambda: not pid_alive(leader) and not pid_alive(background), timeout=5,
             what="the orphaned job's processes to die")
    sched.cancel([job_id])
    assert sched.status([job_id])[job_id].state is JobState.NODE_FAIL


def test_a_process_that_left_the_session_dies_with_a_dead_supervisor(make_scheduler, shell_job,
                                                                     state_dir):
    """setsid takes the process out of the job's session and process group, so killing the
    group misses it, and with the supervisor (its subreaper) dead nothing else would."""
    sched = make_scheduler()
    spec = shell_job("escaped", "setsid sleep 60 & echo $! > bg.pid; wait")
    job_id = sched.submit(spec)
    wait_until(sched, [job_id], in_states(JobState.RUNNING))
    escaped = read_pid(spec.workdir / "bg.pid")
    poll(lambda: os.getsid(escaped) == escaped, what="the process to leave the session")
    kill_supervisor(state_dir, job_id)

    status = wait_until(sched, [job_id], in_states(JobState.NODE_FAIL))[job_id]
    assert status.reason == LOST_REASON
    poll(lambda: not pid_alive(escaped), timeout=5, what="the escaped process to die")


def kill_supervisor(state_dir: Path, job_id: str) -> dict:
    """SIGKILL the job's supervisor and wait until it is gone; returns the job's state record."""
    record = read_state_file(state_dir, job_id)
    supervisor = record["supervisor"]["pid"]
    os.kill(supervisor, signal.SIGKILL)
    poll(lambda: not pid_alive(supervisor), what="the supervisor to die")
    return record


@pytest.mark.parametrize("change", [{"start": -1}, {"boot": "another boot"}],
                         ids=["pid reused", "machine rebooted"])
def test_a_live_process_with_another_identity_is_not_the_supervisor(
        make_scheduler, shell_job, state_dir, change):
    sched = make_scheduler()
    job_id = sched.submit(shell_job("reused", "sleep 30"))
    wait_until(sched, [job_id], in_states(JobState.RUNNING))
    record = kill_supervisor(state_dir, job_id)
    # The recorded pid now belongs to a live process (this one), but not the same one.
    impostor = process_identity(os.getpid())
    if "start" in change:
        impostor["start"] += change["start"]
    else:
        impostor["boot"] = change["boot"]
    record["supervisor"] = impostor
    (state_dir / "jobs" / job_id / "state.json").write_text(json.dumps(record))
    assert sched.status([job_id])[job_id].state is JobState.NODE_FAIL


def test_cancel_after_the_supervisor_died_records_cancelled(make_scheduler, shell_job,
                                                            state_dir):
    sched = make_scheduler()
    spec = shell_job("abandoned", "sleep 30 & echo $! > bg.pid; wait")
    job_id = sched.submit(spec)
    wait_until(sched, [job_id], in_states(JobState.RUNNING))
    background = read_pid(spec.workdir / "bg.pid")
    kill_supervisor(state_dir, job_id)
    sched.cancel([job_id])
    assert sched.status([job_id])[job_id].state is JobState.CANCELLED
    poll(lambda: not pid_alive(background), timeout=5, what="the job's processes to die")


def test_a_supervisor_that_never_starts_is_given_up(make_scheduler, shell_job, monkeypatch):
    monkeypatch.setattr(local_processes, "SPAWN_GRACE_S", 0.5)
    sched = make_scheduler(python="/bin/true")   # "starts", but runs no supervisor
    job_id = sched.submit(shell_job("stillborn", "true"))
    assert sched.status([job_id])[job_id].state is JobState.PENDING
    time.sleep(0.6)
    status = sched.status([job_id])[job_id]
    assert (status.state, status.reason) == (JobState.NODE_FAIL, LOST_REASON)


def test_a_supervisor_that_cannot_be_spawned_leaves_no_job_to_find(make_scheduler, shell_job,
                                                                    tmp_path):
    sched = make_scheduler(python=str(tmp_path / "no-such-python"))
    with pytest.raises(SchedulerMisconfigured, match="cannot start local supervisor"):
        sched.submit(shell_job("unborn", "true"))
    assert sched.find_by_name(["unborn"]) == {}
    assert sched.status(["1"])["1"].state is JobState.NODE_FAIL


def test_find_by_name(make_scheduler, shell_job):
    sched = make_scheduler(slots=2)
    first = sched.submit(shell_job("alpha", "true"))
    beta = sched.submit(shell_job("beta", "true"))
    assert sched.find_by_name(["alpha", "beta", "missing", "../state"]) == {
        "alpha": first, "beta": beta}
    wait_until(sched, [first])
    retry = sched.submit(shell_job("alpha", "true"))
    assert sched.find_by_name(["alpha"]) == {"alpha": retry}


def test_unknown_ids_are_unknown(make_scheduler):
    sched = make_scheduler()
    statuses = sched.status(["42", "../42", "x"])
    assert {s.state for s in statuses.values()} == {JobState.UNKNOWN}
    sched.cancel(["42", "../42"])


def test_run_directory_deleted_while_running_ends_the_job(make_scheduler, shell_job):
    sched = make_scheduler(slots=1)
    running = shell_job("deleted", "sleep 0.5; echo done > result.txt")
    running_id = sched.submit(running)
    wait_until(sched, [running_id], in_states(JobState.RUNNING))
    shutil.rmtree(running.workdir)
    assert wait_until(sched, [running_id])[running_id].state is JobState.FAILED


def test_run_directory_deleted_while_queued_fails_the_job(make_scheduler, shell_job):
    sched = make_scheduler(slots=1)
    blocker = sched.submit(shell_job("blocker", "sleep 30"))
    wait_until(sched, [blocker], in_states(JobState.RUNNING))
    queued = shell_job("deleted-queued", "true")
    queued_id = sched.submit(queued)
    shutil.rmtree(queued.workdir)
    sched.cancel([blocker])
    never_ran = wait_until(sched, [queued_id])[queued_id]
    assert never_ran.state is JobState.FAILED
    assert never_ran.reason.startswith("job could not start: [Errno 2] No such file")


TRICKY = ["two words", "it's", '"quoted"', "$(touch pwned)", "`touch pwned`", "; touch pwned",
          "$HOME", "*", "\\", "-n"]


def test_argv_and_env_values_pass_literally(make_scheduler, tmp_path):
    sched = make_scheduler()
    workdir = tmp_path / "runs" / "tricky"
    workdir.mkdir(parents=True)
    program = ("import json, os, sys; json.dump({'argv': sys.argv[1:], "
               "'env': [os.environ['V%d' % i] for i in range(len(sys.argv) - 1)]}, "
               "open('seen.json', 'w'))")
    spec = JobSpec("tricky", (sys.executable, "-c", program, *TRICKY), workdir,
                   env={f"V{i}": value for i, value in enumerate(TRICKY)})
    assert wait_until(sched, [job := sched.submit(spec)])[job].state is JobState.SUCCEEDED
    assert json.loads((workdir / "seen.json").read_text()) == {"argv": TRICKY, "env": TRICKY}
    assert not list(tmp_path.rglob("pwned"))


def test_files_and_directories_are_owner_only(make_scheduler, shell_job, state_dir):
    sched = make_scheduler()
    spec = shell_job("private", "echo secret")
    job_id = sched.submit(spec)
    wait_until(sched, [job_id])
    job_dir = state_dir / "jobs" / job_id
    directories = [state_dir, *(state_dir / d for d in ("jobs", "names", "queue", "slots")),
                   job_dir]
    files = [state_dir / "counter", state_dir / "names" / "private", state_dir / "slots" / "0",
             *job_dir.iterdir(), spec.stdout_path, spec.stderr_path]
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in directories} == {
        p.name: 0o700 for p in directories}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {
        p.name: 0o600 for p in files}


def test_invalid_settings_and_time_limits_are_refused(make_scheduler, shell_job, state_dir):
    with pytest.raises(ValueError, match="slots must be at least 1"):
        LocalScheduler(state_dir, slots=0)
    with pytest.raises(JobRejected, match="non-positive time limit"):
        make_scheduler().submit(shell_job("never", "true", time_limit_s=0))


def test_an_unreadable_name_record_is_no_answer(make_scheduler, shell_job, state_dir):
    sched = make_scheduler()
    job_id = sched.submit(shell_job("hidden", "true"))
    wait_until(sched, [job_id])
    record = state_dir / "names" / "hidden"
    record.unlink()
    record.mkdir()           # reading it fails (IsADirectoryError) even as root
    with pytest.raises(SchedulerUnavailable, match="cannot read local job name hidden"):
        sched.find_by_name(["hidden"])
    record.rmdir()
    assert sched.find_by_name(["hidden"]) == {}
