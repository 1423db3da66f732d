"""The master end to end on the local scheduler: real processes, a real SQLite file."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.master import Master


def run_master(path: Path) -> int:
    return Master(load_config(path)).run()


def status_of(cli, path: Path) -> dict:
    proc = cli("status", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_full_grid_run_finds_the_optimum(write_config, cli, tmp_path):
    path = write_config()
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "finished t: best" in proc.stderr
    status = status_of(cli, path)
    assert status["state"] == "finished"
    assert status["best"]["params"] == {"x": 2, "y": 1} and status["best"]["value"] == 0.0
    assert status["evaluations"] == 12 and status["failed_points"] == 0
    assert status["running"] == 0 and status["pending"] == 0
    history = json.loads(cli("history", str(path), "--json").stdout)
    assert [h["index"] for h in history[:4]] == [[0, 0], [0, 1], [0, 2], [1, 0]]
    db = tmp_path / "work" / "state.db"
    assert db.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "work" / "trials").stat().st_mode & 0o077 == 0
    # A second start (cron) on a finished experiment does nothing and succeeds.
    again = cli("start", str(path), "--quiet")
    assert again.returncode == 0
    assert sqlite3.connect(db).execute("select count(*) from attempts").fetchone()[0] == 12


FAILURE_REASONS = {"exit": "exit code 3", "nan": "not finite", "nothing": "is missing",
                   "text": "is not a number", "missing-key": "has no key 'loss'",
                   "binary": "not UTF-8", "huge": "too large", "empty": "is empty",
                   "truncated": "not valid JSON", "directory": "is a directory"}


def test_failed_attempts_are_retried(write_config, tmp_path):
    """Each point fails its first attempt in another way; every one is retried and measured."""
    modes = list(FAILURE_REASONS)
    path = write_config(parameters=f"mode = {{ values = {modes!r} }}".replace("'", '"'),
                        cap=len(modes), command="{python} -m jobs.examples.synthetic "
                        "--fail-attempts 1 --fail-mode {mode} --log mode")
    path.write_text(path.read_text().replace("--log mode", ""))
    assert run_master(path) == 0
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    rows = con.execute("select p.params, a.number, a.state, a.failure_kind, a.reason from attempts a "
                       "join points p on p.id = a.point_id order by a.id").fetchall()
    assert len(rows) == 2 * len(modes)
    for params, number, state, kind, reason in rows:
        mode = json.loads(params)["mode"]
        if number == 1:
            assert state == "failed" and kind == "program", (mode, state)
            assert FAILURE_REASONS[mode] in reason, (mode, reason)
        else:
            assert state == "succeeded", (mode, state, reason)
    assert con.execute("select count(*) from evaluations where value is not null").fetchone()[0] \
        == len(modes)


def test_time_limit_is_enforced_and_retried(write_config, tmp_path):
    path = write_config(parameters='x = { values = [1] }', time_limit=1,
                        command="{python} -m jobs.examples.synthetic --fail-attempts 1 --fail-mode hang")
    assert run_master(path) == 0
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    states = [r[0] for r in con.execute("select state from attempts order by id")]
    assert states == ["timeout", "succeeded"]


def test_a_point_that_always_fails_ends_failed_without_stopping(write_config, cli, tmp_path):
    path = write_config(retries=1, command="{python} -m jobs.examples.synthetic --center x=2 "
                                           "--center y=1 --fail-when x=3")
    assert run_master(path) == 0
    status = status_of(cli, path)
    assert status["state"] == "finished"
    assert status["failed_points"] == 3 and status["evaluations"] == 9
    assert status["best"]["params"] == {"x": 2, "y": 1}
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    # retries = 1: two attempts per always-failing point, then it is given up.
    assert con.execute("select count(*) from attempts where state='failed'").fetchone()[0] == 6
    history = json.loads(cli("history", str(path), "--json").stdout)
    failed = [h for h in history if h["value"] is None]
    assert all(h["params"]["x"] == 3 and len(h["failures"]) == 2 for h in failed)


def test_cap_is_never_exceeded(write_config, tmp_path):
    record = tmp_path / "spans.txt"
    path = write_config(cap=3, parameters='x = { values = [0, 1, 2, 3, 4, 5, 6, 7] }',
                        command="{python} -m jobs.examples.synthetic --sleep 0.3 "
                                f"--record {record}")
    assert run_master(path) == 0
    spans = [tuple(map(float, line.split()[:2])) for line in record.read_text().splitlines()]
    assert len(spans) == 8
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
                    key=lambda t: (t[0], t[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert 2 <= peak <= 3


def test_changed_space_is_refused_and_settings_changes_accepted(write_config, cli, tmp_path):
    path = write_config(parameters='x = { values = [0, 1] }')
    assert cli("start", str(path)).returncode == 0
    path.write_text(path.read_text().replace("cap = 4", "cap = 2"))
    assert cli("start", str(path)).returncode == 0        # finished: nothing to do
    path.write_text(path.read_text().replace("[0, 1]", "[0, 2]"))
    proc = cli("start", str(path))
    assert proc.returncode == 2
    assert "search definition changed" in proc.stderr and "x: removed 1; added 2" in proc.stderr
    assert sqlite3.connect(tmp_path / "work" / "state.db").execute(
        "select count(*) from evaluations").fetchone()[0] == 2


def test_admin_commands_before_any_start(write_config, cli):
    path = write_config()
    proc = cli("status", str(path))
    assert proc.returncode == 4
    assert "no experiment in" in proc.stderr and "start CONFIG" in proc.stderr


def test_unwritable_work_directory(write_config, cli, tmp_path):
    path = write_config()
    (tmp_path / "work").write_text("a file where the work directory should be")
    proc = cli("start", str(path))
    assert proc.returncode == 2 and "work directory" in proc.stderr and "not writable" in proc.stderr
