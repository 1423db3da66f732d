"""Hostile result files: whatever a trial writes becomes a failed attempt, never a master crash."""
from __future__ import annotations

import json
import sqlite3
import textwrap

import pytest

from jobs.result import MAX_RESULT_DEPTH, ResultError, read_result, read_result_object

HUGE_INT = "1" + "0" * 400                 # beyond float range: float() raises OverflowError
LONG_INT = "7" * 5000                     # beyond Python's 4300-digit conversion limit
DEEP = '{"loss": 1, "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"   # RecursionError in json

HOSTILE = {
    "huge-int": ('{"loss": ' + HUGE_INT + "}", "too large for a float"),
    "long-int": ('{"loss": ' + LONG_INT + "}", "integer with too many digits"),
    "deep-nesting": (DEEP, "nested too deeply"),
    "moderately-deep": ('{"loss": 1, "deep": ' + "[" * 40 + "]" * 40 + "}",
                        f"more than {MAX_RESULT_DEPTH} levels deep"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_result_is_a_result_error(tmp_path, name):
    text, reason = HOSTILE[name]
    path = tmp_path / "result.json"
    path.write_text(text)
    with pytest.raises(ResultError, match=reason):
        read_result(path, "loss")
    if name != "huge-int":            # as a setup output, a huge integer is fine (no float needed)
        with pytest.raises(ResultError, match=reason):
            read_result_object(path)


def test_non_finite_metrics_are_stored_as_strict_json(tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"loss": 0.5, "grad_norm": NaN, "peak": Infinity}')
    value, values = read_result(path, "loss")
    assert value == 0.5 and values == {"loss": 0.5, "grad_norm": "nan", "peak": "inf"}
    json.dumps(values, allow_nan=False)          # what PostgreSQL's JSON would accept


WRITER = """
import json, os, sys
x = json.load(open(os.path.join(os.environ["ORCH_RUN_DIR"], "params.json")))["x"]
texts = json.load(open(sys.argv[1]))
with open(os.environ["ORCH_RESULT_FILE"], "w") as fh:
    fh.write(texts[x])
"""


def test_master_records_hostile_results_as_failed_attempts(write_config, cli, tmp_path):
    """Each hostile file fails its attempt with a reason; the master finishes (exit 0), and a
    restart reads the same files again without dying."""
    names = sorted(HOSTILE)
    texts = [HOSTILE[n][0] for n in names] + ['{"loss": 1.5}']
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    (tmp_path / "writer.py").write_text(textwrap.dedent(WRITER))
    values = ", ".join(str(i) for i in range(len(texts)))
    path = write_config(parameters=f"x = {{ values = [{values}] }}", retries=0, cap=5,
                        command="{python} {config_dir}/writer.py {config_dir}/texts.json")
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    db = sqlite3.connect(tmp_path / "work" / "state.db")
    rows = db.execute("select p.params, a.state, a.reason from attempts a "
                      "join points p on p.id = a.point_id order by p.id").fetchall()
    by_x = {json.loads(params)["x"]: (state, reason) for params, state, reason in rows}
    for i, name in enumerate(names):
        assert by_x[i][0] == "failed" and HOSTILE[name][1] in by_x[i][1], (name, by_x[i])
    assert by_x[len(names)][0] == "succeeded"
    again = cli("start", str(path))            # a cron restart on the same files
    assert again.returncode == 0 and "Traceback" not in again.stderr


REDIRECTOR = """
import os, sys
from pathlib import Path
run_dir = Path(os.environ["ORCH_RUN_DIR"])
if os.environ["ORCH_ATTEMPT"] == "1":
    os.symlink(sys.argv[1], run_dir.parent / "attempt-2")   # the next attempt's directory
    sys.exit(1)
Path(os.environ["ORCH_RESULT_FILE"]).write_text('{"loss": 0.25}')
"""


def test_trial_cannot_redirect_the_masters_writes_through_a_symlinked_run_dir(
        write_config, cli, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "redirector.py").write_text(textwrap.dedent(REDIRECTOR))
    path = write_config(parameters="x = { values = [0] }", retries=2,
                        command=f"{{python}} {{config_dir}}/redirector.py {victim}")
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    assert list(victim.iterdir()) == []                   # nothing written through the link
    rows = sqlite3.connect(tmp_path / "work" / "state.db").execute(
        "select number, state, reason from attempts order by number").fetchall()
    assert [r[1] for r in rows] == ["failed", "failed", "succeeded"]
    assert "attempt-2 is a symbolic link" in rows[1][2]
