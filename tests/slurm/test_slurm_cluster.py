"""SlurmScheduler against a real one-node Slurm (scripts/slurm-start.sh).

Order matters for speed only: the node-failure test comes first because taking the only node
down kills whatever runs on it, and the time-limit test comes last because Slurm checks limits
about every 30 s, so it waits the longest.
"""
from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler_adapters.base import JobRejected, JobSpec, JobState, SchedulerUnavailable, SubmitLimitReached
from scheduler_adapters.slurm import SlurmScheduler

from ..adapters.helpers import poll, wait_until
from .slurm_helpers import jobs_named, live_ids

pytestmark = pytest.mark.slurm

Make = Callable[..., SlurmScheduler]


def spec(tmp_path: Path, name: str, script: str, **kw: object) -> JobSpec:
    workdir = tmp_path / name
    workdir.mkdir(mode=0o700)
    return JobSpec(name=name, command=("bash", "-c", script), workdir=workdir,
                   **kw)  # type: ignore[arg-type]


def scontrol(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30)


def node_state(node: str) -> str:
    return subprocess.run(["sinfo", "-h", "-N", "-n", node, "-o", "%T"], capture_output=True,
                          text=True, timeout=30).stdout.strip()


def test_node_failure_requeues_under_same_id_or_fails(make_scheduler: Make, job_prefix: str,
                                                      tmp_path: Path, slurm_cluster) -> None:
    requeueing, plain = make_scheduler(requeue=True), make_scheduler(requeue=False)
    script = 'echo "run $SLURM_RESTART_COUNT"; sleep 4'
    again = requeueing.submit(spec(tmp_path, f"{job_prefix}requeue", script))
    once = plain.submit(spec(tmp_path, f"{job_prefix}once", script))
    wait_until(plain, [again, once], lambda s: s.state is JobState.RUNNING, timeout=30)

    node = slurm_cluster.node
    down = scontrol("update", f"NodeName={node}", "State=DOWN", "Reason=orchestrator-test")
    assert down.returncode == 0, down.stderr
    try:
        states = wait_until(plain, [again, once], lambda s: s.state is not JobState.RUNNING,
                          timeout=20)
        assert states[once].state is JobState.NODE_FAIL
        assert states[again].state is JobState.PENDING   # requeued, not a verdict
    finally:
        if any(w in node_state(node) for w in ("down", "drain", "fail")):
            scontrol("update", f"NodeName={node}", "State=RESUME")
    # the requeued job runs again (after Slurm's requeue delay) under the same id
    final = wait_until(requeueing, [again], timeout=60)[again]
    assert final.state is JobState.SUCCEEDED and final.exit_code == 0
    out = tmp_path / f"{job_prefix}requeue" / "stdout.txt"
    assert out.read_text().split() == ["run", "1"]   # second run (restart count 1)


def test_completed_and_failed_report_exit_codes(make_scheduler: Make, job_prefix: str,
                                                tmp_path: Path) -> None:
    sched = make_scheduler()
    ok = sched.submit(spec(tmp_path, f"{job_prefix}ok", 'echo "$GREETING" from "$PWD"',
                           env={"GREETING": "hello world"}, time_limit_s=120))
    bad = sched.submit(spec(tmp_path, f"{job_prefix}bad", "echo oops >&2; exit 3"))
    killed = sched.submit(spec(tmp_path, f"{job_prefix}killed", "kill -9 $$"))
    states = wait_until(sched, [ok, bad, killed])

    assert states[ok].state is JobState.SUCCEEDED and states[ok].exit_code == 0
    assert states[ok].node and states[ok].started_at and states[ok].ended_at
    assert states[bad].state is JobState.FAILED and states[bad].exit_code == 3
    assert states[killed].state is JobState.FAILED and states[killed].exit_code == 128 + 9
    ok_dir = tmp_path / f"{job_prefix}ok"
    assert (ok_dir / "stdout.txt").read_text() == f"hello world from {ok_dir}\n"
    assert (tmp_path / f"{job_prefix}bad" / "stderr.txt").read_text() == "oops\n"
    assert (ok_dir / "job.slurm.sh").read_text().startswith("#!/bin/bash\n#SBATCH --job-name=")


def test_cancel_is_reported_and_idempotent(make_scheduler: Make, job_prefix: str,
                                           tmp_path: Path) -> None:
    sched = make_scheduler()
    running = sched.submit(spec(tmp_path, f"{job_prefix}run", "sleep 120"))
    wait_until(sched, [running], lambda s: s.state is JobState.RUNNING, timeout=30)
    sched.cancel([running])
    state = wait_until(sched, [running])[running]
    assert state.state is JobState.CANCELLED
    assert state.reason and state.reason.startswith("CANCELLED")
    sched.cancel([running, "999999"])   # finished and unknown ids: no error


