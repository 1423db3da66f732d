"""Slurm output parsing and script rendering, on output recorded from Slurm 22.05 (no cluster)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from scheduler_adapters.base import JobRejected, JobSpec, JobState, SchedulerUnavailable, SubmitLimitReached
from scheduler_adapters.slurm import SlurmScheduler, time_limit_minutes
from scheduler_adapters.slurm_formats import (
    classify_submit_failure,
    exit_code_from_sacct,
    exit_code_from_wait_status,
    history_mode_from_config,
    map_state,
    parse_sacct,
    parse_sbatch_output,
    parse_squeue,
    scheduler_words,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

# squeue -h -t all -j 72,73,5,74,75 \
#   -O 'JobID:|,State:|,exit_code:|,NodeList:|,StartTime:|,EndTime:|,Reason:|'
SQUEUE_RECORDED = """\
72|PENDING|0||2026-11-29T00:17:00|NONE|BeginTime|
73|RUNNING|0|localhost|2026-11-29T00:16:01|NONE|None|
5|FAILED|1280|localhost|2026-11-29T00:09:41|2026-11-29T00:09:41|NonZeroExitCode|
74|CANCELLED|15|localhost|2026-11-29T00:16:01|2026-11-29T00:16:01|None|
75|COMPLETED|0|localhost|2026-11-29T00:16:03|2026-11-29T00:16:04|None|
"""

# sacct -c -P -n -j 6,2,3,71 --format=JobID,JobName,State,ExitCode,NodeList,Start,End
# (job 6 was requeued after a node failure: the completion file has one row per run)
SACCT_JOBCOMP_RECORDED = """\
6|t-nf|NODE_FAIL|0:0|localhost|2026-11-29T00:10:12|2026-11-29T00:10:13
2|t-fail|FAILED|3:0|localhost|2026-11-29T00:08:24|2026-11-29T00:08:24
3|t-sleep|CANCELLED|0:0|localhost|2026-11-29T00:08:24|2026-11-29T00:08:36
6|t-nf|COMPLETED|0:0|localhost|2026-11-29T00:10:27|2026-11-29T00:10:35
71|tbbb57421-slow|TIMEOUT|0:0|localhost|2026-11-29T00:14:23|2026-11-29T00:15:47
"""

# slurmdbd-style rows with steps (schedulers.md B.3), in our field order
SACCT_DBD_ROWS = """\
1236|a|FAILED|0:2|n1|2026-01-01T00:00:00|2026-01-01T00:01:00
1236.extern|extern|COMPLETED|0:0|n1|2026-01-01T00:00:00|2026-01-01T00:01:00
765096|b|CANCELLED by 54386|0:9|n1|2026-01-01T00:00:00|2026-01-01T00:01:00
765096.0|b|CANCELLED by 54386|0:9|n1|2026-01-01T00:00:00|2026-01-01T00:01:00
1235|c|PENDING|0:0||Unknown|Unknown
"""

SCONTROL_CONFIG_RECORDED = """\
Configuration data as of 2026-11-29T00:16:00
AccountingStorageType   = accounting_storage/none
ClusterName             = localslurm
JobCompLoc              = /tmp/orchestrator-slurm/log/jobcomp.txt
JobCompType             = jobcomp/filetxt
MinJobAge               = 2 sec
"""


def test_sbatch_parsable_output() -> None:
    assert parse_sbatch_output("123\n") == "123"
    assert parse_sbatch_output("123;cluster2\n") == "123"
    assert parse_sbatch_output("") is None
    assert parse_sbatch_output("Submitted batch job 5\n") is None   # not --parsable output


@pytest.mark.parametrize(("text", "error"), [
    # the first and the fourth recorded from Slurm 22.05 with slurmdbd and a QOS limit
    ("sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: "
     "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)",
     SubmitLimitReached),
    ("sbatch: error: AssocMaxSubmitJobLimit\nsbatch: error: Batch job submission failed: "
     "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)",
     SubmitLimitReached),
    ("sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
     "(job submit limit, user's size and/or time limits)", SubmitLimitReached),
    ("sbatch: error: QOSMaxWallDurationPerJobLimit\nsbatch: error: Batch job submission failed: "
     "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)",
     JobRejected),
    ("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
     SchedulerUnavailable),
    ("sbatch: error: Batch job submission failed: Unable to contact slurm controller "
     "(connect failure)", SchedulerUnavailable),
    # recorded from Slurm 22.05
    ("sbatch: error: invalid partition specified: nope\n"
     "sbatch: error: Batch job submission failed: Invalid partition name specified", JobRejected),
    ("sbatch: error: Invalid generic resource (gres) specification", JobRejected),
    ("sbatch: error: Invalid --time specification", JobRejected),
    ("sbatch: error: Batch job submission failed: Invalid account or account/partition "
     "combination specified", JobRejected),
    # slurm_errno.c's words (libslurm 22.05) for refusals that pass: maintenance, a drain
    ("sbatch: error: Batch job submission failed: Job can not start due to maintenance "
     "reservation.", SubmitLimitReached),
    ("sbatch: error: Batch job submission failed: Required partition not available (inactive "
     "or drain)", SubmitLimitReached),
    ("sbatch: error: Batch job submission failed: Requested reservation not usable now",
     SubmitLimitReached),
    ("", SchedulerUnavailable),                              # non-zero, no id, no words
    ("Segmentation fault (core dumped)", SchedulerUnavailable),
])
def test_submit_failures_are_classified(text: str, error: type) -> None:
    assert classify_submit_failure(text) is error


def test_scheduler_words_are_sbatchs_lines_on_one_line() -> None:
    assert scheduler_words("sbatch: error: QOSMaxSubmitJobPerUserLimit\n"
                           "sbatch: error: Batch job submission failed: Job violates x\n") == (
        "sbatch: QOSMaxSubmitJobPerUserLimit; Batch job submission failed: Job violates x")


def test_squeue_rows_are_parsed_with_wait_status_exit_codes() -> None:
    rows = parse_squeue(SQUEUE_RECORDED)
    assert rows["72"].state is JobState.PENDING and rows["72"].started_at is None
    assert rows["72"].reason == "PENDING BeginTime" and rows["72"].node is None
    assert rows["73"].state is JobState.RUNNING and rows["73"].ended_at is None
    assert rows["73"].started_at is not None and rows["73"].exit_code is None
    assert (rows["5"].state, rows["5"].exit_code) == (JobState.FAILED, 5)
    assert rows["5"].reason == "FAILED NonZeroExitCode"
    assert (rows["74"].state, rows["74"].exit_code) == (JobState.CANCELLED, 128 + 15)
    assert (rows["75"].state, rows["75"].exit_code) == (JobState.SUCCEEDED, 0)
    assert rows["75"].reason is None
    assert rows["75"].ended_at - rows["75"].started_at == 1


def test_sacct_last_row_of_a_requeued_job_wins_and_steps_are_skipped() -> None:
    rows = parse_sacct(SACCT_JOBCOMP_RECORDED)
    assert rows["6"][0] == "t-nf" and rows["6"][1].state is JobState.SUCCEEDED
    assert (rows["2"][1].state, rows["2"][1].exit_code) == (JobState.FAILED, 3)
    assert rows["3"][1].state is JobState.CANCELLED
    assert rows["71"][1].state is JobState.TIMEOUT and rows["71"][1].reason == "TIMEOUT"

    dbd = parse_sacct(SACCT_DBD_ROWS)
    assert set(dbd) == {"1236", "765096", "1235"}
    assert (dbd["1236"][1].state, dbd["1236"][1].exit_code) == (JobState.FAILED, 130)
    assert dbd["765096"][1].state is JobState.CANCELLED
    assert dbd["765096"][1].reason == "CANCELLED by 54386"
    assert dbd["1235"][1].state is JobState.PENDING and dbd["1235"][1].started_at is None


@pytest.mark.parametrize(("raw", "state"), [
    ("PENDING", JobState.PENDING), ("REQUEUED", JobState.PENDING),
    ("REQUEUE_HOLD", JobState.PENDING), ("REQUEUE_FED", JobState.PENDING),
    ("RESV_DEL_HOLD", JobState.PENDING), ("SPECIAL_EXIT", JobState.PENDING),
    ("CONFIGURING", JobState.RUNNING), ("RUNNING", JobState.RUNNING),
    ("COMPLETING", JobState.RUNNING), ("SUSPENDED", JobState.RUNNING),
    ("STOPPED", JobState.RUNNING), ("RESIZING", JobState.RUNNING),
    ("SIGNALING", JobState.RUNNING), ("STAGE_OUT", JobState.RUNNING),
    ("COMPLETED", JobState.SUCCEEDED), ("FAILED", JobState.FAILED),
    ("OUT_OF_MEMORY", JobState.FAILED), ("TIMEOUT", JobState.TIMEOUT),
    ("DEADLINE", JobState.TIMEOUT), ("NODE_FAIL", JobState.NODE_FAIL),
    ("BOOT_FAIL", JobState.NODE_FAIL), ("PREEMPTED", JobState.NODE_FAIL),
    ("LAUNCH_FAILED", JobState.NODE_FAIL), ("CANCELLED", JobState.CANCELLED),
    ("CANCELLED by 0", JobState.CANCELLED), ("REVOKED", JobState.CANCELLED),
    ("?", JobState.UNKNOWN), ("", JobState.UNKNOWN),
])
def test_every_slurm_state_maps(raw: str, state: JobState) -> None:
    assert map_state(raw) is state


def test_exit_code_encodings() -> None:
    assert exit_code_from_sacct("3:0") == 3
    assert exit_code_from_sacct("0:9") == 137
    assert exit_code_from_sacct("") is None
    assert exit_code_from_wait_status("1280") == 5
    assert exit_code_from_wait_status("9") == 137
    assert exit_code_from_wait_status("N/A") is None


def test_history_source_comes_from_the_config() -> None:
    assert history_mode_from_config(SCONTROL_CONFIG_RECORDED) == "jobcomp"
    dbd = SCONTROL_CONFIG_RECORDED.replace("accounting_storage/none", "accounting_storage/slurmdbd")
    assert history_mode_from_config(dbd) == "sacct"
    no_file = SCONTROL_CONFIG_RECORDED.replace("jobcomp/filetxt", "jobcomp/none")
    assert history_mode_from_config(no_file) == "none"


def golden_spec() -> JobSpec:
    return JobSpec(name="exp1-p0007-a1", command=("python3", "trial.py", "--x", "it's 3"),
                   workdir=Path("/runs/exp 1/p0007-a1"), env={"OMP_NUM_THREADS": "4", "TAG": "a b"},
                   time_limit_s=3601, cpus=4, gpus=2)


@pytest.mark.parametrize(("golden", "options"), [
    ("slurm-default.sh", {}),
    ("slurm-full.sh", {"partition": "gpu", "account": "proj-1", "qos": "normal",
                       "gpu_type": "a100", "requeue": True,
                       "extra_directives": ["#SBATCH --mem=8G", "#SBATCH --exclusive"]}),
    ("slurm-gpus.sh", {"gpu_option": "gpus"}),
])
def test_rendered_script_matches_golden(golden: str, options: dict) -> None:
    rendered = SlurmScheduler(**options).render(golden_spec())
    if os.environ.get("UPDATE_GOLDEN") == "1":
        (GOLDEN / golden).write_text(rendered)
    assert rendered == (GOLDEN / golden).read_text()


@pytest.mark.parametrize("options", [
    {"partition": "gpu; rm -rf /"}, {"account": "a b"}, {"qos": "q\n#SBATCH --x"},
    {"extra_directives": ["--mem=8G"]}, {"extra_directives": ["#SBATCH --mem=8G\necho hi"]},
    {"gpu_option": "cards"}, {"history": "db"},
])
def test_bad_options_are_refused(options: dict) -> None:
    with pytest.raises(ValueError):
        SlurmScheduler(**options)


@pytest.mark.parametrize("stdout", ["/runs/out-%j.txt", '/runs/a"b.txt', "relative.txt"])
def test_paths_that_sbatch_would_reinterpret_are_refused(stdout: str) -> None:
    spec = JobSpec(name="n1", command=("true",), workdir=Path("/runs/x"), stdout=Path(stdout))
    with pytest.raises(ValueError, match="path"):
        SlurmScheduler().render(spec)


def test_time_limits_round_up_to_whole_minutes() -> None:
    assert [time_limit_minutes(s) for s in (1, 60, 61, 3600)] == [1, 1, 2, 60]
    with pytest.raises(ValueError):
        time_limit_minutes(0)


def test_nothing_to_ask_runs_no_command() -> None:
    sched = SlurmScheduler()
    assert sched.status([]) == {} and sched.find_by_name([]) == {}
    sched.cancel([])
    assert not sched.calls
