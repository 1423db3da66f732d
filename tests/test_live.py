"""Watching a campaign from a terminal, against real master subprocesses: the progress line of
`start` on a terminal (a pty), `status --watch` and `events --follow` that end by themselves
when the experiment does, and redraw in place / stop on Ctrl-C on a terminal."""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import ROOT
from .test_admin import HANGING, SLEEPY, run_main, running_jobs, wait_for

ORCH = [sys.executable, "-m", "orchestrator"]


def spawn_in_pty(*args: str) -> tuple[int, int]:
    """``python -m orchestrator ARGS`` with a pseudo-terminal as its stdout and stderr."""
    pid, fd = pty.fork()
    if pid == 0:                                   # the child: become the command
        os.chdir(ROOT)
        # A suite started in the background (`cmd &` in a script) inherits SIGINT ignored,
        # and Python keeps an ignored SIGINT: Ctrl-C would never reach the command.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(sys.executable, [*ORCH, *args])
    return pid, fd


def read_pty(fd: int, until: float, stop_when: str | None = None) -> str:
    """What the pty printed until ``until`` (monotonic), EOF, or ``stop_when`` appeared."""
    out = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:                             # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
        if stop_when and stop_when in out.decode(errors="replace"):
            break
    return out.decode(errors="replace")


def exit_status(pid: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"pid {pid} did not exit")


def test_watch_and_follow_end_with_the_experiment(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2, 3, 4, 5] }\n'
                                   'y = { values = [0, 1, 2] }', command=SLEEPY, cap=3)
    master_pid, master_fd = spawn_in_pty("start", str(path))
    watcher = follower = None
    try:
        wait_for(lambda: run_main("status", str(path))[0] == 0, what="the experiment")
        watcher = subprocess.Popen([*ORCH, "status", str(path), "--watch", "0.3"], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        follower = subprocess.Popen([*ORCH, "events", str(path), "--follow", "--limit", "1",
                                     "--format", "json"], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        progress = read_pty(master_fd, time.monotonic() + 60, stop_when="finished t:")
        assert exit_status(master_pid) == 0, progress
        watched, watch_err = watcher.communicate(timeout=30)   # both end by themselves
        followed, follow_err = follower.communicate(timeout=30)
    finally:
        for proc in (watcher, follower):
            if proc is not None and proc.poll() is None:
                proc.kill()
        os.close(master_fd)
    # start on a terminal: one line redrawn with done/total, the estimate and the best point
    lines = [line for line in progress.split("\r") if "done" in line]
    assert any("/18 done" in line and "left" in line for line in lines), lines[-5:]
    assert any("best 0 at x=2 y=1" in line for line in lines), lines[-5:]
    assert "finished t: best 0 at x=2 y=1 (18 evaluations" in progress

    assert watcher.returncode == 0 and follower.returncode == 0, watch_err + follow_err
    blocks = [b for b in watched.split("every 0.3 s: orchestrator status ") if b]
    assert len(blocks) >= 2 and any("state              running" in b for b in blocks)
    assert "state              finished" in blocks[-1]
    assert all("state              finished" not in b for b in blocks[:-1])   # it stopped there

    streamed = [json.loads(line) for line in followed.splitlines()]
    recorded = json.loads(run_main("events", str(path), "--json", "--limit", "1000")[1])
    assert len(streamed) >= 2 and streamed[-1]["kind"] == "finished"
    assert streamed == recorded[len(recorded) - len(streamed):]     # each event once, in order


def test_a_stopped_master_reads_as_last_known_and_watchers_stop_on_ctrl_c(write_config,
                                                                        tmp_path):
    path = write_config(command=HANGING, cap=2, parameters='x = { values = [0, 1, 2] }')
    master = subprocess.Popen([*ORCH, "start", str(path)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        running_jobs(path, 2)
        assert run_main("stop", str(path), "--wait", "--timeout", "20")[0] == 0
        master.communicate(timeout=20)
    finally:
        if master.poll() is None:
            master.kill()
    try:
        code, out, _ = run_main("status", str(path))
        assert code == 0
        assert "state              running - last known: no master is running" in out
        assert "not running (last heartbeat" in out, out
        assert "running / pending  2 / 0 (last known)" in out, out
        first = run_main("queue", str(path))[1]
        assert first.startswith("no master is running: jobs as last seen by a master")
        before = json.loads(run_main("queue", str(path), "--json")[1])
        time.sleep(1.5)
        after = json.loads(run_main("queue", str(path), "--json")[1])
        assert [r["elapsed_s"] for r in before] == [r["elapsed_s"] for r in after]  # frozen
        assert all(r["live"] is False for r in after)
        assert json.loads(run_main("status", str(path), "--json")[1])["live"] is False

        for args in (["status", str(path), "--watch", "0.2"], ["events", str(path), "-f"]):
            pid, fd = spawn_in_pty(*args)
            try:
                expected = "\x1b[H\x1b[J" if args[0] == "status" else "no master is running"
                seen = read_pty(fd, time.monotonic() + 20, stop_when=expected)
                assert expected in seen, seen
                if args[0] == "status":                 # redrawn in place, again and again
                    seen += read_pty(fd, time.monotonic() + 0.6)
                    assert seen.count("\x1b[H\x1b[J") >= 2
                os.kill(pid, signal.SIGINT)
                assert exit_status(pid) == 0
            finally:
                os.close(fd)
    finally:
        assert run_main("cancel", str(path))[0] == 0       # the hanging jobs go too
    code, out, _ = run_main("events", str(path), "--follow")   # ended: prints and returns
    assert code == 0 and "cancelled-jobs" in out


def test_watch_refuses_a_non_positive_interval(write_config):
    code, out, err = run_main("status", str(write_config()), "--watch", "0")
    assert code == 2 and "--watch SECONDS must be positive" in err and out == ""


def test_follow_of_a_database_file(tmp_path):
    """The read commands take the database file as well; a missing one is exit 4 at once."""
    code, _, err = run_main("events", str(tmp_path / "state.db"), "--follow")
    assert code in (2, 4) and err.count("\n") == 1
    assert not Path(tmp_path / "state.db").exists()
