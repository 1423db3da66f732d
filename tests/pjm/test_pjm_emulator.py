"""The PJM emulator prints what the reference documents, and runs jobs as real processes."""
from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scheduler_adapters.emulators.pjm import VERBOSE_HEADER, PJMEmulator, process_alive
from scheduler_adapters.pjm import resource_groups

from .pjm_helpers import wait_state

Cmd = Callable[..., subprocess.CompletedProcess[str]]
SUBMITTED = re.compile(r"^\[INFO\] PJM 0000 pjsub Job (\d+) submitted\.\n$")


def write_job(directory: Path, body: str, *directives: str, name: str = "job.sh") -> Path:
    script = directory / name
    script.write_text("#!/bin/bash\n" + "".join(f"#PJM {d}\n" for d in directives) + body + "\n")
    return script


def submit(cmd: Cmd, script: Path, *options: str) -> str:
    out = cmd("pjsub", *options, str(script))
    match = SUBMITTED.match(out.stdout)
    assert out.returncode == 0 and match, out
    return match.group(1)


def test_submit_lines_and_z_jid(emulator_cmd: Cmd, tmp_path: Path) -> None:
    script = write_job(tmp_path, "true", "-L rscgrp=cx-share", "-L gpu=1")
    first = submit(emulator_cmd, script)
    out = emulator_cmd("pjsub", "-z", "jid", str(script))
    assert out.returncode == 0 and out.stdout == f"{int(first) + 1}\n"


def test_submit_errors_have_the_documented_form(emulator_cmd: Cmd, tmp_path: Path) -> None:
    script = write_job(tmp_path, "true")
    cases = {
        ("-L", "rscgrp=fx-debug"):
            "[ERR.] PJM 0020 pjsub Cannot open the file (rscgrp=fx-debug) : 2.\n",
        ("-L", "gpu=2"): "[ERR.] PJM 0057 pjsub gpu=2 is greater than the upper limit (1).\n",
        ("-L", "elapse=169:00:00"):
            "[ERR.] PJM 0057 pjsub elapse=169:00:00 is greater than the upper limit (168:00:00).\n",
        ("-X",): "[ERR.] PJM 0004 pjsub Invalid option: -X\n",       # not on Flow
    }
    for options, stderr in cases.items():
        out = emulator_cmd("pjsub", *options, str(script))
        assert (out.returncode, out.stdout, out.stderr) == (1, "", stderr)


def test_default_tables_per_profile(pjm: PJMEmulator, emulator_cmd: Cmd, tmp_path: Path) -> None:
    script = write_job(tmp_path, "sleep 30", "-L rscgrp=cx-share", "-L elapse=1:00:00",
                       name="job.sh")
    jid = submit(emulator_cmd, script)
    wait_state(pjm, jid, ("RUN",))
    flow = emulator_cmd("pjstat").stdout.splitlines()
    # K / FX100 layout: summary block, blank line, then the narrow table
    assert flow[:4] == [
        "  ACCEPT QUEUED  STGIN  READY RUNING RUNOUT STGOUT   HOLD  ERROR   TOTAL",
        "       0      0      0      0      1      0      0      0      0       1",
        "s      0      0      0      0      1      0      0      0      0       1", ""]
    assert flow[4] == ("JOB_ID     JOB_NAME   MD ST  USER     START_DATE      ELAPSE_LIM "
                       "NODE_REQUIRE")
    assert re.fullmatch(rf"{jid}    job\.sh     NM RUN user1    \d\d/\d\d \d\d:\d\d:\d\d  "
                        r"0001:00:00 1", flow[5])

    pjm.configure(profile="fugaku")
    fugaku = emulator_cmd("pjstat").stdout.splitlines()
    assert fugaku[0] == ""
    assert fugaku[1] == ("JOB_ID   JOB_NAME  MD  ST   USER   START_DATE      ELAPSE_LIM  "
                         "NODE_REQUIRE  VNODE  CORE  V_MEM")
    assert re.fullmatch(rf"{jid}  job\.sh    NM  RUN  user1  \d\d/\d\d \d\d:\d\d:\d\d  "
                        r"0001:00:00  1             -      -     -", fugaku[2])


