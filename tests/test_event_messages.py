"""Event messages show a point as the rest of the CLI does (``x=3 y=0.5``), never as a Python
dict, in ``events``, ``status`` and master.log; ``--format json`` keeps the data structured."""
from __future__ import annotations

import json

from orchestrator.render import measured, point


def test_a_point_reads_the_same_in_every_message(write_config, cli, tmp_path):
    path = write_config(parameters='x = { values = [1, 3] }\ny = { values = [0.5] }', retries=0,
                        command="{python} -m jobs.examples.synthetic --fail-when x=3")
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr

    shown = cli("events", str(path), "--limit", "100", "--wide").stdout
    assert "point x=1 y=0.5 = " in shown
    assert "point x=3 y=0.5 failed: " in shown
    assert "experiment finished: best " in shown and " at x=1 y=0.5" in shown
    log = (tmp_path / "work" / "master.log").read_text()
    status = cli("status", str(path), "--wide").stdout
    for text in (shown, log, status):
        assert "{'" not in text and "'x':" not in text

    events = json.loads(cli("events", str(path), "--format", "json", "--limit", "100").stdout)
    finished = next(e for e in events if e["kind"] == "finished")
    best = finished["data"]["best"]
    assert best["params"] == {"x": 1, "y": 0.5}          # structured, not text
    assert finished["message"] == f"experiment finished: best {measured(best['params'], best['value'])}"
    evaluated = next(e for e in events if e["kind"] == "evaluated")
    assert evaluated["message"].startswith(f"point {point({'x': 1, 'y': 0.5})} = ")
