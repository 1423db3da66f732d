"""The PJM adapter's parsers on the verbatim outputs quoted in shared/reference/schedulers.md,
and the rendered job script against its golden file."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler_adapters.base import (
    JobRejected,
    JobSpec,
    JobState,
    SchedulerMisconfigured,
    SchedulerUnavailable,
    SubmitLimitReached,
)
from scheduler_adapters.commands import CommandResult
from scheduler_adapters.emulators.pjm import column_spans, fixed_row
from scheduler_adapters.pjm import (
    PJMRow,
    PJMScheduler,
    format_elapse,
    map_state,
    parse_pjsub,
    parse_table,
    rows_from_table,
)

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def result(stdout: str = "", stderr: str = "", rc: int = 0) -> CommandResult:
    return CommandResult(("pjsub", "job.sh"), rc, stdout, stderr)


@pytest.mark.parametrize("stdout, jid", [
    ("[INFO] PJM 0000 pjsub Job 6291500 submitted.\n", "6291500"),    # fugaku-api
    ("[INFO] PJM 0000 pjsub Job 1334958 submitted.\n", "1334958"),    # seisflows, Wisteria
    ("pjsub: [INFO] PJM 0000 pjsub Job 543330 submitted.\n", "543330"),  # nap, FX100 prefix
    ("[INFO] PJM 0000 pjsub Job 932267_1 submitted.\n", "932267_1"),  # Flow step job
    (" [INFO.] PJM 0000 pjsub Job 64856_0 submitted.\n", "64856_0"),  # Fugaku guide typo
    ("6291500\n", "6291500"),                                          # pjsub -z jid
])
def test_submit_output_gives_the_job_id(stdout: str, jid: str) -> None:
    assert parse_pjsub(result(stdout)) == jid


def test_submitted_line_wins_over_a_nonzero_exit() -> None:
    assert parse_pjsub(result("[INFO] PJM 0000 pjsub Job 7 submitted.\n", rc=1)) == "7"


@pytest.mark.parametrize("stderr, rc, error", [
    ("[ERR.] PJM 0057 pjsub node=32 is greater than the upper limit (24).", 1, JobRejected),
    ("[ERR.] PJM 0007 pjsub Staging option error (3)\nRefer to the staging information file."
     " (J5333b14881e31ebcd2000001.sh.s2366652)", 0, JobRejected),             # K: rc 0
    ("[ERR.] PJM 0020 pjsub Cannot open the file (rscgrp=fx-debug) : 2.", 1,
     SchedulerMisconfigured),
    ("[ERR.] PJM 0070 pjsub No execute permission: pjsub-bulk.", 1, JobRejected),
    ("[ERR.] PJM 0049 pjsub The number of submitted jobs is greater than the upper limit (300).",
     1, SubmitLimitReached),
    ("[ERR.] PJM 0003 pjsub Cannot connect to the job manager. Try again later.", 1,
     SchedulerUnavailable),
    ("", 1, SchedulerUnavailable),                     # crashed without a word
    ("Segmentation fault", 139, SchedulerUnavailable),
    ("", 0, SchedulerUnavailable),                     # rc 0 but no id: cannot tell
])
def test_submit_errors_are_classified(stderr: str, rc: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_pjsub(result(stderr=stderr, rc=rc))


FUGAKU_DEFAULT = """
JOB_ID  JOB_NAME  MD  ST   USER   START_DATE      ELAPSE_LIM  NODE_REQUIRE  VNODE  CORE  V_MEM
238     job.sh    NM  RUN  user1  11/17 09:01:41  0001:00:00  12:2x3x2      -      -     -
239     bulk.sh   BU  RUN  user1  11/17 09:01:42  0001:00:00  12:2x3x2      -      -     -
240     step.sh   ST  RUN  user1  11/17 09:01:42  -           -             -      -     -
241     job2.sh   NM  RUN  user1  11/17 09:01:42  0001:00:00  2             -      -     -
"""

K_WITH_SUMMARY = """\
  ACCEPT QUEUED  STGIN  READY RUNING RUNOUT STGOUT   HOLD  ERROR   TOTAL
       0      0      0      0      1      0      0      0      0       1