def test_verbose_history_of_every_ending(pjm: PJMEmulator, emulator_cmd: Cmd,
                                         tmp_path: Path) -> None:
    ok = submit(emulator_cmd, write_job(tmp_path, "true", "-N ok-job", name="a.sh"))
    bad = submit(emulator_cmd, write_job(tmp_path, "exit 3", "-N bad-job", name="b.sh"))
    slow = submit(emulator_cmd, write_job(tmp_path, "sleep 30", "-N slow-job-long-name",
                                          "-L elapse=1", name="c.sh"))
    for jid in (ok, bad, slow):
        wait_state(pjm, jid, ("EXT",))
    lines = emulator_cmd("pjstat", "-v", "-H").stdout.splitlines()
    assert lines[0] == VERBOSE_HEADER                 # verbatim, trailing blanks included
    assert all(len(line) == len(VERBOSE_HEADER) for line in lines)
    by_id = {line.split()[0]: line for line in lines[1:]}
    tail = r"127 \d\d/\d\d \d\d:\d\d:\d\d cx-share "
    assert re.search(r" RUN 0   0   0  " + tail + r"- {15}$", by_id[ok])
    assert re.search(r" RUN 3   0   0  " + tail + r"- {15}$", by_id[bad])
    assert re.search(r" RUN 0   11  24 " + tail + "ELAPSE LIMIT EXC$", by_id[slow])
    assert by_id[slow].split()[1] == "slow-job-l"      # names cut to 10 like on Fugaku
    assert emulator_cmd("pjstat", "-v").stdout.splitlines() == [VERBOSE_HEADER]


def test_choose_filter_and_detail(pjm: PJMEmulator, emulator_cmd: Cmd, tmp_path: Path) -> None:
    jid = submit(emulator_cmd, write_job(tmp_path, "exit 5", "-N a-rather-long-job-name"))
    other = submit(emulator_cmd, write_job(tmp_path, "true", "-N other", name="o.sh"))
    wait_state(pjm, jid, ("EXT",))
    wait_state(pjm, other, ("EXT",))
    out = emulator_cmd("pjstat", "-H", "-v", "--choose", "jid,jnam,st,ec,pc,ermsg",
                       "--filter", "jnam=a-rather-long-job-name").stdout
    assert out == ("JOB_ID     JOB_NAME   ST  EC  PC  REASON          \n"
                   f"{jid}    a-rather-l EXT 5   0   -               \n")
    detail = emulator_cmd("pjstat", "-H", "-S", jid).stdout
    assert " JOB NAME                    : a-rather-long-job-name\n" in detail
    assert " STATE                       : EXT\n" in detail
    assert " EXIT CODE                   : 5\n" in detail


def test_run_limit_keeps_jobs_queued(pjm: PJMEmulator, emulator_cmd: Cmd,
                                     tmp_path: Path) -> None:
    pjm.configure(run_limit=1)
    first = submit(emulator_cmd, write_job(tmp_path, "sleep 1", name="1.sh"))
    second = submit(emulator_cmd, write_job(tmp_path, "true", name="2.sh"))
    out = emulator_cmd("pjstat", "-v", "--choose", "jid,st,ermsg").stdout.splitlines()
    assert out[2] == f"{second}    QUE RUNLIMIT EXCEED "
    assert wait_state(pjm, second, ("EXT",))["start_ts"] >= pjm.jobs()[first]["end_ts"]


def test_submit_limit(pjm: PJMEmulator, emulator_cmd: Cmd, tmp_path: Path) -> None:
    pjm.configure(submit_limit=1, run_limit=0)
    script = write_job(tmp_path, "true")
    submit(emulator_cmd, script)
    out = emulator_cmd("pjsub", str(script))
    assert out.returncode == 1 and out.stderr == (
        "[ERR.] PJM 0049 pjsub The number of submitted jobs is greater than the upper "
        "limit (1).\n")


