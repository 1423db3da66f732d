"""Turning points into jobs: names, run directories, argv and environment."""
from __future__ import annotations

import json
import stat

from orchestrator.config import load_config
from orchestrator.trials import MAX_JOB_NAME, build_spec, job_name, run_dir_for
from scheduler_adapters.base import JOB_NAME_RE


def test_job_names_are_unique_short_and_safe(write_config):
    params = "\n".join(f"p{i} = {{ values = {list(range(40))} }}" for i in range(14))
    config = load_config(write_config(name="a" * 40, parameters=params))
    keys = ["p" + "-".join(str(v) for v in vals) for vals in ([39] * 14, [38] + [39] * 13)]
    names = {job_name(config, "0123abcd", k, 1) for k in keys}
    assert len(names) == 2
    assert all(len(n) <= MAX_JOB_NAME and JOB_NAME_RE.match(n) for n in names)
    short = job_name(config, "0123abcd", "p1-2", 3)
    assert short.endswith("-p1-2-a3")


def test_spec_carries_params_literally_and_privately(write_config, tmp_path):
    config = load_config(write_config(
        parameters='act = { values = ["relu", "gelu"] }\nlr = { values = [1e-05, 3.0] }',
        command="{python} prog.py --act={act} --lr {lr} --out {run_dir} 'two words'"))
    config.work_dir.mkdir()
    run_dir = run_dir_for(config, "p1-0", 2)
    spec = build_spec(config, config.model.trial, name="n-1", run_dir=run_dir, attempt=2,
                      params={"act": "gelu", "lr": 1e-05}, setup_outputs=None, setup_dir=None)
    assert spec.command[1:] == ("prog.py", "--act=gelu", "--lr", "1e-05", "--out", str(run_dir),
                                "two words")
    assert spec.env["ORCH_PARAM_ACT"] == "gelu" and spec.env["ORCH_ATTEMPT"] == "2"
    assert json.loads((run_dir / "params.json").read_text()) == {"act": "gelu", "lr": 1e-05}
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "params.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "work" / "trials").stat().st_mode) == 0o700
