"""The read side shows what the master decided: the stored progress snapshot, one best point."""
from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ROOT

# Equal values everywhere; the point asked for first finishes last, so recording order and
# round order disagree and only one tie rule can name the same point everywhere.
TIED_TRIAL = """\
import sys, time
sys.path.insert(0, {root!r})
from jobs.result import load_params, write_result
params = load_params()
time.sleep(1.0 if params["x"] == 0 else 0.1)
write_result({{"loss": 1.0}})
"""


def test_status_best_and_finished_line_name_the_same_point_on_ties(write_config, cli, tmp_path):
    script = tmp_path / "tied.py"
    script.write_text(TIED_TRIAL.format(root=str(ROOT)))
    path = write_config(parameters="x = { values = [0, 1, 2] }", cap=3,
                        command=f"{{python}} {script}")
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    assert 'finished t: best {"x": 0} = 1' in proc.stderr
    status = json.loads(cli("status", str(path), "--json").stdout)
    assert status["best"]["params"] == {"x": 0}
    assert status["progress"]["best"] == [0] and status["progress"]["done"] is True
    best = json.loads(cli("best", str(path), "--json", "--top", "3").stdout)
    assert best["best"]["params"] == {"x": 0}
    assert [row["params"]["x"] for row in best["top"]] == [0, 1, 2]


def test_dsice_status_shows_the_stored_stage_level_and_base(write_config, cli, tmp_path):
    path = write_config(parameters="x = { values = [0, 1, 2, 3, 4] }\n"
                                   "y = { values = [0, 1, 2, 3, 4] }",
                        strategy="dsice", cap=4,
                        command="{python} -m jobs.examples.synthetic --center x=3 --center y=1")
    assert cli("start", str(path)).returncode == 0
    status = json.loads(cli("status", str(path), "--json").stdout)
    progress = status["progress"]
    stages = json.loads(cli("stages", str(path), "--json").stdout)
    assert progress["done"] and progress["stages_done"] == len(stages) == status["stages_done"]
    assert (status["stage"], status["level"], status["base"]) == (
        progress["stage"], progress["level"], progress["base"])
    assert status["base_params"] == {"x": 3, "y": 1} == status["best"]["params"]
    assert progress["evaluations"] == status["evaluations"] + status["failed_points"]
    assert status["estimate"]["basis"] == "finished"