s      0      0      0      0      1      0      0      0      0       1

JOB_ID     JOB_NAME   MD ST  USER     START_DATE      ELAPSE_LIM NODE_REQUIRE
112111     test.sh    NM QUE test     10/29 18:42:44  0024:00:00 1
"""

VERBOSE_PENDING = (
    "JOB_ID     JOB_NAME   MD ST  USER     GROUP    START_DATE      ELAPSE_TIM ELAPSE_LIM    "
    "        NODE_REQUIRE    VNODE  CORE V_MEM        V_POL E_POL RANK      LST EC  PC  SN PRI "
    "ACCEPT         RSC_GRP  REASON          \n"
    "6291500    job1.sh    NM RNA a03010   rccs-aot (04/12 11:25)   0000:00:00 0000:01:00      "
    "      12              -      -    -            -     -     bychip    QUE 0   0   0  127 "
    "04/12 11:25:50 small    -               \n")

VERBOSE_HISTORY = """\
JOB_ID     JOB_NAME   MD ST  USER     GROUP    START_DATE      ELAPSE_TIM ELAPSE_LIM            NODE_REQUIRE    VNODE  CORE V_MEM        V_POL E_POL RANK      LST EC  PC  SN PRI ACCEPT         RSC_GRP  REASON
49047829   lucj-qpy-b NM EXT u13450   ra010014 06/01 15:03:44  0000:08:27 0000:15:00            1               -      -    -            -     -     bychip    RNO 0   0   0  127 06/01 15:03:14 small    -
49047939   lucj-qpy-b NM EXT u13450   ra010014 06/01 15:22:46  0000:15:02 0000:15:00            1               -      -    -            -     -     bychip    RNO 0   11  24 127 06/01 15:22:16 small    ELAPSE LIMIT EXC
"""

AUTOSUBMIT_CHOOSE = """\
JOB_ID     ST  REASON                         
167727     EXT COMPLETED               
167736     HLD ASHOLD               
167739     RJT -  
"""

GENKAI_BULK = """\
JOB_ID      JOB_NAME  MD  STATUS  USER        RSCGROUP     START_DATE             ELAPSE    NODE  CORE  GPU  POINT
3209914     bulk1.sh  BU  RUN     ku40000105  a-batch-low  -                      -            -     1    -      -
3209914[1]  bulk1.sh  BU  RUN     ku40000105  a-batch-low  2025/06/13 17:53:43    00:00:01     -     1    -      1
"""

# seisflows system/pjm.py docstring (Wisteria/BDEC-01 wrapper), docstring indentation removed
WISTERIA = """\
Wisteria/BDEC-01 scheduled stop time: 2023/03/31(Fri) 09:00:00 (Remain: 28days 21:34:40)

