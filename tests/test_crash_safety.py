"""Crash safety: one master at a time, SIGKILL at any instant loses nothing, SIGTERM is clean."""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHAOS_PARAMS = ('x = { values = [0, 1, 2, 3, 4, 5] }\ny = { values = [0, 1, 2, 3, 4, 5] }\n'
                'z = { values = [0, 1, 2, 3, 4] }')


def start_master(path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path), "--quiet"],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def chaos_config(write_config, name: str, record: Path, kind: str, options: str,
                 search_extra: str = ""):
    path = write_config(f"{name}.toml", name=name, cap=3, poll=0.05, parameters=CHAOS_PARAMS,
                        strategy="dsice", scheduler_extra=options, search_extra=search_extra,
                        command="{python} -m jobs.examples.synthetic --center x=4 --center y=1 "
                                f"--center z=3 --sleep 0.15 --record {record}")
    path.write_text(path.read_text().replace('kind = "local"', f'kind = "{kind}"'))
    return path


def outcome_sequence(db: Path) -> tuple[list[tuple], list[tuple]]:
    """The search's decisions: points per round with their values, and the stages."""
    con = sqlite3.connect(db)
    points = con.execute("select p.key, p.round, e.value from points p join evaluations e "
                         "on e.point_id = p.id order by p.round, p.key").fetchall()
    stages = con.execute("select number, level, base, points, best, best_value, moved "
                         "from stages order by number").fetchall()
    return points, stages


