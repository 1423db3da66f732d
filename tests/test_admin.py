"""Admin and observability commands against a real master subprocess and a real SQLite file:
read commands while the master runs and after it finished, export, plot, cancel, stop, retry
and their exit codes."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from orchestrator.cli import main
from scheduler_adapters.local_processes import is_alive

from .conftest import BASE_CONFIG, DEFAULTS, ROOT

SLEEPY = "{python} -m jobs.examples.synthetic --center x=2 --center y=1 --sleep 0.3"
HANGING = "{python} -m jobs.examples.synthetic --sleep 60"
READ_COMMANDS = {
    "status": ["experiment", "state", "master", "best", "evaluations", "failed_points", "running",
               "pending", "attempts_by_state", "points_by_state", "stage", "level", "base",
               "base_value", "cap", "utilisation", "busy_job_s", "elapsed_s", "estimate",
               "started_at"],
    "queue": None, "history": None, "stages": None, "events": None,
    "best": ["experiment", "direction", "objective", "best", "top", "evaluations"],
}


def run_main(*args: str) -> tuple[int, str, str]:
    """The CLI in this process: quick enough to poll many times while a master runs."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def start_master(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def status(path: Path) -> dict:
    code, out, err = run_main("status", str(path), "--json")
    assert code == 0, err
    return json.loads(out)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def running_jobs(path: Path, n: int) -> list[dict]:
    """Wait until ``n`` jobs run, and return the queue."""
    def enough():
        code, out, _ = run_main("queue", str(path), "--json")
        rows = json.loads(out) if code == 0 else []
        return rows if sum(r["state"] == "running" for r in rows) >= n else None
    return wait_for(enough, what=f"{n} running jobs")


def job_records(work: Path) -> dict[str, dict]:
    jobs = work / "scheduler" / "jobs"
    return {d.name: json.loads((d / "state.json").read_text()) for d in jobs.iterdir()}


def assert_jobs_gone(work: Path, job_ids: list[str]) -> None:
    """The local scheduler's own records say cancelled, and no job process is left."""
    def settled():
        records = job_records(work)
        return all(records[j]["state"] == "cancelled" for j in job_ids) and records
    records = wait_for(settled, timeout=15, what="jobs cancelled in the scheduler's records")
    for j in job_ids:
        for who in ("child", "supervisor"):
            if records[j].get(who):
                assert not is_alive(records[j][who]), f"job {j}: {who} still alive"


def test_read_commands_while_the_master_runs(write_config, tmp_path):
    path = write_config(parameters='x = { values = [0, 1, 2, 3, 4, 5] }\n'
                                   'y = { values = [0, 1, 2] }', command=SLEEPY, cap=3)
    master = start_master(path)
    try:
        wait_for(lambda: (tmp_path / "work" / "state.db").exists(), what="the database")
        polls, seen_running, outputs = 0, False, []
        while master.poll() is None:
            for name, keys in READ_COMMANDS.items():
                code, out, err = run_main(name, str(path), "--json")
                outputs.append(out + err)
                if code == 4:          # the master has not created the experiment yet
                    continue
                assert code == 0, err
                data = json.loads(out)
                if keys:
                    assert set(keys) <= set(data), set(keys) - set(data)
                if name == "status" and data["state"] == "running":
                    assert data["master"]["alive"] is True and data["cap"] == 3
                    measured = data["evaluations"] + data["failed_points"]
                    assert data["estimate"]["remaining_points"] == 18 - measured
                if name == "queue" and any(r["state"] == "running" for r in data):
                    seen_running = True
                    assert {"job_id", "name", "attempt", "state", "params", "submitted_at",
                            "elapsed_s"} <= set(data[0])
            if polls == 3:      # a write command that needs a stopped master says so
                code, _, err = run_main("retry", str(path), "0,0")
                assert code == 3 and "stop the master first" in err
            code, out, err = run_main("status", str(path))
            outputs.append(out + err)
            polls += 1
        _, master_err = master.communicate(timeout=30)
    finally:
        if master.poll() is None:
            master.kill()
    assert master.returncode == 0, master_err
    assert "finished t" in master_err and "locked" not in master_err
    assert polls >= 5 and seen_running
    assert not any("locked" in text for text in outputs)
    final = status(path)
    assert final["state"] == "finished" and final["evaluations"] == 18
    assert final["master"]["alive"] is False