def test_pjdel_output(pjm: PJMEmulator, emulator_cmd: Cmd, tmp_path: Path) -> None:
    jid = submit(emulator_cmd, write_job(tmp_path, "sleep 30"))
    job = wait_state(pjm, jid, ("RUN",))
    out = emulator_cmd("pjdel", jid, "999")
    assert out.stdout == f"[INFO] PJM 0100 pjdel Accepted job {jid}.\n"
    assert out.stderr == "[ERR.] PJM 0140 pjdel Job 999 does not exist.\n"
    assert out.returncode == 1
    assert wait_state(pjm, jid, ("CCL",))["pc"] == 1
    assert not process_alive(job["pgid"])


def test_jobs_run_detached_with_pjm_environment(pjm: PJMEmulator, emulator_cmd: Cmd,
                                                tmp_path: Path) -> None:
    body = ('echo "$$ $(cut -d" " -f5,6 /proc/$$/stat) $PJM_JOBID $PJM_O_WORKDIR $MYVAR"; '
            'echo oops >&2')
    jid = submit(emulator_cmd, write_job(tmp_path, body, "-x MYVAR=hello", "-o out.%j", "-j"))
    wait_state(pjm, jid, ("EXT",))
    pid, pgid, sid, env_jid, workdir, myvar = (tmp_path / f"out.{jid}").read_text().split()[:6]
    assert pid == pgid == sid                    # own session and process group
    assert (env_jid, workdir, myvar) == (jid, str(tmp_path), "hello")
    assert (tmp_path / f"out.{jid}").read_text().endswith("oops\n")   # -j merged stderr


def test_elapse_kills_a_job_that_ignores_sigxcpu(pjm: PJMEmulator, emulator_cmd: Cmd,
                                                  tmp_path: Path) -> None:
    jid = submit(emulator_cmd, write_job(tmp_path, "trap '' XCPU; sleep 30", "-L elapse=1"))
    job = wait_state(pjm, jid, ("EXT",), timeout=10)
    assert (job["pc"], job["sn"], job["reason"]) == (11, 24, "ELAPSE LIMIT EXCEEDED")
    assert job["end_ts"] - job["start_ts"] < 5     # SIGKILL after the 1 s grace


def test_concurrent_submissions_get_distinct_ids(emulator_cmd: Cmd, tmp_path: Path) -> None:
    script = write_job(tmp_path, "true")
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: submit(emulator_cmd, script), range(8)))
    assert len(set(ids)) == 8


def test_failing_pjstat_fault(pjm: PJMEmulator, emulator_cmd: Cmd) -> None:
    pjm.inject("pjstat_fail", 2)
    for _ in range(2):
        out = emulator_cmd("pjstat")
        assert out.returncode == 1 and out.stderr.startswith("[ERR.] PJM 0300 pjstat ")
    assert emulator_cmd("pjstat").returncode == 0


def test_unwritable_output_file_ends_with_pc_16(pjm: PJMEmulator, emulator_cmd: Cmd,
                                                tmp_path: Path) -> None:
    jid = submit(emulator_cmd, write_job(tmp_path, "true", "-o /nonexistent/dir/out"))
    job = wait_state(pjm, jid, ("EXT",))
    assert (job["pc"], job["reason"], job["ec"]) == (16, "FILE IO ERROR", None)


def test_outage_fails_every_listed_command_until_it_is_over(pjm: PJMEmulator,
                                                            emulator_cmd: Cmd) -> None:
    pjm.outage(30, commands=("pjstat", "pjdel"))
    for command in ("pjstat", "pjdel"):
        out = emulator_cmd(command, "1000000")
        assert (out.returncode, out.stderr) == (
            1, f"[ERR.] PJM 0003 {command} Cannot connect to the job manager. Try again later.\n")
    pjm.outage(0)
    assert emulator_cmd("pjstat").returncode == 0


def test_resource_listing_names_the_profiles_groups(pjm: PJMEmulator, emulator_cmd: Cmd) -> None:
    out = emulator_cmd("pjstat", "--rsc")
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and lines[0].split() == ["RSCUNIT", "RSCUNIT_SIZE", "RSCGRP",
                                                         "RSCGRP_SIZE"]
    assert lines[1].split()[:2] == ["cx", "[ENABLE,START]"]
    assert resource_groups(out.stdout) == {"cx-interactive", "cx-debug", "cx-share", "cx-single",
                                           "cx-small", "cx-middle", "cx-large"}