JOB_ID       JOB_NAME   STATUS  PROJECT    RSCGROUP          START_DATE        ELAPSE           TOKEN           NODE  GPU
1334861      STDIN      END     gr58       interactive-o_n1  03/02 11:16:33    00:02:14             -              1    -
"""


def test_fugaku_default_table() -> None:
    rows = rows_from_table(FUGAKU_DEFAULT)
    assert [(r.jid, r.st, r.name) for r in rows] == [
        ("238", "RUN", "job.sh"), ("239", "RUN", "bulk.sh"), ("240", "RUN", "step.sh"),
        ("241", "RUN", "job2.sh")]
    assert {map_state(r) for r in rows} == {JobState.RUNNING}


def test_summary_block_is_skipped() -> None:
    [row] = rows_from_table(K_WITH_SUMMARY)
    assert (row.jid, row.st, row.name, map_state(row)) == ("112111", "QUE", "test.sh",
                                                           JobState.PENDING)


def test_verbose_row_with_blank_in_start_date() -> None:
    [row] = rows_from_table(VERBOSE_PENDING)
    assert row == PJMRow(jid="6291500", st="RNA", ec=0, pc=0, reason="-", name="job1.sh",
                         group="small")
    assert map_state(row) is JobState.RUNNING


def test_history_rows_success_and_elapse_limit() -> None:
    done, timed_out = rows_from_table(VERBOSE_HISTORY)
    assert (done.ec, done.pc, map_state(done)) == (0, 0, JobState.SUCCEEDED)
    assert (timed_out.pc, timed_out.reason) == (11, "ELAPSE LIMIT EXC")
    assert map_state(timed_out) is JobState.TIMEOUT


def test_choose_fixture_with_reason_column() -> None:
    rows = rows_from_table(AUTOSUBMIT_CHOOSE)
    assert [(r.jid, r.st, r.reason) for r in rows] == [
        ("167727", "EXT", "COMPLETED"), ("167736", "HLD", "ASHOLD"), ("167739", "RJT", "-")]
    # EXT alone is not a success: without EC the outcome is unknown to us, so not SUCCEEDED
    assert [map_state(r) for r in rows] == [JobState.FAILED, JobState.PENDING, JobState.FAILED]


def test_site_wrapped_table_with_status_column_and_subjobs() -> None:
    rows = rows_from_table(GENKAI_BULK)
    assert [(r.jid, r.st) for r in rows] == [("3209914", "RUN"), ("3209914[1]", "RUN")]


def test_wisteria_wrapper_table_with_banner_and_word_states() -> None:
    [row] = rows_from_table(WISTERIA)
    assert (row.jid, row.st, row.name) == ("1334861", "END", "STDIN")
    assert parse_table(WISTERIA)[0]["START_DATE"] == "03/02 11:16:33"
    # END carries no exit code in this table: not taken for a success
    assert map_state(row) is JobState.FAILED


def test_no_header_means_no_rows() -> None:
    assert rows_from_table("") == []
    assert rows_from_table("  ACCEPT QUEUED\n       0      0\n") == []


@pytest.mark.parametrize("row, state", [
    (PJMRow("1", "ACC"), JobState.PENDING),
    (PJMRow("1", "HLD", reason="ASHOLD"), JobState.PENDING),
    (PJMRow("1", "QUEUED"), JobState.PENDING),                       # Wisteria word
    (PJMRow("1", "RNO"), JobState.RUNNING),                          # finishing, not done
    (PJMRow("1", "SPD"), JobState.RUNNING),
    (PJMRow("1", "EXT", ec=0, pc=0), JobState.SUCCEEDED),
    (PJMRow("1", "END", ec=0), JobState.SUCCEEDED),                  # Wisteria, no PC column
    (PJMRow("1", "EXT", ec=3, pc=0), JobState.FAILED),
    (PJMRow("1", "EXT", ec=None, pc=0), JobState.FAILED),            # killed by a signal
    (PJMRow("1", "EXT", ec=0, pc=11, reason="ELAPSE LIMIT EXC"), JobState.TIMEOUT),
    (PJMRow("1", "EXT", ec=0, pc=12), JobState.FAILED),              # memory limit
    (PJMRow("1", "EXT", ec=0, pc=20), JobState.NODE_FAIL),
    (PJMRow("1", "ERR", pc=20), JobState.NODE_FAIL),
    (PJMRow("1", "CCL", ec=None, pc=20), JobState.NODE_FAIL),        # deleted after ERR
    (PJMRow("1", "EXT", ec=0, pc=18), JobState.NODE_FAIL),           # pre-empted
    (PJMRow("1", "ERR", pc=0), JobState.FAILED),
    (PJMRow("1", "CCL", pc=1), JobState.CANCELLED),
    (PJMRow("1", "EXT", pc=1), JobState.CANCELLED),
    (PJMRow("1", "CCL", pc=6), JobState.CANCELLED),                  # step dependency
    (PJMRow("1", "RJT", pc=2), JobState.FAILED),
    (PJMRow("1", "XYZ"), JobState.UNKNOWN),
])
def test_state_mapping(row: PJMRow, state: JobState) -> None:
    assert map_state(row) is state


def test_elapse_format() -> None:
    assert format_elapse(168 * 3600) == "168:00:00"
    assert format_elapse(61) == "0:01:01"
    with pytest.raises(ValueError):
        format_elapse(0)


def golden_spec(workdir: Path) -> JobSpec:
    return JobSpec(name="exp1-p0007-a1", command=("python3", "train.py", "--lr", "1e-3",
                                                  "a b;c"),
                   workdir=workdir, env={"ORCH_RESULT_FILE": "/scratch/u/run 1/result.json",
                                         "QUOTE": "it's"},
                   time_limit_s=2 * 3600 + 30, gpus=1)


def test_rendered_script_matches_golden() -> None:
    sched = PJMScheduler(rscgrp="cx-share", rscunit="cx",
                         extra_directives=["#PJM -L jobenv=singularity"])
    text = sched.render(golden_spec(Path("/scratch/u/exp1/p0007-a1")))
    assert text == (GOLDEN / "pjm.sh").read_text()


def test_rendered_merged_script_matches_golden() -> None:
    sched = PJMScheduler(rscgrp="cx-small", gpus=4, merge_output=True)
    text = sched.render(golden_spec(Path("/scratch/u/exp1/p0007-a1")))
    assert text == (GOLDEN / "pjm-merged.sh").read_text()


def test_paths_that_directives_cannot_carry_are_rejected() -> None:
    sched = PJMScheduler(rscgrp="cx-share")
    with pytest.raises(SchedulerMisconfigured, match="stdout path"):
        sched.render(golden_spec(Path("/scratch/u/my runs/a1")))


@pytest.mark.parametrize("kwargs", [
    {"rscgrp": "cx share"}, {"rscgrp": "cx-share", "extra_directives": ["-L node=2"]},
    {"rscgrp": "cx-share", "extra_directives": ["#PJM -L node=2; rm -rf /"]},
    {"rscgrp": "cx-share", "extra_directives": ["#PJM -L node=2\n#PJM -X"]},
    {"rscgrp": "cx-share", "gpus": -1}, {"rscgrp": "cx-share", "history_days": 0},
])
def test_bad_options_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PJMScheduler(**kwargs)  # type: ignore[arg-type]


CHOOSE_HEADER = "JOB_ID     JOB_NAME   ST  EC  PC  REASON          "
reasons = st.from_regex(r"-|[A-Z]{1,8}( [A-Z]{1,6}){0,2}", fullmatch=True)


@given(rows=st.lists(st.fixed_dictionaries({
    "JOB_ID": st.integers(1, 10**10 - 1).map(str),
    "JOB_NAME": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True),
    "ST": st.sampled_from(["QUE", "RUN", "RNO", "EXT", "CCL", "ERR"]),
    "EC": st.one_of(st.just("-"), st.integers(0, 255).map(str)),
    "PC": st.sampled_from(["0", "1", "11", "20"]),
    "REASON": reasons}), max_size=5))
def test_parser_reads_what_the_emulator_prints(rows: list[dict[str, str]]) -> None:
    """The emulator's fixed-width rows, read back by the adapter, give the same values
    (the job name cut to 10 characters, REASON to 16, as on Fugaku)."""
    spans = column_spans(CHOOSE_HEADER)
    text = "\n".join([CHOOSE_HEADER, *(fixed_row(spans, r) for r in rows)])
    parsed = rows_from_table(text)
    assert [(p.jid, p.name, p.st, p.reason) for p in parsed] == [
        (r["JOB_ID"], r["JOB_NAME"][:10], r["ST"], r["REASON"][:16].rstrip()) for r in rows]
    assert [p.ec for p in parsed] == [None if r["EC"] == "-" else int(r["EC"]) for r in rows]
