"""DRMAA adapter pieces that need no Grid Engine: parsers on recorded SGE 8.1.9 output, state
mapping, option checks, and the lazy import of libdrmaa."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler_adapters.base import JobRejected, JobSpec, JobState
from scheduler_adapters.drmaa_adapter import DRMAAScheduler
from scheduler_adapters.sge_formats import (
    AccountingRecord,
    LiveJob,
    finished_status,
    live_status,
    parse_duration,
    parse_error_reasons,
    parse_native_specification,
    parse_qacct,
    parse_qstat_xml,
    vanished_status,
)

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def test_qstat_xml_lists_running_held_and_error_jobs():
    jobs = {job.job_id: job for job in parse_qstat_xml(recorded("qstat-mixed.xml"))}

    assert set(jobs) == {"13", "14", "15"}
    assert (jobs["13"].name, jobs["13"].state, jobs["13"].node) == ("long-running", "r", "vm")
    assert jobs["13"].started_at is not None and jobs["14"].started_at is None
    assert [live_status(jobs[i]).state for i in ("13", "14", "15")] == [
        JobState.RUNNING, JobState.PENDING, JobState.FAILED]


def test_empty_qstat_xml_has_no_jobs():
    assert parse_qstat_xml(recorded("qstat-empty.xml")) == []


@pytest.mark.parametrize("text", ["", "<job_info><queue_info>", "error: commlib error"])
def test_unreadable_qstat_xml_raises_value_error(text):
    with pytest.raises(ValueError, match="qstat"):
        parse_qstat_xml(text)


@pytest.mark.parametrize("state, expected", [
    ("qw", JobState.PENDING), ("hqw", JobState.PENDING), ("r", JobState.RUNNING), ("t", JobState.RUNNING),
    ("Rr", JobState.RUNNING), ("Rq", JobState.PENDING), ("dr", JobState.RUNNING),
    ("hr", JobState.RUNNING), ("S", JobState.RUNNING), ("Eqw", JobState.FAILED),
])
def test_live_states_map_to_common_states(state, expected):
    assert live_status(LiveJob("1", "x", state)).state == expected


def test_error_reason_of_eqw_job_comes_from_qstat_j():
    reasons = parse_error_reasons(recorded("qstat-j-eqw.txt"))

    assert reasons == {"15": 'error: can\'t open output file "/nonexistent/x.out": No such file or directory'}
    status = live_status(LiveJob("15", "bad-output", "Eqw"), reasons["15"])
    assert status.reason == f"Grid Engine error state Eqw: {reasons['15']}"


def test_qacct_records_parse_every_field():
    records = {rec.name: rec for rec in parse_qacct(recorded("qacct-all.txt"))}

    assert len(records) == 10
    timeout = records["tmo-drmaa"]
    assert (timeout.job_id, timeout.failed, timeout.exit_status, timeout.h_rt_s, timeout.wallclock_s) == (
        "8", 37, 137, 2.0, 3.0)
    assert timeout.failed_text == "qmaster enforced h_rt, h_cpu, or h_vmem limit"
    assert timeout.ended_at - timeout.started_at == 3
    assert records["ok-job"].node == "vm" and records["ok-job"].h_rt_s is None


@pytest.mark.parametrize("name, cancelled, state, reason", [
    ("ok-job", False, JobState.SUCCEEDED, None),
    ("e3", False, JobState.FAILED, "exit status 3"),
    ("tmo-drmaa", False, JobState.TIMEOUT, "limit h_rt=2 s exceeded: qmaster enforced h_rt, h_cpu, or h_vmem limit"),
    ("sleeper", False, JobState.FAILED, "killed by SIGKILL"),       # qdel'ed, but not by this adapter
    ("sleeper", True, JobState.CANCELLED, "cancelled"),
    ("sig", False, JobState.FAILED, "killed by SIGTERM"),
    ("eqw", True, JobState.FAILED, "Grid Engine failure 28: changing into working directory"),
    ("badout", False, JobState.FAILED, "Grid Engine failure 26: opening input/output file"),
])
def test_finished_jobs_map_to_common_states(name, cancelled, state, reason):
    record = next(rec for rec in parse_qacct(recorded("qacct-all.txt")) if rec.name == name)

    status = finished_status(record, cancelled=cancelled)

    assert (status.state, status.reason, status.exit_code) == (state, reason, record.exit_status)


def test_qacct_of_a_job_killed_by_the_running_queue_is_a_signal_death():
    [record] = parse_qacct(recorded("qacct-deleted-running.txt"))

    assert (record.failed, record.exit_status) == (100, 137)
    assert finished_status(record, cancelled=True).state == JobState.CANCELLED


def test_execd_enforced_wall_clock_limit_is_timeout():
    # execd kills with SIGKILL and records failed 0 when it, not qmaster, enforces h_rt
    record = AccountingRecord("5", "x", failed=0, failed_text="", exit_status=137, wallclock_s=61, h_rt_s=60)

    status = finished_status(record, cancelled=False)

    assert (status.state, status.reason) == (JobState.TIMEOUT, "limit h_rt=60 s exceeded: killed by SIGKILL")


def test_failure_before_the_job_started_is_a_node_failure():
    record = AccountingRecord("5", "x", failed=1, failed_text="assumedly before job", exit_status=0)

    assert finished_status(record, cancelled=True).state == JobState.NODE_FAIL


@pytest.mark.parametrize("cancelled, state", [(True, JobState.CANCELLED), (False, JobState.UNKNOWN)])
def test_job_in_neither_qstat_nor_qacct(cancelled, state):
    assert vanished_status("7", cancelled=cancelled).state == state


@pytest.mark.parametrize("text, seconds", [("2", 2), ("0:0:2", 2), ("1:30", 90), ("1:30:00", 5400), ("::5", 5)])
def test_grid_engine_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_native_specification_is_split_into_options():
    assert parse_native_specification("-q all.q  -l h_vmem=2G -P proj") == (
        "-q", "all.q", "-l", "h_vmem=2G", "-P", "proj")
    assert parse_native_specification("") == ()


@pytest.mark.parametrize("text, message", [
    ("-N other", "may not contain -N"),
    ("-o /tmp/x", "may not contain -o"),
    ("-t 1-10", "may not contain -t"),
    ("-l h_rt=10", "may not set h_rt"),
    ("-l mem=1G,h_rt=1:0:0", "may not set h_rt"),
    ("all.q", "must start with an option"),
    ("-q 'a b'", "contains a space"),
    ("-q 'unbalanced", "No closing quotation"),
    ("-q a\n-q b", "one line"),
])
def test_bad_native_specification_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        DRMAAScheduler(native_specification=text)


@pytest.mark.parametrize("option", ["parallel_environment", "gpu_resource"])
def test_resource_names_must_be_grid_engine_names(option):
    with pytest.raises(ValueError, match=f"{option} 'smp 4' is not a Grid Engine name"):
        DRMAAScheduler(**{option: "smp 4"})


def test_state_dir_is_created_owner_only(tmp_path):
    DRMAAScheduler(state_dir=tmp_path / "state")

    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


def test_resources_without_a_way_to_request_them_are_rejected_before_submitting(tmp_path):
    scheduler = DRMAAScheduler(parallel_environment=None)

    with pytest.raises(JobRejected, match="parallel_environment"):
        scheduler.submit(JobSpec(name="multi", command=("true",), workdir=tmp_path, cpus=4))
    with pytest.raises(JobRejected, match="gpu_resource"):
        scheduler.submit(JobSpec(name="gpu", command=("true",), workdir=tmp_path, gpus=1))


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).parents[2], timeout=60)


def test_adapter_module_does_not_load_libdrmaa():
    env = {k: v for k, v in os.environ.items() if k not in ("DRMAA_LIBRARY_PATH", "GLIBC_TUNABLES")}

    proc = run_python("import sys, scheduler_adapters.drmaa_adapter; print('drmaa' in sys.modules)", env)

    assert proc.stdout.strip() == "False", proc.stderr


def test_submit_without_libdrmaa_is_a_clear_misconfiguration(tmp_path):
    env = {**os.environ, "DRMAA_LIBRARY_PATH": str(tmp_path / "missing" / "libdrmaa.so.1.0")}
    code = (
        "from pathlib import Path\n"
        "from scheduler_adapters.base import JobSpec, SchedulerMisconfigured\n"
        "from scheduler_adapters.drmaa_adapter import DRMAAScheduler\n"
        "try:\n"
        f"    DRMAAScheduler().submit(JobSpec(name='j', command=('true',), workdir=Path({str(tmp_path)!r})))\n"
        "except SchedulerMisconfigured as exc:\n"
        "    print(exc)\n")

    proc = run_python(code, env)

    assert proc.stdout.startswith("libdrmaa could not be loaded (set DRMAA_LIBRARY_PATH"), proc.stderr
