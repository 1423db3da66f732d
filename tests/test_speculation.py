"""Speculative prefetch changes when results arrive, never what the search decides."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.master import Master

PARAMS = ('x = { values = [0, 1, 2, 3, 4, 5, 6] }\ny = { values = [0, 1, 2, 3, 4, 5, 6] }\n'
          'z = { values = [0, 1, 2, 3, 4] }')
COMMAND = "{python} -m jobs.examples.synthetic --center x=5 --center y=1 --center z=3"


def decisions(db: Path) -> tuple[list[tuple], list[tuple]]:
    con = sqlite3.connect(db)
    rounds = con.execute("select p.key, p.round, e.value from points p join evaluations e "
                         "on e.point_id = p.id where p.round is not null "
                         "order by p.round, p.key").fetchall()
    stages = con.execute("select number, level, base, best, best_value from stages "
                         "order by number").fetchall()
    return rounds, stages


def test_speculation_leaves_decisions_unchanged(write_config, tmp_path):
    # Synchronous rounds: there speculation fills the slots a round leaves idle.
    plain = load_config(write_config("plain.toml", name="plain", parameters=PARAMS, cap=6,
                                     strategy="dsice", command=COMMAND,
                                     search_extra='mode = "sync"'))
    assert Master(plain).run() == 0
    expected = decisions(plain.work_dir / "state.db")
    (tmp_path / "work").rename(tmp_path / "plain-work")

    spec = load_config(write_config("spec.toml", name="spec", parameters=PARAMS, cap=6,
                                    strategy="dsice", command=COMMAND,
                                    search_extra='speculation = "on"\nmode = "sync"'))
    assert Master(spec).run() == 0
    db = spec.work_dir / "state.db"
    assert decisions(db) == expected
    con = sqlite3.connect(db)
    speculative = con.execute("select count(*) from points where origin='speculative'").fetchone()[0]
    assert speculative > 0
    # Speculative points the search later needed were measured once, never twice.
    assert con.execute("select count(*) from points").fetchone()[0] == \
        con.execute("select count(distinct key) from points").fetchone()[0]
    assert con.execute("select state from experiments").fetchone()[0] == "finished"
    assert con.execute("select count(*) from attempts where state in "
                       "('submitting','submitted','pending','running')").fetchone()[0] == 0


def test_exploration_is_replayed_exactly_after_a_crash(write_config, tmp_path):
    """Exploration fills rounds deterministically, so a killed master resumes the same search."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT
    options = "variant = \"paper\"\n[search.options]\nexplore_budget = 12\nrestarts = 1\nseed = 3"
    plain = load_config(write_config("a.toml", name="a", parameters=PARAMS, cap=6,
                                     strategy="dsice", command=COMMAND, search_extra=options))
    assert Master(plain).run() == 0
    expected = decisions(plain.work_dir / "state.db")
    (tmp_path / "work").rename(tmp_path / "a-work")
    path = write_config("b.toml", name="b", parameters=PARAMS, cap=6, strategy="dsice",
                        command=COMMAND, search_extra=options)
    crashed = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                             env={**os.environ, "ORCH_CRASH_AT": "before-evaluation:15"},
                             capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -9
    assert Master(load_config(path)).run() == 0
    assert decisions(tmp_path / "work" / "state.db") == expected
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    in_stages = sum(len(json.loads(p)) for (p,) in con.execute("select points from stages"))
    measured = con.execute("select count(*) from evaluations").fetchone()[0]
    assert measured > in_stages                 # exploration points were measured too