def test_vanished_job_is_found_in_history(make_scheduler: Make, job_prefix: str,
                                          tmp_path: Path) -> None:
    sched = make_scheduler()
    job = sched.submit(spec(tmp_path, f"{job_prefix}gone", "exit 7"))
    wait_until(sched, [job])
    # MinJobAge=2: purged on slurmctld's next sweep
    poll(lambda: not live_ids([job]), timeout=90, interval=1,
         what="the job to leave squeue (is MinJobAge small?)")
    before = sched.calls.copy()
    state = sched.status([job])[job]
    assert state.state is JobState.FAILED and state.exit_code == 7
    assert sched.calls["squeue"] - before["squeue"] == 1
    assert sched.calls["sacct"] - before["sacct"] == 1
    assert sched.find_by_name([f"{job_prefix}gone"]) == {f"{job_prefix}gone": job}
    assert sched.status(["999999"])["999999"].state is JobState.UNKNOWN
    # with history turned off, a purged job is simply unknown, and sacct is never run
    blind = make_scheduler(history="none")
    assert blind.status([job])[job].state is JobState.UNKNOWN
    assert blind.calls["sacct"] == 0


def test_flaky_submit_is_found_by_name_not_duplicated(make_scheduler: Make, job_prefix: str,
                                                      tmp_path: Path, fake_bin,
                                                      slurm_cluster) -> None:
    # The controller took the job but the reply was lost: the real sbatch runs, the caller
    # sees a timeout and no id.
    real = shutil.which("sbatch")
    env = fake_bin("sbatch", f'"{real}" "$@" >/dev/null 2>&1\n'
                             'echo "sbatch: error: Socket timed out on send/recv operation" >&2\n'
                             "exit 1\n")
    name = f"{job_prefix}flaky"
    job_spec = spec(tmp_path, name, "exit 0")
    with pytest.raises(SchedulerUnavailable, match="Socket timed out"):
        make_scheduler(env=env).submit(job_spec)

    sched = make_scheduler()
    found = sched.find_by_name([name, f"{job_prefix}never-submitted"])
    assert list(found) == [name]
    # what the retry wrapper does: found by name, so no second sbatch
    wait_until(sched, [found[name]])
    assert jobs_named(name, slurm_cluster.history) == [found[name]]


def test_failing_status_query_raises_unavailable(make_scheduler: Make, job_prefix: str,
                                                 tmp_path: Path, fake_bin) -> None:
    job = make_scheduler().submit(spec(tmp_path, f"{job_prefix}q", "exit 0"))
    env = fake_bin("squeue", 'echo "slurm_load_jobs error: Unable to contact slurm controller '
                             '(connect failure)" >&2\nexit 1\n')
    with pytest.raises(SchedulerUnavailable, match="squeue failed"):
        make_scheduler(env=env).status([job])
    with pytest.raises(SchedulerUnavailable, match="squeue failed"):
        make_scheduler(env=env).find_by_name([f"{job_prefix}q"])

    hanging = fake_bin("squeue", "sleep 30\n")
    with pytest.raises(SchedulerUnavailable, match="timed out"):
        make_scheduler(env=hanging, command_timeout_s=1).status([job])


def test_squeue_failing_a_batch_on_one_purged_id_falls_back_to_the_users_jobs(
        make_scheduler: Make, job_prefix: str, tmp_path: Path, fake_bin) -> None:
    # Slurm 22.05 only filters unknown ids out of a list; some versions fail the whole call.
    real = shutil.which("squeue")
    env = fake_bin("squeue", 'case " $* " in *" -j "*999999*)\n'
                             '  echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1;;\n'
                             f'esac\nexec "{real}" "$@"\n')
    sched = make_scheduler(env=env)
    job = sched.submit(spec(tmp_path, f"{job_prefix}live", "sleep 30"))
    states = sched.status([job, "999999"])
    assert states[job].state in (JobState.PENDING, JobState.RUNNING)
    assert states["999999"].state is JobState.UNKNOWN
    assert (sched.calls["squeue"], sched.calls["sacct"]) == (2, 1)


def test_failing_scancel_raises_unavailable(make_scheduler: Make, fake_bin) -> None:
    env = fake_bin("scancel", 'echo "scancel: error: Kill job error on job id 5: Unable to '
                              'contact slurm controller (connect failure)" >&2\nexit 1\n')
    with pytest.raises(SchedulerUnavailable, match="Unable to contact"):
        make_scheduler(env=env).cancel(["5"])


def test_failing_history_query_raises_unavailable(make_scheduler: Make, fake_bin) -> None:
    # A job missing from the live queue must not become UNKNOWN when history is unreachable.
    env = fake_bin("sacct", 'echo "sacct: error: Problem talking to the database: '
                            'Connection refused" >&2\nexit 1\n')
    sched = make_scheduler(env=env)
    with pytest.raises(SchedulerUnavailable, match="sacct failed"):
        sched.status(["999999"])


