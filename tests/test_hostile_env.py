"""A hostile environment: read-only state, unsafe work directories, planted links."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of our own, which a test may remount read-only (needs root)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs",
                                            str(mount)], capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_admin_writes_on_a_read_only_database_are_one_line(write_config, cli, small_fs):
    path = write_config(parameters="x = { values = [0, 1, 2] }", cap=1)
    path.write_text(path.read_text().replace('work_dir = "work"', f'work_dir = "{small_fs}/work"'))
    crashed = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                             env={**os.environ, "ORCH_CRASH_AT": "after-intent:2"},
                             capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -9
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    before = (small_fs / "work" / "state.db").read_bytes()
    proc = cli("cancel", str(path))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "cannot write the state database" in lines[0] and "readonly" in lines[0]
    assert (small_fs / "work" / "state.db").read_bytes() == before


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_work_dir_others_can_write_is_refused(write_config, cli, tmp_path, mode):
    path = write_config()
    (tmp_path / "work").mkdir()
    os.chmod(tmp_path / "work", mode)
    proc = cli("start", str(path))
    assert proc.returncode == 2
    assert f"is writable by group or others (mode {mode:04o})" in one_line(proc)
    assert list((tmp_path / "work").iterdir()) == []              # nothing written into it


def test_a_work_dir_of_another_user_is_refused(write_config, cli, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory away")
    path = write_config()
    (tmp_path / "work").mkdir(mode=0o700)
    os.chown(tmp_path / "work", 65534, 65534)
    proc = cli("start", str(path))
    assert proc.returncode == 2 and "belongs to uid 65534, not to you" in one_line(proc)


@pytest.mark.parametrize("name", ["master.log", "state.db"])
def test_a_link_planted_where_the_master_writes_is_refused(write_config, cli, tmp_path, name):
    path = write_config()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "work").mkdir(mode=0o700)
    (tmp_path / "work" / name).symlink_to(victim)
    proc = cli("start", str(path))
    assert proc.returncode == 2 and f"{name} is a symbolic link" in one_line(proc)
    assert victim.read_text() == "precious\n"


def test_equal_grid_and_unused_seed_are_the_same_experiment(write_config, cli, tmp_path):
    path = write_config(parameters="x = { values = [1, 2, 3] }")
    assert cli("start", str(path)).returncode == 0
    text = path.read_text()
    path.write_text(text.replace("x = { values = [1, 2, 3] }",
                                 "x = { linear = { start = 1, stop = 3, num = 3 } }")
                    .replace('work_dir = "work"', 'work_dir = "work"\nseed = 7'))
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr                      # grid search ignores seed
    path.write_text(text.replace("[1, 2, 3]", "[1, 2, 4]"))
    proc = cli("start", str(path))
    assert proc.returncode == 2
    line = one_line(proc)
    assert "the search definition changed since the experiment started" in line
    assert "x" in line.split("started:", 1)[1]              # the difference is named


def test_changing_scheduler_kind_with_jobs_in_flight_is_refused(write_config, cli, tmp_path):
    path = write_config(parameters="x = { values = [0, 1, 2] }", cap=3,
                        command="{python} -m jobs.examples.synthetic --sleep 2")
    crashed = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                             env={**os.environ, "ORCH_CRASH_AT": "after-submit:2"},
                             capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -9                       # 3 attempts in flight, master gone
    path.write_text(path.read_text().replace('kind = "local"', 'kind = "slurm"'))
    proc = cli("start", str(path))
    assert proc.returncode == 2
    message = one_line(proc)
    # 2 submitted, 1 intent recorded
    assert "scheduler.kind changed from 'local' to 'slurm' while 3 jobs" in message
    path.write_text(path.read_text().replace('kind = "slurm"', 'kind = "local"'))
    assert cli("start", str(path)).returncode == 0        # back to local: resumed, finished


def test_state_db_deleted_under_a_running_master(write_config, cli, tmp_path):
    """The master notices, saves what it holds and stops; a new start does not begin anew over
    the old run directories; with the saved file moved back, the experiment finishes, every
    point measured once."""
    record = tmp_path / "runs.txt"
    path = write_config(parameters="x = { values = [0, 1, 2, 3, 4, 5] }", cap=2,
                        command="{python} -m jobs.examples.synthetic --sleep 1 "
                                f"--record {record}")
    db = tmp_path / "work" / "state.db"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path), "--quiet"],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while not (record.exists() and record.read_text()) and time.time() < deadline:
        time.sleep(0.05)                                   # a job has finished: mid-campaign
    db.unlink()
    assert proc.wait(30) == 1
    message = proc.stderr.read().strip()
    assert "was deleted or replaced while the master ran" in message and "\n" not in message
    saved = tmp_path / "work" / "state.db.recovered"
    assert saved.exists() and f"saved as {saved}" in message

    again = cli("start", str(path))
    assert again.returncode == 2
    assert "holds the run directories of an earlier run" in one_line(again)
    assert f"move {saved} back" in again.stderr

    db.unlink(missing_ok=True)
    saved.rename(db)
    assert cli("start", str(path)).returncode == 0
    runs = [line.split(" ", 3)[3] for line in record.read_text().splitlines()]
    assert len(runs) == 6 and len(set(runs)) == 6           # each point ran exactly once