def test_stages_of_a_dsice_search(write_config, tmp_path):
    path = write_config(strategy="dsice", parameters='x = { values = [0, 1, 2, 3, 4, 5, 6] }\n'
                        'y = { values = [0, 1, 2, 3, 4] }')
    code, _, err = run_main("start", str(path))
    assert code == 0, err
    code, out, _ = run_main("stages", str(path), "--json")
    stages = json.loads(out)
    assert code == 0 and len(stages) >= 2
    assert [st["number"] for st in stages] == list(range(1, len(stages) + 1))
    assert stages[0]["level"] == 1 and stages[0]["base"] == [3, 2]        # the grid's centre
    assert stages[0]["base_params"] == {"x": 3, "y": 2}
    last = stages[-1]
    assert last["level"] == 2 and last["moved"] is False                  # DSICE's stop rule
    assert last["best_params"] == {"x": 2, "y": 1} and last["best_value"] == 0.0
    # The eager variant may decide a stage from points it measured earlier (0 new points).
    assert stages[0]["points"] > 0 and all(st["duration_s"] >= 0 for st in stages)
    assert sum(st["points"] for st in stages) == status(path)["evaluations"]
    for st in stages:
        assert st["recorded_at"].endswith("Z")
    data = status(path)
    assert data["stage"] == last["number"] and data["stages_done"] == last["number"]
    assert data["level"] == 2 and data["base_params"] == {"x": 2, "y": 1}
    assert data["base_value"] == 0.0 and data["estimate"]["remaining_stages_min"] == 0
    code, out, _ = run_main("stages", str(path))
    assert code == 0 and out.splitlines()[0].split()[:3] == ["NUMBER", "LEVEL", "POINTS"]


FAILING_X3 = {"command": "{python} -m jobs.examples.synthetic --center x=2 --center y=1 "
                         "--fail-when x=3", "retries": 0}


def finish(directory: Path) -> Path:
    """A finished 4 x 3 grid experiment in ``directory`` whose three points with x = 3 failed."""
    path = directory / "exp.toml"
    path.write_text(textwrap.dedent(BASE_CONFIG.format(**{**DEFAULTS, **FAILING_X3})))
    code, _, err = run_main("start", str(path))
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """Shared by the tests that only read it (one master run instead of one per test)."""
    return finish(tmp_path_factory.mktemp("finished"))


def test_read_commands_on_a_finished_experiment(finished):
    data = status(finished)
    assert data["state"] == "finished" and data["strategy"] == "grid"
    assert data["best"]["params"] == {"x": 2, "y": 1} and data["best"]["value"] == 0.0
    assert data["evaluations"] == 9 and data["failed_points"] == 3
    assert data["points_by_state"] == {"done": 9, "failed": 3}
    assert data["attempts_by_state"] == {"succeeded": 9, "failed": 3}
    assert 0 < data["utilisation"] <= 1 and data["busy_job_s"] > 0
    assert data["estimate"]["remaining_points"] == 0
    assert data["stage"] is None                       # grid search: no stages
    for stamp in (data["started_at"], data["finished_at"], data["best"]["found_at"]):
        assert stamp.endswith("Z") and "T" in stamp

    code, out, _ = run_main("best", str(finished), "--json", "--top", "3")
    best = json.loads(out)
    assert code == 0 and best["best"]["params"] == {"x": 2, "y": 1}
    assert best["best"]["metrics"]["loss"] == 0.0 and Path(best["best"]["run_dir"]).is_dir()
    assert [t["value"] for t in best["top"]] == sorted(t["value"] for t in best["top"])
    assert len(best["top"]) == 3

    code, out, _ = run_main("events", str(finished), "--json", "--limit", "5")
    events = json.loads(out)
    assert len(events) == 5 and events[-1]["kind"] == "finished"
    assert {"at", "kind", "message", "data"} == set(events[0])

    code, out, _ = run_main("stages", str(finished))
    assert code == 0 and "no stage finished yet" in out

    for name in ("status", "history", "events", "best", "queue"):
        code, out, _ = run_main(name, str(finished))
        assert code == 0 and out.strip()
        assert all(len(line) <= 100 for line in out.splitlines()), name