def sacctmgr(*args: str) -> None:
    done = subprocess.run(["sacctmgr", "-i", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"sacctmgr {' '.join(args)}: {done.stderr}"


def test_submit_limit_reached(make_scheduler: Make, job_prefix: str, tmp_path: Path,
                              fake_bin, slurm_cluster) -> None:
    second = spec(tmp_path, f"{job_prefix}second", "exit 0")
    if not slurm_cluster.qos_limits:
        # Without slurmdbd Slurm enforces no QOS: replay what sbatch printed when the real QOS
        # limit below refused a job (recorded on Slurm 22.05 with slurmdbd).
        env = fake_bin("sbatch",
                       'echo "sbatch: error: QOSMaxSubmitJobPerUserLimit" >&2\n'
                       'echo "sbatch: error: Batch job submission failed: Job violates '
                       "accounting/QOS policy (job submit limit, user's size and/or time "
                       'limits)" >&2\nexit 1\n')
        with pytest.raises(SubmitLimitReached, match="QOSMaxSubmitJobPerUserLimit"):
            make_scheduler(env=env).submit(second)
        return
    # a real QOS limit, enforced by slurmctld (AccountingStorageEnforce=limits,qos:
    # scripts/slurm-start.sh with LOCAL_SLURM_ACCOUNTING=slurmdbd)
    qos, user = f"{job_prefix}q1".replace("-", ""), getpass.getuser()
    sacctmgr("add", "qos", qos, "MaxSubmitJobsPerUser=1")
    sched = make_scheduler(qos=qos)
    first = None
    try:
        sacctmgr("modify", "user", user, "set", f"qos+={qos}")
        first = sched.submit(spec(tmp_path, f"{job_prefix}first", "sleep 30"))
        with pytest.raises(SubmitLimitReached) as refused:
            sched.submit(second)
        assert str(refused.value) == POLICY_WORDS.format(limit="QOSMaxSubmitJobPerUserLimit")
    finally:
        if first:   # a QOS still used by a job cannot be deleted
            sched.cancel([first])
            wait_until(sched, [first])
        sacctmgr("modify", "user", user, "set", f"qos-={qos}")
        sacctmgr("delete", "qos", qos)


POLICY_WORDS = ("sbatch: {limit}; Batch job submission failed: Job violates accounting/QOS "
                "policy (job submit limit, user's size and/or time limits)")


def test_association_submit_limit_is_reached_in_slurms_words(
        make_scheduler: Make, job_prefix: str, tmp_path: Path, slurm_cluster) -> None:
    if not slurm_cluster.qos_limits:
        pytest.skip("association limits need slurmdbd and AccountingStorageEnforce=limits")
    # an account of this test's own, so the limit binds no other job on the cluster
    account, user = f"{job_prefix}acct".replace("-", ""), getpass.getuser()
    sacctmgr("add", "account", account)
    first = None
    try:
        sacctmgr("add", "user", user, f"account={account}", "MaxSubmitJobs=1")
        sched = make_scheduler(account=account)
        first = sched.submit(spec(tmp_path, f"{job_prefix}first", "sleep 30"))
        with pytest.raises(SubmitLimitReached) as refused:
            sched.submit(spec(tmp_path, f"{job_prefix}second", "exit 0"))
        assert str(refused.value) == POLICY_WORDS.format(limit="AssocMaxSubmitJobLimit")
    finally:
        if first:
            sched.cancel([first])
            wait_until(sched, [first])
        sacctmgr("delete", "user", user, f"account={account}")
        sacctmgr("delete", "account", account)


def test_invalid_partition_is_rejected(make_scheduler: Make, job_prefix: str,
                                       tmp_path: Path) -> None:
    with pytest.raises(JobRejected, match="Invalid partition"):
        make_scheduler(partition="no-such-partition").submit(
            spec(tmp_path, f"{job_prefix}part", "exit 0"))


def test_fifty_jobs_in_flight_cost_at_most_two_calls_per_poll(make_scheduler: Make,
                                                              job_prefix: str,
                                                              tmp_path: Path) -> None:
    sched = make_scheduler()
    ids = [sched.submit(spec(tmp_path, f"{job_prefix}{i:02d}", f"sleep 1; exit $(( {i} % 3 ))"))
           for i in range(50)]
    polled = [*ids, "999999"]       # one id Slurm never had must not spoil the batch
    polls, histories = 0, 0
    deadline = time.monotonic() + 90
    while True:
        before = sched.calls.copy()
        states = sched.status(polled)
        polls += 1
        squeues = sched.calls["squeue"] - before["squeue"]
        saccts = sched.calls["sacct"] - before["sacct"]
        assert squeues == 1 and saccts <= 1, sched.calls - before
        histories += saccts
        if all(states[j].state.terminal for j in ids):
            break
        assert time.monotonic() < deadline, states
        time.sleep(1)
    assert polls > 1                    # jobs were really in flight while polled
    assert histories >= 1              # and the history path was part of it (the unknown id)
    assert states["999999"].state is JobState.UNKNOWN
    for i, job in enumerate(ids):
        expected = JobState.SUCCEEDED if i % 3 == 0 else JobState.FAILED
        assert (states[job].state, states[job].exit_code) == (expected, i % 3)
