"""Going on after a mistake: retry --all-failed, start --fresh, --warm-start; nothing deleted."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

GOOD = "{python} -m jobs.examples.synthetic --center x=2 --center y=1"
BROKEN = "{python} -m jobs.examples.synthetic --center x=${x} --center y=1"


def db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.parent / "work" / "state.db")


def succeeded_per_point(path: Path) -> dict[str, int]:
    rows = db(path).execute("select p.params, count(*) from attempts a join points p "
                            "on p.id = a.point_id where a.state = 'succeeded' "
                            "group by p.id").fetchall()
    return {params: n for params, n in rows}


def status(cli, path: Path) -> dict:
    return json.loads(cli("status", str(path), "--json").stdout)


def stage_numbers(cli, path: Path) -> list[int]:
    return [st["number"] for st in json.loads(cli("stages", str(path), "--json").stdout)]


def test_fail_fast_then_fix_then_retry_all_failed_finishes(write_config, cli):
    path = write_config(command=BROKEN, strategy="dsice")
    assert cli("start", str(path)).returncode == 1
    assert status(cli, path)["state"] == "failed"
    path.write_text(path.read_text().replace("x=${x}", "x=2"))
    proc = cli("retry", str(path), "--all-failed")
    assert proc.returncode == 0, proc.stderr
    assert "have a new budget; the experiment is running again" in proc.stdout
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    data = status(cli, path)
    assert data["state"] == "finished" and data["best"]["params"] == {"x": 2, "y": 1}
    assert set(succeeded_per_point(path).values()) == {1}


GRID = 'x = { values = [0, 1, 2, 3, 4] }\ny = { values = [0, 1, 2] }'
EDGE = "{python} -m jobs.examples.synthetic --center x=4 --center y=1"
SYNC = 'mode = "sync"'


def test_retry_all_failed_remakes_the_search_without_remeasuring(write_config, cli, tmp_path):
    """x=3 fails at first; once fixed and retried, the search ends as a run that never failed
    (every point it measures), and no point that had succeeded is measured again. In
    synchronous rounds, because in refill mode which points are asked depends on when jobs
    end, so two runs need not measure the same set."""
    clean = write_config("clean.toml", name="clean", command=EDGE, strategy="dsice",
                         parameters=GRID, search_extra=SYNC)
    clean.write_text(clean.read_text().replace('work_dir = "work"', 'work_dir = "clean"'))
    assert cli("start", str(clean)).returncode == 0
    clean_points = {json.dumps(r["params"], sort_keys=True) for r in
                    json.loads(cli("history", str(clean), "--json").stdout)}

    path = write_config(command=EDGE + " --fail-when x=3", strategy="dsice", retries=0,
                        parameters=GRID, search_extra=SYNC)
    assert cli("start", str(path)).returncode == 0
    assert status(cli, path)["failed_points"] == 3
    measured = succeeded_per_point(path)
    path.write_text(path.read_text().replace(" --fail-when x=3", ""))
    proc = cli("retry", str(path), "x=3,y=0", "3,2")          # several points at once
    assert proc.returncode == 0 and "2 points have a new budget" in proc.stdout, proc.stderr
    proc = cli("retry", str(path), "--all-failed")             # and the one left
    assert proc.returncode == 0 and "point x=3 y=1 has a new budget" in proc.stdout
    assert cli("retry", str(path), "--all-failed").stderr.endswith("no failed point to retry\n")
    assert cli("start", str(path)).returncode == 0
    after = status(cli, path)
    assert after["state"] == "finished" and after["failed_points"] == 0
    assert after["best"]["params"] == status(cli, clean)["best"]["params"] == {"x": 4, "y": 1}
    counts = succeeded_per_point(path)
    assert clean_points <= {json.dumps(json.loads(p), sort_keys=True) for p in counts}
    assert all(counts[p] == 1 for p in measured) and set(counts.values()) == {1}


def test_retry_needs_points_or_all_failed(write_config, cli):
    path = write_config()
    assert cli("start", str(path)).returncode == 0
    proc = cli("retry", str(path))
    assert proc.returncode == 2 and "give the POINTs to retry, or --all-failed" in proc.stderr


def test_fresh_archives_the_old_state_and_starts_over(write_config, cli, tmp_path):
    path = write_config()
    assert cli("start", str(path)).returncode == 0
    old_db = (tmp_path / "work" / "state.db").read_bytes()
    proc = cli("start", str(path), "--fresh")
    assert proc.returncode == 0, proc.stderr
    archived = list((tmp_path / "work" / "archive").iterdir())
    assert len(archived) == 1 and f"the old state is in {archived[0]}" in proc.stderr
    assert (archived[0] / "state.db").read_bytes() == old_db           # kept, unchanged
    assert (archived[0] / "trials").is_dir() and (archived[0] / "master.log").is_file()
    events = json.loads(cli("events", str(path), "--json", "--limit", "1000").stdout)
    assert [e["kind"] for e in events].count("created") == 1           # a new experiment
    assert status(cli, path)["evaluations"] == 12


def test_warm_start_measures_nothing_already_known(write_config, cli, tmp_path):
    first = write_config("first.toml", name="first", command=EDGE, strategy="dsice",
                         parameters=GRID)
    first.write_text(first.read_text().replace('work_dir = "work"', 'work_dir = "first"'))
    assert cli("start", str(first)).returncode == 0
    known = {json.dumps(r["params"], sort_keys=True)
             for r in json.loads(cli("history", str(first), "--json").stdout)}
    # The same space with a wider y: the new search knows every point measured before.
    second = write_config(command=EDGE, strategy="dsice",
                          parameters=GRID.replace("[0, 1, 2] }", "[0, 1, 2, 3] }"))
    proc = cli("start", str(second), "--warm-start", str(first))
    assert proc.returncode == 0, proc.stderr
    assert f"warm start: {len(known)} measured points of {first} are points of this grid" \
        in proc.stderr
    submitted = {json.dumps(json.loads(p), sort_keys=True) for (p,) in db(second).execute(
        "select p.params from attempts a join points p on p.id = a.point_id")}
    assert submitted and not (submitted & known)
    assert status(cli, second)["best"]["params"] == {"x": 4, "y": 1}
    again = cli("start", str(second), "--warm-start", str(first))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_warm_start_refuses_another_objective(write_config, cli, tmp_path):
    first = write_config("first.toml", name="first")
    first.write_text(first.read_text().replace('work_dir = "work"', 'work_dir = "first"')
                     .replace('direction = "minimize"', 'direction = "maximize"'))
    assert cli("start", str(first)).returncode == 0
    second = write_config()
    proc = cli("start", str(second), "--warm-start", str(first))
    assert proc.returncode == 2 and "its values cannot be reused" in proc.stderr
    assert not (tmp_path / "work").exists()


def test_extending_a_candidate_list_keeps_every_measured_point(write_config, cli, tmp_path):
    """The optimum lies beyond the grid's edge: values added on both sides continue the
    experiment; nothing measured is measured again, and the search reaches the new edge."""
    path = write_config(strategy="dsice", parameters='x = { values = [0, 1, 2, 3] }\n'
                                                     'y = { values = [0, 1, 2] }',
                        command="{python} -m jobs.examples.synthetic --center x=5 --center y=1")
    assert cli("start", str(path)).returncode == 0
    assert status(cli, path)["best"]["params"] == {"x": 3, "y": 1}
    measured = succeeded_per_point(path)
    stages_before = stage_numbers(cli, path)
    path.write_text(path.read_text().replace("[0, 1, 2, 3]", "[-1, 0, 1, 2, 3, 4, 5, 6]"))
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "grid extended: x: added -1, 4, 5, 6; every measured point kept" in proc.stderr
    data = status(cli, path)
    assert data["state"] == "finished" and data["best"]["params"] == {"x": 5, "y": 1}
    # The search begun again on the new grid numbers its stages on after the old ones.
    numbers = stage_numbers(cli, path)
    assert numbers[:len(stages_before)] == stages_before and len(numbers) > len(stages_before)
    assert numbers == list(range(1, len(numbers) + 1))
    assert data["stage"] == data["stages_done"] == numbers[-1]
    counts = succeeded_per_point(path)
    assert all(counts[p] == 1 for p in measured) and set(counts.values()) == {1}
    moved = tmp_path / "work" / "trials" / "before-extension-1"
    assert len(list(moved.glob("p*/attempt-1/result.json"))) == len(measured)
    # the old points' records follow their files: `logs` still finds them
    assert str(moved / "p3-1" / "attempt-1") in cli("logs", str(path), "x=3,y=1").stdout


def test_other_changes_are_refused_with_the_difference_named(write_config, cli, tmp_path):
    path = write_config(strategy="dsice")
    assert cli("start", str(path)).returncode == 0
    path.write_text(path.read_text().replace("[0, 1, 2, 3]", "[0, 1, 2, 4]")
                    .replace('strategy = "dsice"', 'strategy = "grid"'))
    proc = cli("start", str(path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "x: removed 3; added 4" in proc.stderr and "strategy 'dsice' -> 'grid'" in proc.stderr
    assert "`start --fresh`" in proc.stderr