def test_export_csv_and_json(finished, tmp_path):
    history = json.loads(run_main("history", str(finished), "--json")[1])
    code, out, _ = run_main("export", str(finished), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 12
    assert {"n", "x", "y", "value", "state", "attempts", "failure", "metric.loss"} <= set(rows[0])
    for row, h in zip(rows, history):
        assert int(row["n"]) == h["n"]
        assert (int(row["x"]), int(row["y"])) == (h["params"]["x"], h["params"]["y"])
        if h["value"] is None:
            assert row["value"] == "" and row["state"] == "failed"
            assert "exit code 3" in row["failure"]
        else:
            assert float(row["value"]) == pytest.approx(h["value"])
            assert float(row["metric.loss"]) == pytest.approx(h["value"])

    target = tmp_path / "out" / "export.json"
    target.parent.mkdir()
    code, out, err = run_main("export", str(finished), "--format", "json", "--out", str(target))
    assert code == 0 and out == "" and "wrote 12 evaluations" in err
    data = json.loads(target.read_text())
    assert data["parameters"] == ["x", "y"] and data["objective"]["key"] == "loss"
    evs = data["evaluations"]
    assert len(evs) == 12
    assert all(len(e["attempts"]) == 1 for e in evs)
    failed = [e for e in evs if e["value"] is None]
    assert len(failed) == 3 and all(e["attempts"][0]["state"] == "failed" for e in failed)
    ok = evs[0]["attempts"][0]
    assert ok["state"] == "succeeded" and ok["job_id"] and ok["run_s"] > 0


def test_plot_writes_three_pngs(finished, tmp_path, cli):
    out = tmp_path / "plots"
    proc = cli("plot", str(finished), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in ("objective.png", "timeline.png", "utilisation.png"):
        png = out / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 15_000, name
    # Without matplotlib: one line, no traceback.
    blocker = tmp_path / "no-mpl" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is not installed')\n")
    proc = cli("plot", str(finished), "--out", str(out),
               env={"PYTHONPATH": f"{blocker.parent}{os.pathsep}{ROOT}"})
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "needs matplotlib" in proc.stderr


def test_stop_then_cancel_without_a_master(write_config, tmp_path, cli):
    path = write_config(command=HANGING, cap=2, parameters='x = { values = [0, 1, 2] }')
    master = start_master(path)
    try:
        jobs = running_jobs(path, 2)
        proc = cli("stop", str(path), "--wait", "--timeout", "20")
        assert proc.returncode == 0, proc.stderr
        assert "asked master pid" in proc.stdout and "has exited" in proc.stdout
        assert master.wait(timeout=20) == 0
    finally:
        if master.poll() is None:
            master.kill()
    job_ids = [j["job_id"] for j in jobs]
    records = job_records(tmp_path / "work")
    assert all(records[j]["state"] == "running" for j in job_ids)     # stop leaves jobs running
    code, out, _ = run_main("stop", str(path))
    assert code == 0 and "no master is running" in out

    proc = cli("cancel", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "no master was running, cancelled 2 jobs" in proc.stdout
    assert_jobs_gone(tmp_path / "work", job_ids)
    data = status(path)
    assert data["state"] == "cancelled" and data["running"] == 0
    assert data["attempts_by_state"] == {"cancelled": 2}
    kinds = [e["kind"] for e in json.loads(run_main("events", str(path), "--json")[1])]
    assert kinds[-2:] == ["cancelled", "cancelled-jobs"]
    code, out, _ = run_main("cancel", str(path))
    assert code == 0 and "already cancelled" in out
    code, _, err = run_main("start", str(path))
    assert code == 1 and "is cancelled" in err


def test_cancel_with_a_live_master(write_config, tmp_path, cli):
    path = write_config(command=HANGING, cap=2, parameters='x = { values = [0, 1, 2] }')
    master = start_master(path)
    try:
        jobs = running_jobs(path, 2)
        proc = cli("cancel", str(path), "--wait", "--timeout", "20")
        assert proc.returncode == 0, proc.stderr
        assert "cancels its 2 jobs at its next cycle" in proc.stdout
        master.wait(timeout=20)
    finally:
        if master.poll() is None:
            master.kill()
    assert_jobs_gone(tmp_path / "work", [j["job_id"] for j in jobs])
    data = status(path)
    assert data["state"] == "cancelled" and data["master"]["alive"] is False
    assert data["running"] == 0 and data["attempts_by_state"] == {"cancelled": 2}


def test_retry_a_failed_point_after_fixing_the_command(tmp_path):
    path = finish(tmp_path)
    code, _, err = run_main("retry", str(path), "x=2,y=1")
    assert code == 2 and "not failed" in err
    code, out, err = run_main("retry", str(path), "x=3,y=0")
    assert code == 0, err
    assert "new budget" in out and "running again" in out
    assert status(path)["state"] == "running"
    code, _, err = run_main("retry", str(path), "x=3,y=0")
    assert code == 2 and "is pending, not failed" in err
    # The fix: the point no longer fails (the command is a setting, not part of the search).
    path.write_text(path.read_text().replace(" --fail-when x=3", ""))
    code, out, err = run_main("retry", str(path), "3,1")           # by index this time
    assert code == 0, err
    code, _, err = run_main("start", str(path))
    assert code == 0, err
    data = status(path)
    assert data["state"] == "finished"
    assert data["failed_points"] == 1 and data["evaluations"] == 11
    export = json.loads(run_main("export", str(path), "--format", "json")[1])
    retried = {tuple(e["index"]): e for e in export["evaluations"] if e["budget_resets"]}
    assert set(retried) == {(3, 0), (3, 1)}
    for e in retried.values():
        assert e["value"] == pytest.approx((3 - 2) ** 2 + (e["params"]["y"] - 1) ** 2)
        assert [a["state"] for a in e["attempts"]] == ["failed", "succeeded"]
        assert [a["number"] for a in e["attempts"]] == [1, 2]


@pytest.mark.parametrize("args, message", [
    (["retry", "{cfg}", "x=9,y=0"], "is not a value of x"),
    (["retry", "{cfg}", "x=1"], "no value for y"),
    (["retry", "{cfg}", "7,7"], "is not an index of the grid"),
    (["retry", "{cfg}", "z=1,y=0"], "is not name=value for a parameter"),
    (["best", "{cfg}", "--top", "0"], "--top must be at least 1"),
])
def test_usage_errors_exit_2(finished, args, message):
    code, out, err = run_main(*[a.replace("{cfg}", str(finished)) for a in args])
    assert code == 2 and message in err and out == ""
    assert err.count("\n") == 1


def test_exit_codes_without_an_experiment(write_config, tmp_path, cli):
    path = write_config()
    for args in (["status"], ["queue"], ["history"], ["stages"], ["best"], ["events"],
                 ["export"], ["plot", "--out", str(tmp_path / "p")], ["stop"], ["cancel"],
                 ["retry", "--", "0,0"]):
        name, *rest = args
        code, out, err = run_main(name, str(path), *rest)
        assert code == 4, (args, err)
        assert "no experiment in" in err and "start CONFIG" in err and out == ""
    proc = cli("status", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "config file not found" in proc.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[experiment]\nname = 'b'\n")
    proc = cli("cancel", str(bad))
    assert proc.returncode == 2 and "missing required key" in proc.stderr
    proc = cli("events", str(path), "--limit", "x")
    assert proc.returncode == 2 and "invalid int value" in proc.stderr


@pytest.mark.parametrize("name", ["status", "queue", "history", "stages", "best", "events"])
def test_every_read_command_speaks_every_format(finished, name, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, as_json, err = run_main(name, str(finished), "--format", "json")
    assert code == 0, err
    data = json.loads(as_json)
    alias = json.loads(run_main(name, str(finished), "--json")[1])
    if name == "status":            # the one field that changes between two calls
        del data["master"]["heartbeat_age_s"], alias["master"]["heartbeat_age_s"]
    assert alias == data
    code, as_csv, _ = run_main(name, str(finished), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    records = data if isinstance(data, list) else [data]
    assert code == 0 and len(rows) == len(records)
    if records:
        assert set(rows[0]) >= {k for k, v in records[0].items() if not isinstance(v, dict)}
    code, as_value, _ = run_main(name, str(finished), "--format", "value")
    assert code == 0
    if isinstance(data, list):
        lines = as_value.splitlines()
        assert len(lines) == len(data) and not any(line.isupper() for line in lines)
    code, as_table, _ = run_main(name, str(finished), "--format", "table")
    default = run_main(name, str(finished))[1]
    assert code == 0 and as_table.splitlines()[:2] == default.splitlines()[:2]


def test_value_format_gives_one_value_to_a_shell(finished):
    best = json.loads(run_main("best", str(finished), "--json")[1])["best"]
    assert run_main("best", str(finished), "--format", "value")[1] == f"{best['value']:.6g}\n"
    assert run_main("status", str(finished), "--format", "value")[1] == "finished\n"
    lines = run_main("history", str(finished), "--format", "value")[1].splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(n) for n in range(1, 13)]
    assert lines[0].split("\t")[4] == "x=0 y=0"


def test_tables_fit_the_terminal_and_wide_cuts_nothing(finished, monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    narrow = run_main("history", str(finished))[1].splitlines()
    assert all(len(line) <= 50 for line in narrow) and any("…" in line for line in narrow)
    wide = run_main("history", str(finished), "--wide")[1].splitlines()
    assert any(len(line) > 50 for line in wide) and not any("…" in line for line in wide)
    assert "exit code 3" in run_main("history", str(finished), "--wide")[1]
    status_lines = run_main("status", str(finished))[1].splitlines()
    assert all(len(line) <= 50 for line in status_lines)


def test_a_point_reads_the_same_everywhere(finished):
    best = run_main("best", str(finished))[1]
    status_text = run_main("status", str(finished))[1]
    history = run_main("history", str(finished), "--wide")[1]
    assert "params      x=2 y=1" in best
    assert "best               0 at x=2 y=1 (evaluation" in status_text
    assert "x=2 y=1" in history and "{" not in history


def test_watch_of_an_ended_experiment_shows_it_once(finished, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")       # the header is cut to the terminal's width
    code, out, _ = run_main("status", str(finished), "--watch", "0.1")
    assert code == 0 and out.startswith(f"every 0.1 s: orchestrator status {finished}")
    assert out.count("experiment         t") == 1
    code, out, _ = run_main("status", str(finished), "--watch", "0.1", "--json")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1 and json.loads(lines[0])["state"] == "finished"


def test_best_top_as_values(finished):
    code, out, _ = run_main("best", str(finished), "--top", "3", "--format", "value")
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and len(rows) == 3 and rows[0][2] == "x=2 y=1"
    assert [float(r[1]) for r in rows] == sorted(float(r[1]) for r in rows)
