"""The super-resolution miniature through the real master on the local scheduler: the setup job
(pre-training) runs once, every trial fine-tunes from its checkpoint and reports a score, and a
master killed after the setup succeeded does not run it again."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("skimage")

from tests.conftest import ROOT  # noqa: E402

CONFIG = """
[experiment]
name = "sr-mini"
work_dir = "work"

[objective]
key = "niqe"
direction = "minimize"

[parameters]
lr = {{ values = [4e-4] }}
w4 = {{ values = [0, 1e6] }}

[setup]
command = "{{python}} -m jobs.examples.sr.pretrain --out-dir {{run_dir}} --steps 20 --batch-size 4 --eval-crop 200"
time_limit = 300
retries = 1

[trial]
command = "{{python}} -m jobs.examples.sr.finetune --checkpoint {{setup_checkpoint}} --lr {{lr}} --w4 {{w4}} --steps 4 --batch-size 4 --eval-crop 200"
time_limit = 300
retries = 1

[search]
strategy = "grid"

[scheduler]
kind = "local"
cap = 2
poll_interval = 0.2
"""


def start(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_sr_experiment_end_to_end_and_setup_never_rerun(tmp_path):
    path = tmp_path / "sr.toml"
    path.write_text(CONFIG.format())
    crashed = start(path, {"ORCH_CRASH_AT": "after-intent:2"})   # setup, the trials' intents
    assert crashed.returncode == -9, crashed.stderr
    db = tmp_path / "work" / "state.db"
    con = sqlite3.connect(db)
    assert con.execute("select state from attempts where kind='setup'").fetchall() == [("succeeded",)]
    resumed = start(path)
    assert resumed.returncode == 0, resumed.stderr
    assert con.execute("select count(*) from attempts where kind='setup'").fetchone()[0] == 1
    checkpoint = json.loads(con.execute("select setup_outputs from experiments").fetchone()[0])
    assert Path(checkpoint["checkpoint"]).is_file()
    rows = con.execute("select a.run_dir from attempts a join points p on a.point_id = p.id "
                       "where a.state = 'succeeded'").fetchall()
    assert len(rows) == 2
    for (run_dir,) in rows:
        result = json.loads((Path(run_dir) / "result.json").read_text())
        assert result["niqe"] > 0 and result["psnr"] > 0 and 0 < result["ssim"] <= 1
    assert con.execute("select count(*) from evaluations where value is not null").fetchone()[0] == 2