def wait_all_jobs_ended(db: Path, timeout: float = 20) -> None:
    """Jobs outlive a killed master; let the stragglers finish before counting runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["pgrep", "-f", "scheduler_adapters.local_runner " + str(db.parent)],
                             capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(0.2)


def run_chaos(write_config, tmp_path: Path, kills_wanted: int, kind: str = "local",
              options: str = "", search_extra: str = "", compare: bool = True) -> None:
    """Kill -9 the master again and again (at random instants and at the dangerous places),
    restart it each time; the result must equal an uninterrupted run's (unless ``compare`` is
    False: a search whose decisions depend on when jobs end), with no point run twice."""
    expected = None
    if compare:
        ref = chaos_config(write_config, "ref", tmp_path / "ref-runs.txt", kind, options,
                           search_extra)
        assert start_master(ref).wait(300) == 0
        expected = outcome_sequence(tmp_path / "work" / "state.db")
        (tmp_path / "work").rename(tmp_path / "ref-work")

    record = tmp_path / "runs.txt"
    path = chaos_config(write_config, "chaos", record, kind, options, search_extra)
    db = tmp_path / "work" / "state.db"
    rng = random.Random(1234)
    crash_points = ["after-intent", "after-submit", "before-evaluation"]
    kills = 0
    for i in range(kills_wanted * 3 // 2):
        if kills >= kills_wanted:
            break
        if i % 3 == 0:     # a crash exactly at a dangerous place
            env = {"ORCH_CRASH_AT": f"{crash_points[i % len(crash_points)]}:{rng.randint(1, 3)}"}
            proc = start_master(path, env)
            kills += proc.wait(120) == -signal.SIGKILL
        else:              # a kill at a random instant
            proc = start_master(path)
            time.sleep(rng.uniform(0.05, 1.2))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(120)
    assert kills >= kills_wanted
    final = start_master(path)
    assert final.wait(300) == 0, final.stderr.read() if final.stderr else ""
    assert _finished(db)
    if expected is None:
        expected = outcome_sequence(db)
    assert outcome_sequence(db) == expected
    wait_all_jobs_ended(db)
    runs = Counter(json.dumps(json.loads(line.split(" ", 3)[3]), sort_keys=True)
                   for line in record.read_text().splitlines())
    measured = len(expected[0])
    assert len(runs) == measured and set(runs.values()) == {1}, runs     # no point ran twice
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from attempts where state = 'succeeded'").fetchone()[0] \
        == measured
    # A kill in the middle of a local submit (job recorded, supervisor not yet spawned) loses
    # that job, never duplicates it: it ends as an infrastructure failure and is retried.
    lost = con.execute("select failure_kind, reason from attempts where state != 'succeeded'"
                       ).fetchall()
    assert all(kind == "infra" for kind, _ in lost), lost
    assert len(lost) <= 3, lost
    attempts = con.execute("select count(*) from attempts").fetchone()[0]
    assert con.execute("select count(distinct job_id) from attempts").fetchone()[0] == attempts
    assert len(expected[1]) >= 2                                         # several stages


@pytest.mark.slow
def test_chaos_kill9_thirty_times_loses_nothing(write_config, tmp_path):
    # Synchronous rounds: the history must equal an uninterrupted run's. (Refill mode, where
    # decisions follow completion order, replays its journal: tests/test_eager_chaos.py.)
    run_chaos(write_config, tmp_path, kills_wanted=30, search_extra='mode = "sync"')


@pytest.mark.slow
@pytest.mark.slurm
def test_chaos_on_real_slurm(write_config, tmp_path):
    if not os.environ.get("SLURM_CONF"):
        if os.environ.get("REQUIRE_SLURM") == "1":
            pytest.fail("REQUIRE_SLURM=1 but Slurm is not running (scripts/slurm-start.sh)")
        pytest.skip("no Slurm: eval \"$(bash scripts/slurm-start.sh)\" to run this")
    run_chaos(write_config, tmp_path, kills_wanted=10, kind="slurm",
              options='options = { partition = "debug" }', search_extra='mode = "sync"')


def _finished(db: Path) -> bool:
    try:
        return sqlite3.connect(db).execute("select state from experiments").fetchone()[0] == "finished"
    except sqlite3.Error:
        return False


def test_two_starts_at_the_same_instant(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2, 3, 4, 5] }', cap=2,
                        command="{python} -m jobs.examples.synthetic --sleep 0.3")
    procs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path)],
                              cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    codes = sorted(p.wait(60) for p in procs)
    assert codes == [0, 3], [p.stderr.read() for p in procs]
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    assert con.execute("select count(*) from attempts").fetchone()[0] == 6


def test_sigterm_stops_cleanly_and_jobs_keep_running(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2, 3] }', cap=4,
                        command="{python} -m jobs.examples.synthetic --sleep 2")
    proc = start_master(path)
    db = tmp_path / "work" / "state.db"
    deadline = time.time() + 20
    while time.time() < deadline:
        if _count(db, "select count(*) from attempts where job_id is not null") == 4:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    con = sqlite3.connect(db)
    assert con.execute("select released from lease").fetchone()[0] == 1
    assert con.execute("select state from experiments").fetchone()[0] == "running"
    assert con.execute("select count(*) from evaluations").fetchone()[0] == 0   # jobs untouched
    assert start_master(path).wait(60) == 0
    assert con.execute("select count(*) from attempts").fetchone()[0] == 4    # re-attached
    assert con.execute("select count(*) from evaluations where value is not null").fetchone()[0] == 4


def test_dead_master_lease_is_taken_over_at_once(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1] }',
                        command="{python} -m jobs.examples.synthetic --sleep 0.5")
    proc = start_master(path)
    db = tmp_path / "work" / "state.db"
    deadline = time.time() + 20
    while not (db.exists() and _has_lease(db)) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = start_master(path)      # the lease's pid is dead: no waiting for a timeout
    assert again.wait(60) == 0
    assert _finished(db)


def _count(db: Path, sql: str) -> int:
    """A count from a database that may not exist yet (the master is starting)."""
    try:
        return sqlite3.connect(db).execute(sql).fetchone()[0] if db.exists() else 0
    except sqlite3.Error:
        return 0


def _has_lease(db: Path) -> bool:
    return _count(db, "select count(*) from lease") == 1


def _process_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def test_expired_heartbeat_is_taken_over_and_old_owner_exits(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2, 3] }', cap=1,
                        command="{python} -m jobs.examples.synthetic --sleep 0.5",
                        extra="")
    # 6 s: well beyond a start-up of the second master on a loaded machine (2-3 s at load 13).
    text = path.read_text().replace('work_dir = "work"', 'work_dir = "work"\nlease_timeout = 6')
    path.write_text(text)
    # The master freezes itself between two transactions, as on a hung node. (Frozen inside
    # one, it would hold SQLite's lock: only the node's death, which frees it, unblocks others.)
    old = start_master(path, {"ORCH_CRASH_AT": "cycle:3", "ORCH_CRASH_SIGNAL": "SIGSTOP"})
    db = tmp_path / "work" / "state.db"
    deadline = time.time() + 30
    while _process_state(old.pid) != "T":
        assert time.time() < deadline, "the master did not freeze"
        time.sleep(0.05)
    try:
        con = sqlite3.connect(db)
        # A live pid on this host: only the heartbeat's age lets a new master in.
        assert start_master(path).wait(30) == 3
        time.sleep(6.5)
        new = start_master(path)
        deadline = time.time() + 30
        while _count(db, f"select count(*) from lease where pid = {new.pid}") == 0:
            assert time.time() < deadline, "the new master did not take the lease"
            time.sleep(0.05)
        evaluations_before = con.execute("select count(*) from evaluations").fetchone()[0]
    finally:
        old.send_signal(signal.SIGCONT)
    assert old.wait(30) == 5                  # noticed the takeover, exited without writing
    assert new.wait(60) == 0
    assert _finished(db)
    assert evaluations_before <= 4


def test_detach_and_stop(write_config, cli, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2, 3, 4, 5, 6, 7] }', cap=1,
                        command="{python} -m jobs.examples.synthetic --sleep 0.5")
    proc = cli("start", str(path), "--detach")
    assert proc.returncode == 0 and "pid" in proc.stdout
    pid_file = tmp_path / "work" / "master.pid"
    deadline = time.time() + 20
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.05)                      # written once the daemon holds the lease
    pid = int(pid_file.read_text())
    os.kill(pid, 0)
    db = tmp_path / "work" / "state.db"
    deadline = time.time() + 20
    while _count(db, "select count(*) from attempts") == 0 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 20
    while pid_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert not pid_file.exists()
    assert cli("start", str(path)).returncode == 0
    assert _finished(tmp_path / "work" / "state.db")
